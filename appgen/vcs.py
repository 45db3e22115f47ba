"""What git says about a project folder (used to refuse updating a dirty work tree)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# The project may be someone else's repository, .git/config included: git status would
# run its core.fsmonitor command. (Filter drivers in .git/config remain the user's to check.)
_SAFE_CONFIG = ("-c", "core.fsmonitor=false")


def uncommitted_changes(project: Path) -> list[str] | None:
    """Paths under ``project`` with uncommitted changes (untracked ones included).

    Returns:
        None when ``project`` is not inside a git work tree or git is not installed
        (there is nothing to protect then); else the ``git status --porcelain`` lines,
        empty when the tree is clean.
    """
    git = shutil.which("git")
    if git is None:
        return None
    inside = subprocess.run([git, *_SAFE_CONFIG, "-C", str(project), "rev-parse",
                             "--is-inside-work-tree"],
                            capture_output=True, text=True, check=False, timeout=60)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    status = subprocess.run(
        [git, *_SAFE_CONFIG, "-C", str(project), "status", "--porcelain",
         "--untracked-files=all", "--", "."],
        capture_output=True, text=True, check=False, timeout=60,
    )
    if status.returncode != 0:
        return None
    return [line for line in status.stdout.splitlines() if line.strip()]
