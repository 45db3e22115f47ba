"""Render a template chain into a new project, atomically.

Everything is rendered into a staging directory next to the target and moved
into place only once complete, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import keyword
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial, wraps
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import FrameType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from . import __version__, limits, options, pristine, safefs, settings
from .catalog import Template
from .errors import (
    AppgenError,
    InvalidProjectNameError,
    InvalidValueError,
    RenderError,
    TargetNotEmptyError,
    UnknownKeyError,
    UnsafePathError,
)
from .record import RECORD_FILE, Record, digest

# torch is not offered: every template's data pipeline, tests and strategy cover TensorFlow
# and JAX only (there is no torch extra), so a torch project would fail at train time.
BACKENDS = ("tensorflow", "jax")
PACKAGE_PLACEHOLDER = "__package__"
JINJA_SUFFIX = ".jinja"
# Include-only partials: reachable with {% include %}, never written to the project.
PARTIAL_SUFFIX = ".inc"
CONFIG_FILE = "config.toml"
DATA_DIR = "data"

# Names a generated package must not take: it would shadow what the project imports,
# or collide with a folder the project already has at its root.
RESERVED_PACKAGES = frozenset({
    "keras", "tensorflow", "jax", "jaxlib", "numpy", "torch", "appgen", "tests", "data",
    "launch", "keras_hub", "keras_nlp", "keras_cv", "click", "jinja2", "matplotlib", "scipy",
    "sklearn", "pandas", "PIL", "nibabel", "pydicom", "pytest", "setuptools", "pip", "sacrebleu",
})
_SKIP_NAMES = frozenset({"__pycache__", ".DS_Store", ".pytest_cache", ".mypy_cache"})
_PACKAGE_RE = re.compile(r"[a-z_][a-z0-9_]*")
# A template is a tree of plain files: a link could read any local file into the
# project (outside the template) or change what is rendered after it was checked.
_NO_LINKS = ("symbolic links are not allowed in templates (one could read files outside "
             "the template); replace it with a copy")
# Staging folders are named so a leftover (appgen killed with SIGKILL) is recognisable:
# .appgen-staging-<pid>-<random>; the next render in the same folder removes those whose
# process is gone.
STAGING_PREFIX = ".appgen-staging-"
STAGING_MARKER = ".appgen-staging"
_STAGING_RE = re.compile(re.escape(STAGING_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")


@dataclass
class RenderRequest:
    """Everything ``appgen new`` needs to render one project."""

    project_name: str
    template: Template
    task: str | None
    out_dir: Path  # the project directory itself, e.g. ./NAME
    backend: str = "tensorflow"
    overrides: list[str] = field(default_factory=list)
    sample_data: bool = True
    force: bool = False
    dry_run: bool = False


@dataclass
class RenderResult:
    """What was (or, for a dry run, would be) written."""

    target: Path
    package: str
    task: str | None
    files: list[str]  # project-relative POSIX paths: rendered files, .appgen.toml, the store
    data_summary: str | None = None  # the sample-data writer's one-line summary
    dry_run: bool = False


# --------------------------------------------------------------------------- validation


def package_name(project_name: str) -> str:
    """Turn NAME into its Python package name, or say why it cannot be one.

    Raises:
        InvalidProjectNameError: with the reason.
    """
    package = project_name.strip().lower().replace("-", "_")
    prefix = f"invalid project name {project_name!r}"
    if not package:
        raise InvalidProjectNameError(f"{prefix}: it is empty")
    if not project_name.isprintable():
        # A newline would end the comment line NAME is written into (launch/slurm.sbatch).
        raise InvalidProjectNameError(f"{prefix}: it holds a control character")
    if not _PACKAGE_RE.fullmatch(package):
        if package[0].isdigit():
            reason = "a Python package name cannot start with a digit"
        else:
            reason = ("a Python package name may only hold ASCII letters, digits, '_' "
                      "(and '-', which becomes '_')")
        raise InvalidProjectNameError(f"{prefix}: {reason}")
    if keyword.iskeyword(package):
        raise InvalidProjectNameError(f"{prefix}: {package!r} is a Python keyword")
    if package in sys.stdlib_module_names:
        raise InvalidProjectNameError(
            f"{prefix}: {package!r} would shadow the standard-library module of that name"
        )
    if package in RESERVED_PACKAGES:
        raise InvalidProjectNameError(
            f"{prefix}: {package!r} would shadow a package or folder the project uses"
        )
    return package


def resolve_task(template: Template, task: str | None) -> str | None:
    """Return ``task``, or the template's default (first) task when it is None.

    Raises:
        InvalidValueError: if the template has no such task.
    """
    tasks = template.effective_tasks()
    if task is None:
        return tasks[0] if tasks else None
    if task not in tasks:
        choices = ", ".join(tasks) if tasks else "none (omit --task)"
        raise InvalidValueError(
            f"template {template.name!r} has no task {task!r}; choose from: {choices}"
        )
    return task


def check_backend(backend: str) -> None:
    """Raise :class:`InvalidValueError` unless ``backend`` is one appgen knows."""
    if backend == "torch":
        raise InvalidValueError("--backend torch is not supported: generated projects run on "
                                "TensorFlow or JAX; choose --backend tensorflow or jax")
    if backend not in BACKENDS:
        raise InvalidValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def safe_relative_path(rel: str) -> PurePosixPath:
    """Return ``rel`` as a relative POSIX path, refusing anything that could escape.

    Raises:
        UnsafePathError: for absolute paths, drive letters, ``..`` parts or backslashes
            that would act as separators on Windows.
    """
    windows = PureWindowsPath(rel)
    parts = re.split(r"[\\/]", rel)
    if (PurePosixPath(rel).is_absolute() or windows.is_absolute() or windows.drive
            or any(part in ("..", ".") for part in parts) or "\x00" in rel):
        raise UnsafePathError(f"template path {rel!r} would be written outside the project")
    return PurePosixPath(rel)


# --------------------------------------------------------------------------- collecting


@dataclass(frozen=True)
class SourceFile:
    """One file of a template's ``project/`` folder and where it lands in the project."""

    owner: Template
    source: Path  # absolute path of the template file
    source_rel: str  # POSIX path relative to owner.project_dir
    dest: PurePosixPath  # project-relative output path

    @property
    def is_jinja(self) -> bool:
        """Whether the file is rendered with Jinja (``.jinja`` suffix)."""
        return self.source_rel.endswith(JINJA_SUFFIX)


