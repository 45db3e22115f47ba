"""``appgen template new``: start a user template from a built-in one.

``--from vision`` copies the whole template (manifest and ``project/``) under a new
name, so it renders and passes its own tests at once and every file can be edited.
``--extends vision`` writes only a manifest and an empty ``project/``: files put
there later add to or replace the parent's, and everything else follows the
parent as appgen improves it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from . import settings
from .catalog import (
    MANIFEST,
    PROJECT_DIR,
    Template,
    builtin_templates_dir,
    find_template,
    user_templates_dir,
)
from .errors import InvalidValueError, TemplateExistsError, UnsafePathError

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store", ".pytest_cache")

_EXTENDS_MANIFEST = """\
# A user template: `appgen new NAME -t {name}`.
name = {name_toml}
description = {description}
extends = {parent}
# Anything not given here is inherited: tasks, sample_data, data_format, options.
# Files in project/ are rendered over the parent's: the same relative path replaces
# the parent's file (__package__/ becomes the package name, a .jinja suffix renders
# with Jinja2, {{% include "<parent>/<path>" %}} reaches the file you replace), any
# other file is added.
# [options."train.epochs"]    # extra validation / new defaults for config.toml keys
# default = 10
# min = 1
"""

def create_template(name: str, *, copy_from: str | None = None, extends: str | None = None,
                    out: Path | None = None) -> Path:
    """Create template ``name`` from ``copy_from`` (a full copy) or ``extends`` (a child).

    Args:
        name: the new template's name (letters, digits, ``-``, ``_``).
        copy_from: a template to copy, e.g. ``vision``.
        extends: a template to inherit from, e.g. ``vision``.
        out: the new template's folder (default: the user templates directory / name).

    Returns:
        The folder written.

    Raises:
        InvalidValueError: bad name, or not exactly one of ``copy_from`` / ``extends``.
        TemplateExistsError: the folder exists, or the name would shadow a built-in.
        TemplateNotFoundError: the source template does not exist.
    """
    if not _NAME_RE.fullmatch(name):
        raise InvalidValueError(f"invalid template name {name!r}: use letters, digits, '-' "
                                "and '_', starting with a letter")
    if (copy_from is None) == (extends is None):
        raise InvalidValueError("give exactly one of --from TEMPLATE (copy it) or "
                                "--extends TEMPLATE (inherit from it)")
    if (builtin_templates_dir() / name / MANIFEST).is_file():
        raise TemplateExistsError(f"{name!r} is a built-in template; choose another name so "
                                  "both stay usable")
    target = (out if out is not None else user_templates_dir() / name).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TemplateExistsError(f"{target} already exists and is not empty")

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".appgen-template-"))
    try:
        folder = staging / "template"
        if copy_from is not None:
            _copy(find_template(copy_from), name, folder)
        else:
            assert extends is not None  # checked above; narrows the type for mypy
            _child(find_template(extends), name, folder)
        if target.exists():
            target.rmdir()
        folder.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy(source_template: Template, name: str, folder: Path) -> None:
    # copytree would copy what a link points at: a template may hold no links at all.
    for path in sorted(source_template.path.rglob("*")):
        if path.is_symlink():
            raise UnsafePathError(f"{path}: symbolic links are not allowed in templates")
    shutil.copytree(source_template.path, folder, ignore=_SKIP)
    manifest = folder / MANIFEST
    text = manifest.read_text(encoding="utf-8")
    description = f"{source_template.description} (from {source_template.name})".strip()
    known = {assignment.key for assignment in settings.find_assignments(text)}
    changes = {key: value for key, value in (("name", name), ("description", description))
               if key in known}
    text = settings.apply_overrides(text, changes)
    missing = [f"{key} = {settings.format_value(value)}\n"
               for key, value in (("name", name), ("description", description))
               if key not in known]
    manifest.write_text("".join(missing) + text, encoding="utf-8")


def _child(parent: Template, name: str, folder: Path) -> None:
    # A parent found by path is recorded by path: its name alone would not find it again.
    reference = str(parent.path) if parent.source == "path" else parent.name
    (folder / PROJECT_DIR).mkdir(parents=True)
    (folder / MANIFEST).write_text(_EXTENDS_MANIFEST.format(
        name=name,
        name_toml=settings.format_value(name),
        description=settings.format_value(f"{parent.description} (extends {parent.name})"),
        parent=settings.format_value(reference),
    ), encoding="utf-8")
