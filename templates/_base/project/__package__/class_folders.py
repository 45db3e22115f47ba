"""Labelled images as class folders: ``root/<class>/...``, the classes sorted by name.

Vision (photos) and medical classification (DICOM / PNG slices) both read their data
this way; what counts as an image is theirs (``accepts``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import DataError

SPLIT_FOLDERS = ("train", "val")  # beside the classes, never a class


def class_root(root: Path) -> Path:
    """``root`` itself, or ``root/train`` when the classes sit there."""
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (set data.dir in config.toml)")
    return root / "train" if (root / "train").is_dir() else root


def find_classes(root: Path, pattern: str = "*.png") -> list[str]:
    """The class folders' names, sorted; at least two. ``pattern`` shows what goes inside."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name not in SPLIT_FOLDERS)
    if not names:
        raise DataError(f"{root} has no class folders; expected {root}/<class>/{pattern}")
    if len(names) == 1:
        raise DataError(f"{root} has only one class ({names[0]}); need at least 2 class folders")
    return names


def list_files(root: Path, class_names: list[str], accepts: Callable[[Path], bool],
               kinds: str, *, training: bool = True, cap: int = 0
               ) -> tuple[list[Path], np.ndarray]:
    """Every file ``accepts`` takes below each class folder, with its class index (int32).

    Training data: every class folder must hold at least one (``kinds`` names what is
    looked for), and at most ``cap`` are taken per class (0: all). Otherwise
    (validation, evaluation) a missing class folder is allowed and one of a class the
    model was not trained on is refused.
    """
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist")
    if not training:
        unknown = sorted({p.name for p in root.iterdir() if p.is_dir()
                          and not p.name.startswith(".")} - set(class_names) - set(SPLIT_FOLDERS))
        if unknown:
            raise DataError(f"{root / unknown[0]} is not one of the training classes "
                            f"({', '.join(class_names)})")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        folder = root / name
        found = sorted(p for p in folder.rglob("*") if accepts(p)) if folder.is_dir() else []
        if training and not found:
            raise DataError(f"class folder {folder} holds no images ({kinds})")
        found = found[:cap] if cap > 0 else found
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"no images found under {root}")
    return files, np.asarray(labels, dtype=np.int32)