def collect_files(chain: list[Template], package: str) -> dict[PurePosixPath, SourceFile]:
    """Map each output path to the template file that produces it, the child winning.

    Raises:
        UnsafePathError: for symlinks that leave the template or unsafe output paths.
    """
    files: dict[PurePosixPath, SourceFile] = {}
    for template in chain:  # root ancestor first, so later (child) entries replace earlier
        if template.project_dir.is_symlink():
            raise UnsafePathError(f"{template.project_dir}: {_NO_LINKS}")
        root = template.project_dir.resolve()
        for dirpath, dirnames, filenames in os.walk(root):
            # Every entry is checked before any is skipped: a link named __pycache__ could
            # otherwise be reached with {% include %} and read any file into the project.
            for name in [*dirnames, *filenames]:
                if Path(dirpath, name).is_symlink():
                    raise UnsafePathError(f"{Path(dirpath, name)}: {_NO_LINKS}")
            dirnames[:] = sorted(name for name in dirnames if name not in _SKIP_NAMES)
            for name in sorted(filenames):
                if name in _SKIP_NAMES or name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath, name)
                source_rel = path.relative_to(root).as_posix()
                if source_rel.endswith(PARTIAL_SUFFIX):
                    continue
                dest = _dest_path(source_rel, package)
                files[dest] = SourceFile(template, path, source_rel, dest)
    return files


