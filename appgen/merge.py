"""Three-way merge of one text file: the user's version, the pristine base, the new render.

``git merge-file`` does the work when git is installed (it is what users know and
it refines conflicts to the lines that really differ); otherwise a small
pure-Python diff3 gives the same kind of result. Conflicts use the standard
``<<<<<<<`` / ``=======`` / ``>>>>>>>`` markers.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MergeError

OURS_LABEL = "yours"
BASE_LABEL = "pristine"
THEIRS_LABEL = "template"


@dataclass(frozen=True)
class MergeResult:
    """The merged bytes and how many conflict regions they hold."""

    content: bytes
    conflicts: int


def is_binary(content: bytes) -> bool:
    """Whether ``content`` looks binary (NUL byte or not UTF-8): such files are not merged."""
    if b"\x00" in content[:8192]:
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def merge3(ours: bytes, base: bytes, theirs: bytes, *, use_git: bool | None = None) -> MergeResult:
    """Merge ``theirs``' changes to ``base`` into ``ours``.

    Args:
        ours: the user's current file.
        base: the pristine render the user started from (empty when unknown).
        theirs: the new render.
        use_git: force git (True) or pure Python (False); None picks git when installed.

    Raises:
        MergeError: if git is asked for and missing, or fails for another reason.
    """
    if use_git is None:
        use_git = shutil.which("git") is not None
    if use_git:
        return _merge_with_git(ours, base, theirs)
    merged, conflicts = _diff3(_lines(ours), _lines(base), _lines(theirs))
    return MergeResult("".join(merged).encode("utf-8"), conflicts)


def _merge_with_git(ours: bytes, base: bytes, theirs: bytes) -> MergeResult:
    git = shutil.which("git")
    if git is None:
        raise MergeError("git is not installed; it is needed for `git merge-file`")
    with tempfile.TemporaryDirectory(prefix="appgen-merge-") as folder:
        paths = []
        for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(folder, name)
            path.write_bytes(content)
            paths.append(str(path))
        completed = subprocess.run(
            [git, "merge-file", "-p", "-L", OURS_LABEL, "-L", BASE_LABEL, "-L", THEIRS_LABEL,
             *paths],
            # Run outside the project: its .git/config is not ours to load.
            capture_output=True, check=False, timeout=60, cwd=folder,
        )
    # merge-file exits with the number of conflicts (capped at 127); negative on errors.
    if completed.returncode < 0 or completed.returncode > 127:
        message = completed.stderr.decode("utf-8", "replace").strip()
        raise MergeError(f"git merge-file failed: {message or completed.returncode}")
    return MergeResult(completed.stdout, completed.returncode)


def _lines(content: bytes) -> list[str]:
    return content.decode("utf-8").splitlines(keepends=True)


def _diff3(ours: list[str], base: list[str], theirs: list[str]) -> tuple[list[str], int]:
    """The classic diff3 walk over regions where all three versions agree."""
    sync = _sync_regions(base, ours, theirs)
    merged: list[str] = []
    conflicts = 0
    base_at = ours_at = theirs_at = 0
    for base_start, base_end, ours_start, ours_end, theirs_start, theirs_end in sync:
        base_chunk = base[base_at:base_start]
        ours_chunk = ours[ours_at:ours_start]
        theirs_chunk = theirs[theirs_at:theirs_start]
        if ours_chunk == theirs_chunk or theirs_chunk == base_chunk:
            merged += ours_chunk
        elif ours_chunk == base_chunk:
            merged += theirs_chunk
        else:
            conflicts += 1
            merged += [f"<<<<<<< {OURS_LABEL}\n", *_closed(ours_chunk), "=======\n",
                       *_closed(theirs_chunk), f">>>>>>> {THEIRS_LABEL}\n"]
        merged += base[base_start:base_end]
        base_at, ours_at, theirs_at = base_end, ours_end, theirs_end
    return merged, conflicts


def _closed(chunk: list[str]) -> list[str]:
    # A marker must start its own line even when the chunk ends without a newline.
    if chunk and not chunk[-1].endswith("\n"):
        return [*chunk[:-1], chunk[-1] + "\n"]
    return chunk


def _sync_regions(
    base: list[str], ours: list[str], theirs: list[str]
) -> list[tuple[int, int, int, int, int, int]]:
    ours_blocks = difflib.SequenceMatcher(None, base, ours, autojunk=False).get_matching_blocks()
    theirs_blocks = difflib.SequenceMatcher(None, base, theirs,
                                            autojunk=False).get_matching_blocks()
    regions: list[tuple[int, int, int, int, int, int]] = []
    i = j = 0
    while i < len(ours_blocks) and j < len(theirs_blocks):
        ours_base, ours_match, ours_length = ours_blocks[i]
        theirs_base, theirs_match, theirs_length = theirs_blocks[j]
        start = max(ours_base, theirs_base)
        end = min(ours_base + ours_length, theirs_base + theirs_length)
        if start < end:
            ours_start = ours_match + start - ours_base
            theirs_start = theirs_match + start - theirs_base
            regions.append((start, end, ours_start, ours_start + end - start,
                            theirs_start, theirs_start + end - start))
        if ours_base + ours_length < theirs_base + theirs_length:
            i += 1
        else:
            j += 1
    regions.append((len(base), len(base), len(ours), len(ours), len(theirs), len(theirs)))
    return regions
