"""Vision data: class folders of images -> uint8 arrays -> batches.

    data.dir/train/<class>/*.png|jpg   (or the class folders directly in data.dir)
    data.dir/val/<class>/...           optional; else a stratified split of train

``data.task = "detection"``: COCO, YOLO or Pascal VOC folders instead (the shared
``detection_data`` module).

Images are decoded once, resized to ``data.image_size`` and kept as uint8:
normalisation and augmentation happen inside the model, on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import detection_data
from .class_folders import class_root, find_classes, list_files
from .config import Config, choice, get
from .errors import DataError
from .media import IMAGE_SUFFIXES, UNREADABLE, decode_all, first_line, is_image, open_image
from .overlap import warn_overlap
from .pipeline import Batches, Splits, one_hot, stratified_split

TASKS = ("classification", "detection")
_KINDS = ", ".join(sorted(IMAGE_SUFFIXES))  # what a class folder must hold


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches plus what the model needs to know."""
    if choice(config, "data.task", TASKS) == "detection":
        return detection_data.load_splits(config, batch_size=batch_size)
    root = Path(get(config, "data.dir"))
    train_root = class_root(root)
    class_names = find_classes(train_root)
    cap = int(get(config, "data.max_images"))
    train_files, train_labels = list_files(train_root, class_names, is_image, _KINDS, cap=cap)
    val_dir = str(get(config, "data.val_dir"))
    val_root = Path(val_dir) if val_dir else (root / "val" if (root / "val").is_dir() else None)

    size = _image_size(config, train_files)
    mode = _color_mode(config, train_files)
    on_bad = choice(config, "data.on_bad_file", ("error", "skip"))
    images, labels = read_images(train_files, train_labels, size, mode, on_bad)
    if val_root is not None:
        val_files, val_labels = list_files(val_root, class_names, is_image, _KINDS,
                                           training=False)
        val_images, val_labels = read_images(val_files, val_labels, size, mode, on_bad)
    else:
        seed = int(get(config, "runtime.seed"))
        train_idx, val_idx = stratified_split(labels, float(get(config, "data.val_fraction")), seed)
        images, labels, val_images, val_labels = (
            images[train_idx], labels[train_idx], images[val_idx], labels[val_idx])
    warn_overlap(images, val_images, what="images")

    meta = {"class_names": class_names, "image_shape": list(images.shape[1:]),
            "summary": f"{len(class_names)} classes, {size}x{size} {mode}"}
    num_classes = len(class_names)
    from .augment import batch_transform

    train = Batches(images, one_hot(labels, num_classes), batch_size, training=True,
                    seed=int(get(config, "runtime.seed")), transform=batch_transform(config))
    val = Batches(val_images, one_hot(val_labels, num_classes), batch_size, training=False)
    return Splits(train, val, meta)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Batches from another folder of class folders, with the training run's classes."""
    if meta.get("task") == "detection":
        return detection_data.load_eval(config, path, meta, batch_size=batch_size)
    class_names = list(meta["class_names"])
    files, labels = list_files(class_root(Path(path)), class_names, is_image, _KINDS,
                               training=False)
    height, _, channels = meta["image_shape"]
    images, labels = read_images(files, labels, height, "grayscale" if channels == 1 else "rgb",
                                 choice(config, "data.on_bad_file", ("error", "skip")))
    return Batches(images, one_hot(labels, len(class_names)), batch_size, training=False)


def read_images(files: list[Path], labels: np.ndarray, size: int, mode: str, on_bad: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize every file in parallel; bad files raise or are skipped and counted."""
    images, keep, _ = decode_all(files, lambda path: _decode(path, size, mode), on_bad)
    return images, labels[keep]


def read_image(path: Path, size: int, mode: str) -> np.ndarray:
    """One image as uint8 ``size x size x channels``; DataError naming the file if unreadable."""
    image, _, err = _decode(path, size, mode)
    if image is None:
        raise DataError(f"cannot read image {path}: {err}")
    return image


def _decode(path: Path, size: int, mode: str) -> tuple[np.ndarray | None, None, str]:
    try:
        with open_image(path) as img:
            img.draft("L" if mode == "grayscale" else "RGB", (size, size))  # fast JPEG downscale
            pixels = img.convert("L" if mode == "grayscale" else "RGB")
            pixels = pixels.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(pixels, dtype=np.uint8)
    except UNREADABLE as err:
        return None, None, first_line(err)
    return (array[..., None] if array.ndim == 2 else array), None, ""


def _image_size(config: Config, files: list[Path]) -> int:
    asked = get(config, "data.image_size")
    if asked != "auto":
        if not isinstance(asked, int) or asked < 8:
            raise DataError(f"data.image_size must be 'auto' or an integer >= 8; got {asked!r}")
        return asked
    # Median side of a sample of the images, rounded up to a multiple of 8 and kept
    # between 32 and 96: big enough for small images, cheap enough for a CPU.
    sides = []
    for path in files[:: max(1, len(files) // 200)]:
        try:
            with open_image(path) as img:
                sides.append(min(img.size))
        except UNREADABLE:
            continue
    median = int(np.median(sides)) if sides else 32
    return int(min(96, max(32, -(-median // 8) * 8)))


def _color_mode(config: Config, files: list[Path]) -> str:
    asked = choice(config, "data.color_mode", ("auto", "rgb", "grayscale"))
    if asked != "auto":
        return asked
    for path in files[:: max(1, len(files) // 200)]:
        try:
            with open_image(path) as img:
                if img.mode not in ("L", "1", "I;16", "I", "LA"):
                    return "rgb"
        except UNREADABLE:
            continue
    return "grayscale"
