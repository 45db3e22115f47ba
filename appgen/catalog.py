"""Template discovery: built-in templates, the user templates directory, and paths.

A template is a folder holding ``template.toml`` (the manifest) and ``project/``
(the files rendered into a new project). Templates may ``extends`` another one by
name; names starting with ``_`` (such as ``_base``) are parents only.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import appgen

from .errors import ManifestError, TemplateNotFoundError
from .options import Option, merge_options, parse_options

MANIFEST = "template.toml"
PROJECT_DIR = "project"
USER_DIR_ENV = "APPGEN_TEMPLATES_DIR"

# Manifest keys and the Python types they must have; anything else is a typo worth reporting.
_MANIFEST_TYPES: dict[str, type] = {
    "name": str,
    "description": str,
    "extends": str,
    "tasks": list,
    "sample_data": str,
    "task_sample_data": dict,
    "data_format": str,
    "task_settings": dict,
    "options": dict,
}


@dataclass
class Template:
    """One template folder and its parsed manifest."""

    name: str
    path: Path
    description: str = ""
    extends: str | None = None
    tasks: list[str] = field(default_factory=list)
    sample_data: str | None = None
    task_sample_data: dict[str, str] = field(default_factory=dict)  # task -> provider
    data_format: str = ""
    task_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # see appgen.options
    source: str = "path"  # "builtin", "user" or "path": where it was found

    @property
    def project_dir(self) -> Path:
        """The folder whose contents become the new project's root."""
        return self.path / PROJECT_DIR

    @property
    def private(self) -> bool:
        """Whether this is a parent-only template (name starts with ``_``)."""
        return self.name.startswith("_")

    def chain(self) -> list[Template]:
        """Return ``[root ancestor, ..., self]`` by following ``extends``.

        Raises:
            ManifestError: if ``extends`` forms a cycle or names a missing template.
        """
        chain: list[Template] = [self]
        seen = {self.path.resolve()}
        current = self
        while current.extends:
            try:
                parent = find_template(current.extends, allow_private=True)
            except TemplateNotFoundError:
                raise ManifestError(
                    f"template {current.name!r} extends {current.extends!r}, "
                    "which is not a built-in or user template"
                ) from None
            if parent.path.resolve() in seen:
                names = " -> ".join(t.name for t in reversed(chain))
                raise ManifestError(f"templates extend each other in a cycle: {names} -> "
                                    f"{parent.name}")
            seen.add(parent.path.resolve())
            chain.append(parent)
            current = parent
        return list(reversed(chain))

    def effective_tasks(self) -> list[str]:
        """The tasks of this template, or of its nearest ancestor that lists some."""
        for template in reversed(self.chain()):
            if template.tasks:
                return list(template.tasks)
        return []

    def effective_task_settings(self, task: str | None) -> dict[str, Any]:
        """Config overrides for ``task``, parents first so the child's settings win."""
        merged: dict[str, Any] = {}
        if task is None:
            return merged
        for template in self.chain():
            merged.update(template.task_settings.get(task, {}))
        return merged

    def task_keys(self) -> set[str]:
        """Config keys that name the task itself (``data.task``): every task that sets one
        in ``task_settings`` sets it to its own name. ``--set`` cannot change them, since the
        task also picks the rendered files and the sample data."""
        values: dict[str, list[tuple[str, Any]]] = {}
        for task in self.effective_tasks():
            for key, value in self.effective_task_settings(task).items():
                values.setdefault(key, []).append((task, value))
        return {key for key, pairs in values.items()
                if all(value == task for task, value in pairs)}

    def effective_sample_data(self, task: str | None) -> str | None:
        """The sample-data provider for ``task``: the nearest template naming one for
        that task in ``task_sample_data``, else the nearest ``sample_data``."""
        chain = list(reversed(self.chain()))
        if task is not None:
            for template in chain:
                if task in template.task_sample_data:
                    return template.task_sample_data[task]
        for template in chain:
            if template.sample_data:
                return template.sample_data
        return None

    def effective_options(self) -> dict[str, Option]:
        """The ``[options]`` of the whole chain, a child's fields replacing its parent's."""
        return merge_options([(str(t.path / MANIFEST), t.options) for t in self.chain()])


def builtin_templates_dir() -> Path:
    """Where the built-in templates live.

    In a wheel they are shipped as ``appgen/templates``; in a source or editable
    checkout they stay at the repository's top level next to ``appgen/``.
    """
    package_dir = Path(appgen.__file__).resolve().parent
    shipped = package_dir / "templates"
    if shipped.is_dir():
        return shipped
    return package_dir.parent / "templates"


