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
from collections.abc import Mapping
from pathlib import Path

from .errors import PristineStoreError
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
    path = project / STORE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(pack(files, executable))
    temporary.replace(path)
    return path


def read_store(project: Path, expected: Mapping[str, str]) -> dict[str, bytes]:
    """Read the pristine files of ``project``, checked against ``expected`` hashes.

    Projects generated before the store existed have none; then an empty dict is
    returned and callers use the working file wherever its hash still matches.

    Raises:
        PristineStoreError: if the archive is unreadable or a member's hash disagrees
            with ``.appgen.toml`` (the two were changed separately).
    """
    path = project / STORE_FILE
    if not path.is_file():
        return {}
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or member.name not in expected:
                    continue  # only files the record knows can be a merge base
                handle = archive.extractfile(member)
                if handle is not None:
                    files[member.name] = handle.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise PristineStoreError(f"{path} cannot be read ({exc}); restore it from version "
                                 "control") from None
    for rel, content in files.items():
        if digest(content) != expected[rel]:
            raise PristineStoreError(
                f"{path}: {rel} does not match its hash in .appgen.toml; restore both files "
                "from the same commit"
            )
    return files
