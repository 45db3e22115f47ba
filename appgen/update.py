"""``appgen update`` and ``appgen diff``: bring template changes into an edited project.

The project records its answers and the hash of every rendered file
(``.appgen.toml``) plus those files themselves (the pristine store). An update
re-renders from the answers (and any new ``--set``) with the installed appgen,
then, file by file:

    user never edited it (hash matches)   -> replaced by the new render
    user edited it, template changed it   -> three-way merge, pristine as base
    new in the template                   -> added
    gone from the template                -> removed if unedited, else kept and listed
    user deleted it                       -> stays deleted (listed if the template changed it)

Sample data (``data/``) is never rendered, so it is never touched.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import limits, pristine, safefs, settings, vcs
from .catalog import Template, find_template, load_template
from .errors import (
    AppgenError,
    DirtyWorkTreeError,
    InvalidProjectNameError,
    NotAProjectError,
    TemplateNotFoundError,
    UntrustedTemplateError,
)
from .merge import OURS_LABEL, is_binary, merge3
from .record import RECORD_FILE, Record, digest, load_record
from .render import (
    CONFIG_FILE,
    RenderedFile,
    check_backend,
    make_record,
    package_name,
    render_files,
    resolve_task,
    safe_relative_path,
    write_project_state,
)

# Kinds of change, in the order they are listed.
ADD = "add"  # new template file
UPDATE = "update"  # unedited file replaced by the new render
MERGE = "merge"  # edited file, template changes merged in cleanly
CONFLICT = "conflict"  # edited file, merged with conflict markers (or binary: yours kept)
REMOVE = "remove"  # gone from the template and unedited: deleted
KEEP = "keep"  # gone from the template but edited by you: kept
SKIP = "skip"  # you deleted it and the template changed it: not re-created
KINDS = (ADD, UPDATE, MERGE, CONFLICT, REMOVE, KEEP, SKIP)
_CONFLICT_MARKER = f"<<<<<<< {OURS_LABEL}".encode()


@dataclass
class UpdateOptions:
    """What ``appgen update`` was asked to do."""

    project: Path
    overrides: list[str] = field(default_factory=list)  # new --set values
    backend: str | None = None  # None: keep the recorded one
    task: str | None = None
    template_ref: str | None = None  # None: the recorded template
    dry_run: bool = False
    force: bool = False  # write into a dirty git work tree / over unresolved conflicts
    use_git: bool | None = None  # merge with git merge-file (None: when installed)


@dataclass(frozen=True)
class Change:
    """One file the update writes, deletes or leaves alone for a reason worth telling."""

    path: str
    kind: str
    detail: str = ""
    content: bytes | None = None  # bytes to write (add/update/merge/conflict)
    executable: bool = False


@dataclass
class UpdatePlan:
    """The full result of an update: what changes and the new record."""

    project: Path
    template: Template
    record: Record  # the new .appgen.toml
    rendered: dict[PurePosixPath, RenderedFile]
    changes: list[Change]
    dry_run: bool = False

    @property
    def conflicts(self) -> list[Change]:
        """Files left with conflict markers (or binary files where yours was kept)."""
        return [change for change in self.changes if change.kind == CONFLICT]


def update_project(options: UpdateOptions) -> UpdatePlan:
    """Re-render ``options.project`` and merge the result into it (unless a dry run).

    Raises:
        NotAProjectError: no readable ``.appgen.toml``.
        DirtyWorkTreeError: uncommitted git changes or unresolved conflicts, without --force.
        AppgenError: any rendering error (bad --set key...), before anything is written.
    """
    project = options.project.expanduser().absolute()
    record = load_record(project)
    if not options.dry_run and not options.force:
        _refuse_dirty(project, record)
    plan = plan_update(project, record, options)
    if not options.dry_run:
        apply_update(plan)
    return plan


def _refuse_dirty(project: Path, record: Record) -> None:
    changed = vcs.uncommitted_changes(project)
    if changed:
        example = changed[0].strip()
        raise DirtyWorkTreeError(
            f"{project} has uncommitted changes ({len(changed)} path(s), e.g. {example!r}); "
            "commit or stash them first so the update can be reviewed and undone, "
            "or pass --force"
        )
    for rel in record.files:
        content = _read_project_file(project, rel)
        if content is not None and _CONFLICT_MARKER in content:
            raise DirtyWorkTreeError(
                f"{rel} still holds conflict markers from an earlier update; resolve them "
                "first, or pass --force"
            )


def plan_update(project: Path, record: Record, options: UpdateOptions) -> UpdatePlan:
    """Work out every change without writing anything."""
    template = _recorded_template(project, record, options.template_ref)
    _check_answers(project, record)
    task = options.task if options.task is not None else record.task
    if (options.task is None and options.template_ref is not None
            and task not in template.effective_tasks()):
        task = None  # a new --template without that task: take its default
    task = resolve_task(template, task)
    backend = options.backend or record.backend
    check_backend(backend)
    overrides = merge_overrides(record.overrides, options.overrides)
    rendered = render_files(template, record.project_name, record.package, task, backend,
                            settings.parse_overrides(overrides),
                            has_sample_data=record.sample_data)
    new_record = make_record(template, record.project_name, record.package, task, backend,
                             overrides, record.sample_data, rendered)
    base = pristine.read_store(project, record.files)
    answers = _new_answers(options, record, backend, rendered)
    changes: list[Change] = []
    new_files = {dest.as_posix(): item for dest, item in rendered.items()}
    for rel in sorted(set(record.files) | set(new_files)):
        change = _plan_file(project, rel, record.files.get(rel), base.get(rel),
                            new_files.get(rel), options.use_git,
                            answers if rel == CONFIG_FILE else {})
        if change is not None:
            changes.append(change)
    changes.sort(key=lambda change: (KINDS.index(change.kind), change.path))
    return UpdatePlan(project, template, new_record, rendered, changes, options.dry_run)


def merge_overrides(recorded: list[str], new: list[str]) -> list[str]:
    """Recorded ``KEY=VALUE`` answers with ``new`` ones applied, one entry per key."""
    by_key: dict[str, str] = {}
    for item in [*recorded, *new]:
        key, _ = settings.parse_override(item)
        by_key.pop(key, None)  # the latest answer for a key moves to the end
        by_key[key] = item
    return list(by_key.values())


def _new_answers(options: UpdateOptions, record: Record, backend: str,
                 rendered: dict[PurePosixPath, RenderedFile]) -> dict[str, Any]:
    """Dotted key -> new value for every answer this update changes in config.toml."""
    config = rendered.get(PurePosixPath(CONFIG_FILE))
    if config is None:
        return {}
    values = settings.flatten(tomllib.loads(config.content.decode("utf-8")))
    keys = list(settings.parse_overrides(options.overrides))
    if backend != record.backend:
        keys.append("runtime.backend")
    return {key: values[key] for key in keys if key in values}


def _with_answers(content: bytes, answers: dict[str, Any]) -> bytes:
    """``content`` (a config.toml) with ``answers`` written in place, if it still has the keys.

    A new ``--set`` is an explicit request: writing it into both the user's file and
    the merge base means it takes effect even next to lines the user edited, instead
    of showing up as a conflict.
    """
    if not answers:
        return content
    try:
        text = settings.apply_overrides(content.decode("utf-8"), answers)
    except (AppgenError, UnicodeDecodeError):
        return content  # the user removed a key or broke the TOML: let the merge say so
    return text.encode("utf-8")


def _check_answers(project: Path, record: Record) -> None:
    """Re-validate the answers in ``.appgen.toml`` exactly as ``appgen new`` checks them.

    The record may come from a stranger's repository: its answers end up in folder
    names, shell scripts and YAML, so none is trusted because it was written down.
    (The task, backend and ``--set`` overrides are checked where they are used, by
    the same functions ``new`` calls.)
    """
    where = f"{project / RECORD_FILE}"
    try:
        package = package_name(record.project_name)
    except InvalidProjectNameError as exc:
        raise InvalidProjectNameError(f"{where}: {exc}") from None
    if record.package != package:
        raise InvalidProjectNameError(
            f"{where}: package {record.package!r} is not the package of project_name "
            f"{record.project_name!r} ({package!r}); restore .appgen.toml from version control"
        )


def _recorded_template(project: Path, record: Record, ref: str | None) -> Template:
    if ref is not None:
        return find_template(ref)  # typed by the user: trusted like `appgen new -t`
    template = _template_from_record(project, record)
    for member in template.chain():
        if member.source == "path" and member.path.resolve().is_relative_to(project.resolve()):
            # A template shipped inside the repository renders whatever its author wants
            # under your name: only a template you chose (--template) is trusted.
            raise UntrustedTemplateError(
                f"{project / RECORD_FILE}: template {member.name!r} ({member.path}) is inside "
                "the project; appgen only renders templates you chose (pass --template "
                "PATH to use it anyway)"
            )
    return template


def _template_from_record(project: Path, record: Record) -> Template:
    where = project / RECORD_FILE
    if record.template_origin != "path":
        if (not record.template or not record.template.isprintable()
                or record.template.startswith((".", "~")) or "/" in record.template
                or "\\" in record.template):
            # A path here would be loaded from wherever the record points.
            raise NotAProjectError(f"{where}: template {record.template!r} is not a template "
                                   "name")
        try:
            return find_template(record.template)
        except TemplateNotFoundError:
            if record.template_origin:  # a known built-in or user template has gone
                raise
    source = Path(record.template_source)
    if not source.is_absolute():
        raise NotAProjectError(f"{where}: template_source {record.template_source!r} is not "
                               "an absolute path")
    if not source.is_dir():
        raise TemplateNotFoundError(
            f"template {record.template!r} was rendered from {source}, which no longer "
            "exists; pass --template with its new name or path"
        )
    return load_template(source.resolve(), source="path")


def _project_path(project: Path, rel: str) -> Path:
    # Paths come from .appgen.toml, which a user (or a stranger's repository) can edit:
    # no link out of the project, no linked folder on the way, nothing under .git/.
    safe_relative_path(rel)
    return safefs.checked_path(project, rel)


def _read_project_file(project: Path, rel: str) -> bytes | None:
    safe_relative_path(rel)
    return safefs.read_bytes(project, rel, max_bytes=limits.MAX_FILE_BYTES.value(),
                             knob=limits.MAX_FILE_BYTES.env)


def _plan_file(
    project: Path, rel: str, old_hash: str | None, base: bytes | None,
    new: RenderedFile | None, use_git: bool | None, answers: dict[str, Any],
) -> Change | None:
    path = _project_path(project, rel)
    if path.is_dir() and not path.is_symlink():
        return Change(rel, CONFLICT, "a folder is where the template has a file; left alone")
    current = _read_project_file(project, rel)
    if new is None:  # the template no longer has this file
        if current is None:
            return None
        if digest(current) == old_hash:
            return Change(rel, REMOVE, "no longer in the template")
        return Change(rel, KEEP, "no longer in the template; you edited it, so it stays")
    if current is None:
        if old_hash is None:
            return Change(rel, ADD, "new in the template", new.content, new.executable)
        if digest(new.content) != old_hash:
            return Change(rel, SKIP, "you deleted it; the template changed it (not re-created)")
        return None
    if current == new.content:
        return None
    if old_hash is not None and digest(current) == old_hash:
        return Change(rel, UPDATE, "", new.content, new.executable)
    if old_hash is not None and digest(new.content) == old_hash:
        return None  # only you changed it: your version stays as it is
    if base is None:
        # A file the template adds where you already have one, or a record without a
        # pristine store: merge with an empty base, so only identical lines merge.
        base = b""
    elif answers:
        current, base = _with_answers(current, answers), _with_answers(base, answers)
    if is_binary(current) or is_binary(new.content) or is_binary(base):
        return Change(rel, CONFLICT, "binary file changed by you and by the template; "
                                     "yours kept")
    result = merge3(current, base, new.content, use_git=use_git)
    if result.conflicts:
        return Change(rel, CONFLICT, f"{result.conflicts} conflict(s) marked", result.content)
    return Change(rel, MERGE, "your edits kept, template changes merged in", result.content)


def apply_update(plan: UpdatePlan) -> None:
    """Write the planned changes, then the new ``.appgen.toml`` and pristine store."""
    project = plan.project
    for change in plan.changes:  # checked before the first write: a bad path writes nothing
        _project_path(project, change.path)
    for change in plan.changes:
        if change.kind == REMOVE:
            path = _project_path(project, change.path)
            safefs.remove(project, change.path)
            _remove_empty_parents(path.parent, project)
        elif change.content is not None:
            # Merged files keep the user's permissions; replaced ones follow the template.
            safefs.write_bytes(project, change.path, change.content,
                               executable=change.executable,
                               keep_mode=change.kind in (MERGE, CONFLICT))
    write_project_state(project, plan.record, plan.rendered)


def _remove_empty_parents(folder: Path, project: Path) -> None:
    while folder != project and folder.is_relative_to(project):
        try:
            folder.rmdir()
        except OSError:  # not empty: the user keeps something there
            return
        folder = folder.parent


# --------------------------------------------------------------------------- diff


def diff_project(project: Path) -> str:
    """Unified diff of the user's edits against the pristine render ('' when none).

    Raises:
        NotAProjectError, PristineStoreError: when the record or store is unusable.
    """
    project = project.expanduser().absolute()
    record = load_record(project)
    base = pristine.read_store(project, record.files)
    chunks: list[str] = []
    for rel in sorted(record.files):
        current = _read_project_file(project, rel)
        if current is not None and digest(current) == record.files[rel]:
            continue
        original = base.get(rel)
        if original is None:
            chunks.append(f"# {rel}: edited, but there is no pristine copy to compare with\n")
            continue
        if is_binary(original) or (current is not None and is_binary(current)):
            chunks.append(f"Binary files a/{rel} and b/{rel} differ\n")
            continue
        new_lines = _lines(current) if current is not None else []
        chunks.append("".join(difflib.unified_diff(
            _lines(original), new_lines, fromfile=f"a/{rel}",
            tofile=f"b/{rel}" if current is not None else "/dev/null",
        )))
    return "".join(chunks)


def _lines(content: bytes) -> list[str]:
    lines = content.decode("utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
