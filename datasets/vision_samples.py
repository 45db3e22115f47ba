"""Real image samples that ship inside packages, written as class folders of PNGs.

- ``digits``: scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels), ten classes.
- ``faces``: scikit-image's LFW subset, 100 faces and 100 non-faces (25x25).

The files are read straight from the installed packages' data folders, so
writing a sample costs neither network nor importing scikit-learn.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from .png import encode_png
from .staging import staged_dir


def write_digits(out: Path, *, size: int | None = None, seed: int = 0, **_: object) -> str:
    """Write ``out/train/<digit>/NNNN.png``; ``size`` caps the number of images."""
    path = _package_file("sklearn", "datasets/data/digits.csv.gz")
    with gzip.open(path, "rt") as handle:
        # One flat split is ~20x faster than np.loadtxt on this 1797 x 65 table.
        table = np.array(",".join(handle.read().split()).split(","), dtype=np.float32)
    table = table.reshape(-1, 65)
    images = np.rint(table[:, :64].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)
    labels = table[:, 64].astype(int)
    count = _write_class_folders(out, images, [str(d) for d in labels], size, seed)
    return f"{count} handwritten digits (8x8 grayscale, 10 classes) in {out}/train"


def write_faces(out: Path, *, size: int | None = None, seed: int = 0, **_: object) -> str:
    """Write ``out/train/{face,non_face}/NNNN.png`` from scikit-image's LFW subset."""
    path = _package_file("skimage", "data/lfw_subset.npy")
    images = np.rint(np.load(path) * 255).astype(np.uint8)  # 200 x 25 x 25, faces first
    labels = ["face"] * 100 + ["non_face"] * 100
    count = _write_class_folders(out, images, labels, size, seed)
    return f"{count} LFW crops (25x25 grayscale, face / non_face) in {out}/train"


def _write_class_folders(out: Path, images: np.ndarray, labels: list[str], size: int | None,
                         seed: int) -> int:
    if size is not None and size < 2:
        raise ValueError(f"size must be at least 2 images, got {size}")
    order = np.random.default_rng(seed).permutation(len(images))[:size]
    with staged_dir(Path(out)) as staging:
        for name in set(labels):
            (staging / "train" / name).mkdir(parents=True)
        for index in order:
            path = staging / "train" / labels[index] / f"{index:04d}.png"
            path.write_bytes(encode_png(images[index]))
    return len(order)


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed; it ships this sample data")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package}")
    return path
