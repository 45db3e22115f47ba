"""The pristine render: every rendered file exactly as appgen wrote it.

Stored inside the project as one deterministic ``.appgen/pristine.tar.gz`` (fixed
order, times and owners, so regenerating the same files gives the same bytes and
git sees no change). It is the base of ``appgen update``'s three-way merges and
what ``appgen diff`` compares against. Sample data is never in it. Each member is
checked against the SHA-256 recorded in ``.appgen.toml`` when read.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from . import limits, safefs
from .errors import LimitError, PristineStoreError, UnsafePathError
from .record import digest

STORE_DIR = ".appgen"
STORE_FILE = f"{STORE_DIR}/pristine.tar.gz"


def pack(files: Mapping[str, bytes], executable: frozenset[str] = frozenset()) -> bytes:
    """A gzip'd tar of ``files`` (POSIX path -> bytes) with reproducible bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for rel in sorted(files):
            content = files[rel]
            info = tarfile.TarInfo(rel)
            info.size = len(content)
            info.mode = 0o755 if rel in executable else 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="",
                       compresslevel=6) as compressed:
        compressed.write(raw.getvalue())
    return out.getvalue()


def write_store(project: Path, files: Mapping[str, bytes],
                executable: frozenset[str] = frozenset()) -> Path:
    """Write the pristine archive of ``files`` into ``project`` and return its path."""
    return safefs.write_bytes(project, STORE_FILE, pack(files, executable))


def read_store(project: Path, expected: Mapping[str, str]) -> dict[str, bytes]:
    """Read the pristine files of ``project``, checked against ``expected`` hashes.

    Projects generated before the store existed have none; then an empty dict is
    returned and callers use the working file wherever its hash still matches.

    The archive may come from a stranger's repository, so it is read as a stream
    through a byte budget (``APPGEN_MAX_PRISTINE_BYTES``, counting headers and
    skipped members, which also stops a gzip bomb), each member's declared size is
    checked before it is read (``APPGEN_MAX_FILE_BYTES``), and anything appgen never
    writes there (links, folders, devices, odd paths) is refused.

    Raises:
        PristineStoreError: if the archive is unreadable, holds a member appgen never
            writes, or a member's hash disagrees with ``.appgen.toml`` (the two were
            changed separately).
        LimitError: if a limit is exceeded (the message names its variable).
    """
    path = safefs.checked_path(project, STORE_FILE)
    if not path.is_file():
        return {}
    max_file = limits.MAX_FILE_BYTES.value()
    budget = limits.MAX_PRISTINE_BYTES.value()
    max_members = limits.MAX_PRISTINE_MEMBERS.value()
    files: dict[str, bytes] = {}
    try:
        with gzip.open(path, "rb") as compressed:
            capped = _BudgetReader(compressed, budget, path)
            with tarfile.open(fileobj=capped, mode="r|") as archive:
                for count, member in enumerate(archive, start=1):
                    if count > max_members:
                        safefs.check_size(path, count, max_members,
                                          limits.MAX_PRISTINE_MEMBERS.env)
                    _check_member(path, member, max_file)
                    if member.name not in expected:
                        continue  # only files the record knows can be a merge base
                    handle = archive.extractfile(member)
                    if handle is not None:
                        files[member.name] = handle.read(member.size)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise PristineStoreError(f"{path} cannot be read ({exc}); restore it from version "
                                 "control") from None
    for rel, content in files.items():
        if digest(content) != expected[rel]:
            raise PristineStoreError(
                f"{path}: {rel} does not match its hash in .appgen.toml; restore both files "
                "from the same commit"
            )
    return files


def _check_member(path: Path, member: tarfile.TarInfo, max_file: int) -> None:
    if not member.isfile():
        raise PristineStoreError(f"{path}: member {member.name!r} is not a regular file; "
                                 "appgen never writes one, restore the store from version "
                                 "control")
    try:
        safefs.relative_parts(member.name)
    except UnsafePathError:
        raise PristineStoreError(f"{path}: member {member.name!r} is not a plain project "
                                 "path; restore the store from version control") from None
    safefs.check_size(f"{path}: member {member.name}", member.size, max_file,
                      limits.MAX_FILE_BYTES.env)


class _BudgetReader(io.RawIOBase):
    """A read-only stream that fails once more than ``budget`` bytes were read from it."""

    def __init__(self, inner: io.BufferedIOBase, budget: int, path: Path) -> None:
        super().__init__()
        self.inner, self.left, self.budget, self.path = inner, budget, budget, path

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            # Ask for one byte more than allowed: any answer past the budget is an error.
            size = self.left + 1
        chunk = self.inner.read(size)
        self.left -= len(chunk)
        if self.left < 0:
            raise LimitError(f"{self.path}: more than {self.budget} bytes uncompressed "
                             f"(raise it with {limits.MAX_PRISTINE_BYTES.env})")
        return chunk