def _dest_path(source_rel: str, package: str) -> PurePosixPath:
    rel = source_rel[: -len(JINJA_SUFFIX)] if source_rel.endswith(JINJA_SUFFIX) else source_rel
    safe = safe_relative_path(rel)
    if any(part.lower() == safefs.GIT_DIR for part in safe.parts):
        raise UnsafePathError(f"template path {rel!r}: a template may not write into .git/ "
                              "(its hooks would run on the next git command)")
    parts = [package if part == PACKAGE_PLACEHOLDER else part for part in safe.parts[:-1]]
    return PurePosixPath(*parts, safe.name)


# --------------------------------------------------------------------------- Jinja


class ChainLoader(jinja2.BaseLoader):
    """Resolve template names against the chain's ``project/`` folders, child first.

    ``"<template name>/<path>"`` (e.g. ``"_base/runtime.toml.inc"``) addresses one
    template's folder directly, so a child can include the parent file it replaces.
    """

    def __init__(self, chain: list[Template]) -> None:
        self.chain = chain

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """Return the source, filename and an up-to-date check for ``template``."""
        pieces = split_template_path(template)  # raises TemplateNotFound on ".."
        candidates: list[Path] = []
        if len(pieces) > 1:
            for owner in self.chain:
                if pieces[0] in (owner.name, owner.path.name):
                    candidates.append(owner.project_dir.joinpath(*pieces[1:]))
        candidates.extend(owner.project_dir.joinpath(*pieces) for owner in reversed(self.chain))
        for candidate in candidates:
            if candidate.is_file():
                try:
                    source = candidate.read_text(encoding="utf-8")
                except UnicodeDecodeError as exc:
                    raise RenderError(f"{candidate} is not UTF-8 text: {exc}") from None
                mtime = candidate.stat().st_mtime
                return source, str(candidate), partial(_unchanged, candidate, mtime)
        raise jinja2.TemplateNotFound(template)


def _unchanged(path: Path, mtime: float) -> bool:
    return path.is_file() and path.stat().st_mtime == mtime


_SHELL_TOKEN_RE = re.compile(r"[A-Za-z0-9_.,:@%+=/-]+")


def shquote(value: Any) -> str:
    """Jinja filter: ``value`` as one shell word (``shlex.quote``), for shell scripts."""
    return shlex.quote(str(value))


