"""Reading and writing inside one folder without ever leaving it through a symlink.

Every file the generator writes into a project (rendered files, ``.appgen.toml``,
the pristine store, ``update``'s merges) goes through this module, because the
project may be a repository someone else committed: any name in it can be a
symlink planted to redirect a write to ``~/.bashrc``. The rules:

- a path is given relative to the folder being written (the root) and may not be
  absolute or climb with ``..``;
- no folder between the root and the file may be a symlink, and nothing may be
  written, read or removed under ``.git/`` (hooks there would run on the next git
  command);
- a file is written to a fresh temporary name created exclusively
  (``tempfile.mkstemp``: ``O_CREAT | O_EXCL``, so it never opens an existing file
  or link) and then renamed over the target; a rename replaces a symlink at the
  target instead of following it.

The root itself is trusted: it is the folder the user named.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

from .errors import LimitError, UnsafePathError

GIT_DIR = ".git"
TEMP_PREFIX = ".appgen-tmp-"


def relative_parts(rel: str | PurePosixPath) -> tuple[str, ...]:
    """The parts of ``rel``, refusing absolute paths, ``..``, ``.`` and ``.git``.

    Raises:
        UnsafePathError: naming ``rel``.
    """
    text = rel.as_posix() if isinstance(rel, PurePosixPath) else rel
    parts = tuple(text.replace("\\", "/").split("/"))
    if (not text or text.startswith("/") or "\x00" in text or ":" in parts[0]
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePathError(f"{text!r} is not a plain path inside the project")
    if any(part.lower() == GIT_DIR for part in parts):
        raise UnsafePathError(f"{text}: appgen never writes or reads inside .git/")
    return parts


def checked_path(root: Path, rel: str | PurePosixPath) -> Path:
    """``root / rel`` after checking it stays inside ``root``.

    Every folder between ``root`` and the file must be a real folder (or not exist
    yet), never a symlink. The file itself may be a symlink only if it points
    inside ``root`` (writes replace such a link, they never follow it).

    Raises:
        UnsafePathError: naming the offending path.
    """
    parts = relative_parts(rel)
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnsafePathError(f"{current} is a symbolic link; appgen does not write "
                                  "through links")
    path = current / parts[-1]
    if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePathError(f"{path} is a symbolic link that points outside {root}")
    return path


def make_dirs(root: Path, rel: str | PurePosixPath) -> Path:
    """Create the folder ``root / rel`` and its parents, refusing any symlink on the way."""
    current = root
    for part in relative_parts(rel):
        current = current / part
        try:
            os.mkdir(current)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise UnsafePathError(f"{current} is not a folder (a file or a symbolic "
                                      "link is in the way)") from None
    return current


def write_bytes(root: Path, rel: str | PurePosixPath, content: bytes, *,
                executable: bool = False, keep_mode: bool = False) -> Path:
    """Write ``content`` to ``root / rel`` atomically, never through a symlink.

    Args:
        root: the folder being written (trusted).
        rel: the file's path relative to ``root``.
        content: the bytes.
        executable: add the execute bits the umask allows (launch scripts).
        keep_mode: keep the permissions of the file being replaced, if it is one.

    Raises:
        UnsafePathError: ``rel`` escapes ``root``, crosses a symlink or is under ``.git/``.
    """
    path = checked_path(root, rel)
    parts = relative_parts(rel)
    if len(parts) > 1:
        make_dirs(root, PurePosixPath(*parts[:-1]))
    umask = current_umask()
    mode = 0o666 & ~umask
    if executable:
        mode |= 0o111 & ~umask
    if keep_mode:
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISREG(existing.st_mode):
                mode = stat.S_IMODE(existing.st_mode)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_bytes(root: Path, rel: str | PurePosixPath, *, max_bytes: int,
               knob: str = "") -> bytes | None:
    """The bytes of ``root / rel`` (None if it is not a file), refusing files over ``max_bytes``.

    Raises:
        UnsafePathError: the path escapes ``root`` (see :func:`checked_path`).
        LimitError: the file is larger than ``max_bytes`` (``knob`` names the setting).
    """
    path = checked_path(root, rel)
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        check_size(path, size, max_bytes, knob)
        return handle.read(max_bytes + 1)


def check_size(path: Path | str, size: int, max_bytes: int, knob: str) -> None:
    """Raise :class:`LimitError` if ``size`` is over ``max_bytes``."""
    if size > max_bytes:
        hint = f" (raise it with {knob})" if knob else ""
        raise LimitError(f"{path}: {size} bytes is over the limit of {max_bytes}{hint}")


def remove(root: Path, rel: str | PurePosixPath) -> None:
    """Delete the file ``root / rel`` (a symlink there is removed, not followed)."""
    checked_path(root, rel).unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask (read by setting it and restoring it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask
