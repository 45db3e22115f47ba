"""Write a dataset folder completely or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """Yield a fresh folder next to ``out``; it becomes ``out`` only if the block succeeds.

    Raises:
        FileExistsError: ``out`` is a symbolic link, or exists and is not an empty folder
            (nothing is touched).
    """
    out = Path(out)
    if out.is_symlink():  # os.replace cannot put a folder there, and must not follow it
        raise FileExistsError(f"{out} is a symbolic link; give a folder path that is not one")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        os.chmod(staging, 0o755)  # mkdtemp makes it private to its creator
        os.replace(staging, out)  # replaces an empty folder atomically on POSIX
    finally:
        shutil.rmtree(staging, ignore_errors=True)