def safe_token(value: Any) -> str:
    """Jinja filter: ``value`` unchanged if it is a plain token, else a render error.

    For places where quoting does not help, such as ``#SBATCH`` comment lines (a
    newline would end the comment) or inside double quotes in a shell script.
    """
    text = str(value)
    if isinstance(value, bool) or not _SHELL_TOKEN_RE.fullmatch(text):
        raise jinja2.exceptions.SecurityError(
            f"{text!r} is not a plain token (letters, digits and _.,:@%+=/- only)")
    return text


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` so its result is size-checked like ``+`` and ``*``."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.check_size(")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedSandbox(SandboxedEnvironment):
    """The Jinja sandbox with bounds on what one expression may build.

    ``'a' * 3000000000`` or ``9 ** (9 ** 9)`` would otherwise run until memory or
    patience runs out. Repetitions, powers, products and concatenations are checked
    before (``*``, ``**``, ``+``) or right after (``~``) they are computed against
    ``APPGEN_MAX_RENDER_SIZE`` (characters or items) and ``APPGEN_MAX_RENDER_INT_BITS``.
    """

    intercepted_binops = frozenset({"*", "**", "+"})
    code_generator_class = _BoundedCodeGenerator

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``*``, ``**`` and ``+`` whose result would pass a render limit."""
        max_size = limits.MAX_RENDER_SIZE.value()
        max_bits = limits.MAX_RENDER_INT_BITS.value()
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if _is_sized(sequence) and _is_int(count):
                    if len(sequence) * max(count, 0) > max_size:
                        raise self._refuse(f"repeating a {len(sequence)}-long "
                                           f"{type(sequence).__name__} {count} times",
                                           limits.MAX_RENDER_SIZE)
            if _is_int(left) and _is_int(right) and (
                    left.bit_length() + right.bit_length() > max_bits):
                raise self._refuse("multiplying integers this large", limits.MAX_RENDER_INT_BITS)
        elif operator == "**":
            if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1 and (
                    abs(left).bit_length() * right > max_bits):
                raise self._refuse(f"{left} ** {right}", limits.MAX_RENDER_INT_BITS)
        elif operator == "+":
            if _is_sized(left) and _is_sized(right) and len(left) + len(right) > max_size:
                raise self._refuse("joining sequences this long", limits.MAX_RENDER_SIZE)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        """Refuse method calls such as ``'a'.ljust(10 ** 9)`` before they allocate."""
        __self.check_arguments(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Refuse an integer argument (a width, a count) larger than the render limit."""
        max_size = limits.MAX_RENDER_SIZE.value()
        for value in (*args, *kwargs.values()):
            if _is_int(value) and abs(value) > max_size:
                raise self._refuse(f"an argument of {value}", limits.MAX_RENDER_SIZE)

    def check_size(self, value: Any) -> Any:
        """Return ``value``, or refuse it if it is longer than the render limit."""
        if _is_sized(value) and len(value) > limits.MAX_RENDER_SIZE.value():
            raise self._refuse(f"a {len(value)}-long string", limits.MAX_RENDER_SIZE)
        return value

    @staticmethod
    def _refuse(what: str, limit: limits.Limit) -> jinja2.exceptions.SecurityError:
        return jinja2.exceptions.SecurityError(
            f"{what} is over the limit of {limit.value()} (raise it with {limit.env})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def make_environment(chain: list[Template]) -> SandboxedEnvironment:
    """The sandboxed, strict Jinja environment every template file is rendered with."""
    env = BoundedSandbox(
        loader=ChainLoader(chain),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # we write code and TOML, not HTML
    )
    # Quoting for the languages templates write: tojson (built in) for YAML and JSON
    # scalars, shquote for shell words, safe_token where only a plain token is safe.
    env.filters["shquote"] = shquote
    env.filters["safe_token"] = safe_token
    # Widths and counts given to filters ('a' | center(10 ** 9), slice) are bounded too.
    env.filters = {name: _bounded_filter(env, function) for name, function in env.filters.items()}
    return env


def _bounded_filter(env: BoundedSandbox, function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)  # keeps Jinja's pass_context/pass_environment marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # args[0] is the filtered value (or the context/environment); only later ones count.
        env.check_arguments(args[1:], kwargs)
        return function(*args, **kwargs)

    return bounded


def _render_file(env: SandboxedEnvironment, source: SourceFile, context: dict[str, Any]) -> str:
    name = f"{source.owner.name}/{source.source_rel}"
    try:
        return env.get_template(name).render(context)
    except AppgenError:
        raise
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or str(source.source)
        raise RenderError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"{source.source}: refused by the Jinja sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"{source.source}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # a template expression may raise anything, e.g. 1/0
        raise RenderError(f"{source.source}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- config


def render_config(
    template: Template,
    context: dict[str, Any],
    user_overrides: dict[str, Any],
    files: dict[PurePosixPath, SourceFile] | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """Render config.toml and apply task settings, the backend and ``--set`` values.

    Args:
        template: the template being rendered.
        context: the render context (``config`` is not used yet and may be empty).
        user_overrides: parsed ``--set`` values, dotted key -> value.
        files: the collected files, if already known.

    Returns:
        ``(text, parsed)`` of the final config.toml, or None when the template has none.

    Raises:
        UnknownKeyError, InvalidValueError: for bad overrides, naming the key.
        RenderError: if the rendered config.toml is not valid TOML.
    """
    chain = template.chain()
    if files is None:
        files = collect_files(chain, context["package"])
    source = files.get(PurePosixPath(CONFIG_FILE))
    if source is None:
        if user_overrides:
            key = next(iter(user_overrides))
            raise UnknownKeyError(f"--set {key}: template {template.name!r} has no config.toml")
        return None
    if source.is_jinja:
        text = _render_file(make_environment(chain), source, {**context, "config": {}})
    else:
        text = _read_text(source.source)
    try:
        schema = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RenderError(f"{source.source} does not render to valid TOML: {exc}") from None

    task_settings = settings.validate_overrides(
        schema, template.effective_task_settings(context["task"]),
        origin=f"template {template.name!r} task_settings.{context['task']}",
    )
    backend: dict[str, Any] = {}
    if isinstance(schema.get("runtime"), dict) and "backend" in schema["runtime"]:
        if "runtime.backend" in user_overrides:
            # Two ways to say one thing would let .appgen.toml and config.toml disagree.
            raise InvalidValueError("choose the backend with --backend, not --set runtime.backend")
        backend = {"runtime.backend": context["backend"]}
    _refuse_task_overrides(template, context["task"], user_overrides)
    users = settings.validate_overrides(schema, user_overrides)
    template_options = template.effective_options()
    option_defaults = settings.validate_overrides(
        schema, options.option_defaults(template_options),
        origin=f"template {template.name!r} options",
    )
    merged = {**option_defaults, **task_settings, **backend, **users}
    text = settings.apply_overrides(text, merged)
    parsed = tomllib.loads(text)
    origins = {key: "--set" for key in users}
    origins.update({key: f"template {template.name!r} task_settings.{context['task']}"
                    for key in task_settings if key not in users})
    options.check_values(template_options, parsed, origins)
    return text, parsed


def _refuse_task_overrides(template: Template, task: str | None,
                           user_overrides: dict[str, Any]) -> None:
    # The task also picks the rendered files and the sample data, so a --set of the key
    # that names it would build a project for one task configured for another.
    for key in sorted(template.task_keys() & set(user_overrides)):
        value = user_overrides[key]
        if value == task:
            continue
        tasks = ", ".join(template.effective_tasks())
        how = (f"use --task {value}" if value in template.effective_tasks()
               else f"template {template.name!r} has tasks {tasks}; choose one with --task")
        raise InvalidValueError(f"--set {key}={value!r}: {key} follows the task; {how}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{path} is not UTF-8 text: {exc}") from None


def preview_config(template: Template, task: str | None = None,
                   backend: str = "tensorflow") -> str | None:
    """Render a template's config.toml with its defaults (for ``appgen info``)."""
    task = resolve_task(template, task)
    context = _context(template, "example", "example", task, backend, has_sample_data=False)
    result = render_config(template, context, {})
    return None if result is None else result[0]


def _context(template: Template, project_name: str, package: str, task: str | None,
             backend: str, *, has_sample_data: bool) -> dict[str, Any]:
    return {
        "project_name": project_name,
        "package": package,
        "template": template.name,
        "task": task,
        "backend": backend,
        "appgen_version": __version__,
        "config": {},
        "has_sample_data": has_sample_data,
    }


# --------------------------------------------------------------------------- the worker


def render_project(req: RenderRequest) -> RenderResult:
    """Render ``req.template`` into ``req.out_dir`` (or only into staging for a dry run).

    Raises:
        AppgenError: a subclass naming what went wrong; nothing is left on disk.
    """
    check_backend(req.backend)
    package = package_name(req.project_name)
    task = resolve_task(req.template, req.task)
    user_overrides = settings.parse_overrides(req.overrides)
    target = Path(req.out_dir).expanduser().absolute()
    _check_target(target, req.force)

    created_parents = _make_parents(target.parent) if not req.dry_run else []
    stage_parent = target.parent if target.parent.is_dir() else None
    remove_stale_staging(stage_parent or Path(tempfile.gettempdir()))
    moved = False
    with _signals_raise():  # SIGTERM and SIGINT unwind through the finally below
        staging = Path(tempfile.mkdtemp(dir=stage_parent,
                                        prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
        try:
            written, summary = _render_into(staging, req, package, task, user_overrides)
            if summary:
                # Providers name the folder they wrote to; report where it ends up.
                summary = summary.replace(str(staging), str(target))
            if not req.dry_run:
                _move_into_place(staging, target)
                moved = True
            return RenderResult(target, package, task, written, summary, req.dry_run)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if not moved:
                for parent in reversed(created_parents):  # deepest first
                    try:
                        parent.rmdir()
                    except OSError:
                        break


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived while rendering; raised so staging is cleaned up."""


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` for the block.

    Python's default SIGTERM action ends the process without running ``finally``
    blocks, which would leave the staging folder behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"interrupted by signal {signum}")

    previous = {signum: signal.signal(signum, handler)
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def remove_stale_staging(folder: Path) -> list[Path]:
    """Remove staging folders in ``folder`` left by an appgen that was killed outright.

    Only folders named like ours (``.appgen-staging-<pid>-<random>``) whose process
    no longer runs are removed; a live process's staging is left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _STAGING_RE.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        if _process_alive(int(match.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process (or a name we cannot judge): leave it
    return True


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise TargetNotEmptyError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise TargetNotEmptyError(
            f"{target} is not empty; choose another directory with -o, or pass --force to "
            "write over it (no existing file is deleted)"
        )


def _make_parents(directory: Path) -> list[Path]:
    # Remember which folders we created so a failed render can remove them again.
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


@dataclass(frozen=True)
class RenderedFile:
    """One rendered file's bytes and whether it is executable (launch scripts)."""

    content: bytes
    executable: bool = False


def render_files(
    template: Template, project_name: str, package: str, task: str | None, backend: str,
    user_overrides: dict[str, Any], *, has_sample_data: bool,
) -> dict[PurePosixPath, RenderedFile]:
    """Render every file of ``template``'s chain in memory (no sample data, no record).

    ``appgen new`` writes the result to disk; ``appgen update`` merges it.

    Raises:
        AppgenError: a subclass naming the file or the key that failed.
    """
    chain = template.chain()
    files = collect_files(chain, package)
    context = _context(template, project_name, package, task, backend,
                       has_sample_data=has_sample_data)
    rendered: dict[PurePosixPath, RenderedFile] = {}
    config = render_config(template, context, user_overrides, files)
    if config is not None:
        config_source = files[PurePosixPath(CONFIG_FILE)]
        rendered[PurePosixPath(CONFIG_FILE)] = RenderedFile(
            config[0].encode("utf-8"), _is_executable(config_source.source))
        context["config"] = config[1]

    env = make_environment(chain)
    for dest, source in sorted(files.items()):
        if dest in rendered:
            continue
        if source.is_jinja:
            content = _render_file(env, source, context).encode("utf-8")
        else:
            content = source.source.read_bytes()
        rendered[dest] = RenderedFile(content, _is_executable(source.source))
    return dict(sorted(rendered.items()))


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def write_rendered(root: Path, rendered: dict[PurePosixPath, RenderedFile]) -> None:
    """Write ``rendered`` under ``root``, refusing any path that resolves outside it."""
    for dest, item in rendered.items():
        # Keep launch scripts executable, but never copy a read-only mode from an
        # installed template: the project belongs to its user.
        safefs.write_bytes(root, dest, item.content, executable=item.executable)


def _render_into(
    staging: Path, req: RenderRequest, package: str, task: str | None,
    user_overrides: dict[str, Any],
) -> tuple[list[str], str | None]:
    data_name = req.template.effective_sample_data(task) if req.sample_data else None
    rendered = render_files(req.template, req.project_name, package, task, req.backend,
                            user_overrides, has_sample_data=data_name is not None)
    write_rendered(staging, rendered)
    summary = _write_sample_data(staging, data_name) if data_name else None
    record = make_record(req.template, req.project_name, package, task, req.backend,
                         req.overrides, req.sample_data, rendered)
    write_project_state(staging, record, rendered)
    return sorted([dest.as_posix() for dest in rendered]
                  + [RECORD_FILE, pristine.STORE_FILE]), summary


def make_record(
    template: Template, project_name: str, package: str, task: str | None, backend: str,
    overrides: list[str], sample_data: bool, rendered: dict[PurePosixPath, RenderedFile],
) -> Record:
    """The ``.appgen.toml`` contents for ``rendered`` and the answers that produced it."""
    return Record(
        appgen_version=__version__,
        project_name=project_name,
        package=package,
        template=template.name,
        template_source=str(template.path),
        template_origin=template.source,
        task=task,
        backend=backend,
        sample_data=sample_data,
        overrides=list(overrides),
        files={dest.as_posix(): digest(item.content) for dest, item in rendered.items()},
    )


def write_project_state(
    project: Path, record: Record, rendered: dict[PurePosixPath, RenderedFile]
) -> None:
    """Write ``.appgen.toml`` and the pristine store for ``rendered`` into ``project``."""
    pristine.write_store(
        project, {dest.as_posix(): item.content for dest, item in rendered.items()},
        frozenset(dest.as_posix() for dest, item in rendered.items() if item.executable),
    )
    safefs.write_bytes(project, RECORD_FILE, record.to_toml().encode("utf-8"))


def _write_sample_data(staging: Path, name: str) -> str:
    try:
        # Imported lazily: providers pull in numpy and friends, which `appgen list` never needs.
        from appgen.datasets import get_writer
        from appgen.datasets.cache import write_sample

        writer = get_writer(name)
    except (ImportError, KeyError, AttributeError) as exc:
        raise RenderError(
            f"sample data {name!r} is not available ({exc}); use --no-sample-data"
        ) from None
    try:
        # A per-user cache keeps simulated samples (road frames, phantoms) for the next project.
        summary = write_sample(name, writer, staging / DATA_DIR, seed=0)
    except Exception as exc:  # any provider failure must still leave nothing behind
        raise RenderError(
            f"writing sample data {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return str(summary)


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        # mkdtemp made staging private (0700); give the project the user's usual permissions.
        staging.chmod(0o777 & ~safefs.current_umask())
        os.replace(staging, target)
        return
    if not any(target.iterdir()):
        for entry in staging.iterdir():
            os.replace(entry, target / entry.name)
        return
    # --force into a non-empty directory: check every conflict first, then overwrite
    # only the files we rendered; nothing the user has is deleted.
    all_files = [
        path.relative_to(staging) for path in sorted(staging.rglob("*"))
        if path.is_file() or path.is_symlink()
    ]
    for rel in all_files:
        destination = target / rel
        if destination.is_dir() and not destination.is_symlink():
            raise TargetNotEmptyError(f"{destination} is a folder but the template writes a file")
        for parent in rel.parents:
            existing = target / parent
            if parent != Path(".") and existing.exists() and not existing.is_dir():
                raise TargetNotEmptyError(
                    f"{existing} is a file but the template writes a folder there"
                )
    # The target may be a repository with links planted in it: check every destination
    # (no linked folder on the way, nothing under .git/) before the first write.
    for rel in all_files:
        safefs.checked_path(target, rel.as_posix())
    for rel in all_files:
        source = staging / rel
        if len(rel.parts) > 1:
            safefs.make_dirs(target, rel.parent.as_posix())
        destination = safefs.checked_path(target, rel.as_posix())
        # os.replace swaps the file atomically and replaces a symlink rather than following it.
        try:
            os.replace(source, destination)
        except OSError:  # staging on another filesystem than a mount-point target
            safefs.write_bytes(target, rel.as_posix(), source.read_bytes(),
                               executable=bool(source.stat().st_mode & 0o111))