def user_templates_dir() -> Path:
    """``$APPGEN_TEMPLATES_DIR`` if set, else ``~/.config/appgen/templates``."""
    configured = os.environ.get(USER_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "appgen" / "templates"


def load_template(path: Path, *, source: str = "path") -> Template:
    """Read the template folder at ``path``.

    Raises:
        TemplateNotFoundError: if ``path`` is not a folder with a template.toml.
        ManifestError: if the manifest is invalid.
    """
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise TemplateNotFoundError(f"{path} is not a template folder (no {MANIFEST})")
    for entry in (manifest_path, path / PROJECT_DIR):
        if entry.is_symlink():  # it could read any local file into a project
            raise ManifestError(f"{entry}: symbolic links are not allowed in templates")
    try:
        data = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{manifest_path} is not valid TOML: {exc}") from None
    for key, value in data.items():
        expected = _MANIFEST_TYPES.get(key)
        if expected is None:
            raise ManifestError(f"{manifest_path}: unknown manifest key {key!r}")
        if not isinstance(value, expected):
            raise ManifestError(
                f"{manifest_path}: {key} must be a {expected.__name__}, got {value!r}"
            )
    tasks = data.get("tasks", [])
    if not all(isinstance(task, str) and task for task in tasks):
        raise ManifestError(f"{manifest_path}: tasks must be a list of non-empty strings")
    task_settings = data.get("task_settings", {})
    for task, settings in task_settings.items():
        if not isinstance(settings, dict):
            raise ManifestError(f"{manifest_path}: task_settings.{task} must be a table")
        if tasks and task not in tasks:
            raise ManifestError(
                f"{manifest_path}: task_settings names task {task!r}, "
                f"which is not in tasks {tasks}"
            )
    task_sample_data = data.get("task_sample_data", {})
    for task, provider in task_sample_data.items():
        if not isinstance(provider, str) or not provider:
            raise ManifestError(
                f"{manifest_path}: task_sample_data.{task} must be a provider name")
        if tasks and task not in tasks:
            raise ManifestError(
                f"{manifest_path}: task_sample_data names task {task!r}, "
                f"which is not in tasks {tasks}"
            )
    options = parse_options(data.get("options", {}), str(manifest_path))
    if not (path / PROJECT_DIR).is_dir():
        raise ManifestError(f"{path} has no {PROJECT_DIR}/ folder")
    return Template(
        name=data.get("name", path.name),
        path=path,
        description=data.get("description", ""),
        extends=data.get("extends") or None,
        tasks=list(tasks),
        sample_data=data.get("sample_data") or None,
        task_sample_data=dict(task_sample_data),
        data_format=data.get("data_format", ""),
        task_settings=task_settings,
        options=options,
        source=source,
    )


def _search_dirs() -> list[tuple[str, Path]]:
    # The user directory comes first so a user can shadow a built-in template on purpose.
    return [("user", user_templates_dir()), ("builtin", builtin_templates_dir())]


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "~")) or "/" in ref or os.sep in ref


def find_template(ref: str, *, allow_private: bool = False) -> Template:
    """Find a template by name (user dir, then built-ins) or by folder path.

    Args:
        ref: a template name such as ``vision`` or a path such as ``./my-template``.
        allow_private: accept ``_``-prefixed parent templates (used for ``extends``).

    Raises:
        TemplateNotFoundError: if nothing matches, or a private template is asked for.
    """
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise TemplateNotFoundError(f"template folder {ref!r} does not exist")
        template = load_template(path.resolve(), source="path")
    else:
        template = _find_by_name(ref)
    if template.private and not allow_private:
        raise TemplateNotFoundError(
            f"template {template.name!r} is a base for other templates and cannot be used "
            "on its own; run `appgen list` to see the templates"
        )
    return template


def _find_by_name(name: str) -> Template:
    for source, directory in _search_dirs():
        candidate = directory / name
        if (candidate / MANIFEST).is_file():
            return load_template(candidate, source=source)
    # A bare folder name in the working directory is a path the user typed without "./".
    if (Path(name) / MANIFEST).is_file():
        return load_template(Path(name).resolve(), source="path")
    names = [t.name for t in list_templates()]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise TemplateNotFoundError(f"unknown template {name!r}; {hint}"
                                f"available: {', '.join(names) or 'none found'}")


def list_templates(include_private: bool = False) -> list[Template]:
    """All templates in the user directory and the built-ins, user ones shadowing.

    Folders whose manifest is broken are skipped here (``find_template`` reports
    them), so one bad user template does not hide every other one.
    """
    found: dict[str, Template] = {}
    for source, directory in _search_dirs():
        if not directory.is_dir():
            continue
        for candidate in sorted(directory.iterdir()):
            if candidate.name in found or not (candidate / MANIFEST).is_file():
                continue
            if candidate.name.startswith("_") and not include_private:
                continue
            try:
                found[candidate.name] = load_template(candidate, source=source)
            except (ManifestError, TemplateNotFoundError):
                continue
    return sorted(found.values(), key=lambda t: t.name)


def broken_templates() -> list[tuple[Path, str]]:
    """Template folders whose manifest fails to load, with the reason (for ``appgen list``)."""
    broken: list[tuple[Path, str]] = []
    for source, directory in _search_dirs():
        if not directory.is_dir():
            continue
        for candidate in sorted(directory.iterdir()):
            if (candidate / MANIFEST).is_file():
                try:
                    load_template(candidate, source=source)
                except (ManifestError, TemplateNotFoundError) as exc:
                    broken.append((candidate, str(exc)))
    return broken
