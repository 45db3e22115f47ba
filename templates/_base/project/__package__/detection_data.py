"""Detection data: COCO / YOLO / VOC folders -> letterboxed images and padded boxes.

Every image is scaled to fit ``data.image_size`` (a square side, or ``[height, width]``;
aspect kept) and padded at the bottom and right with grey, so a box maps back to the
original pixels by one division (``scale`` per image, kept with the image's record).
Training targets are ``{"boxes": (n, max_boxes, 4) xyxy in model pixels,
"labels": (n, max_boxes)}``, padded with -1: what keras-hub's RetinaNet takes.

Box-aware augmentation (flip, scale jitter with crop, colour) runs on each training
batch here, in the input pipeline: keras-hub's detector reads the labels only in its
loss, so a layer inside the model could move the pixels but not the boxes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, choice, get
from .detection_formats import FORMATS, Item, detect_format, read_split, splits_present
from .errors import ConfigError, DataError, ProjectError
from .media import UNREADABLE, decode_all, first_line, open_image
from .pipeline import Batches, Splits

PAD_VALUE = 114  # the grey YOLO and others pad letterboxes with
MIN_SIDE = 1.0  # a box narrower or lower than this (pixels) is degenerate
EDGE_SLACK = 1.0  # annotation tools round: a box may overhang its image by a pixel


class DetectionBatches(Batches):
    """Batches of float [0, 1] images and padded box targets; ``records`` map boxes back.

    ``records[i]``: file, file_name, image_id, width, height, scale (model px per
    original px), and the original boxes and labels, for COCOeval and the plots.
    """

    def __init__(self, images: np.ndarray, targets: dict[str, np.ndarray], batch_size: int, *,
                 records: list[dict[str, Any]], **kwargs: Any) -> None:
        self.records = records
        super().__init__(images, targets, batch_size, **kwargs)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        images, targets = super().__getitem__(index)
        return images.astype(np.float32) / 255.0, targets


def require_cocoeval() -> None:
    """pycocotools scores every run once its last epoch is done: when it is missing, say so
    in one line before training, not in a traceback after it."""
    try:
        found = importlib.util.find_spec("pycocotools") is not None
    except (ImportError, ValueError):  # a broken installation counts as none
        found = False
    if not found:
        raise ProjectError("detection is scored with pycocotools (COCOeval), which is not "
                           "installed: pip install -e . in this project (or pip install "
                           "pycocotools)")


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches; classes from the training annotations."""
    require_cocoeval()
    root = Path(get(config, "data.dir"))
    fmt = detect_format(root, choice(config, "data.format", FORMATS))
    present = splits_present(root, fmt)
    train_items, names = read_split(root, fmt, "train" if "train" in present else None, None)
    if not names:
        raise DataError(f"{root}: the annotations name no classes")
    val_dir = str(get(config, "data.val_dir"))
    if val_dir:
        val_root = Path(val_dir)
        val_fmt = detect_format(val_root, choice(config, "data.format", FORMATS))
        val_items, _ = read_split(val_root, val_fmt, _eval_split(val_root, val_fmt), names)
    elif "val" in present:
        val_items, _ = read_split(root, fmt, "val", names)
    else:
        train_items, val_items = _split(train_items, float(get(config, "data.val_fraction")),
                                        int(get(config, "runtime.seed")))
    cap = int(get(config, "data.max_images"))
    if cap > 0:
        train_items = train_items[:cap]
    size = model_size(config)
    on_bad = choice(config, "data.on_bad_file", ("error", "skip"))
    images, records = read_items(train_items, size, on_bad)
    val_images, val_records = read_items(val_items, size, on_bad)
    max_boxes = max(1, *(len(r["labels"]) for r in records + val_records))
    meta = {"task": "detection", "class_names": names, "image_shape": [*size, 3],
            "format": fmt, "max_boxes": max_boxes,
            "summary": f"{fmt} layout, {len(names)} classes, "
                       f"{sum(len(r['labels']) for r in records)} training boxes, "
                       f"letterboxed to {size[0]}x{size[1]}"}
    from .detection_model import batch_transform

    seed = int(get(config, "runtime.seed"))
    train = DetectionBatches(images, targets(records, max_boxes), batch_size, records=records,
                             training=True, seed=seed, transform=batch_transform(config))
    val = DetectionBatches(val_images, targets(val_records, max_boxes), batch_size,
                           records=val_records, training=False)
    return Splits(train, val, meta)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *,
              batch_size: int) -> DetectionBatches:
    """Batches from another detection folder (its test, val or only split), the run's classes."""
    require_cocoeval()
    fmt = detect_format(Path(path), choice(config, "data.format", FORMATS))
    items, _ = read_split(Path(path), fmt, _eval_split(Path(path), fmt), list(meta["class_names"]))
    height, width = (int(side) for side in meta["image_shape"][:2])
    images, records = read_items(items, (height, width),
                                 choice(config, "data.on_bad_file", ("error", "skip")))
    max_boxes = max(1, *(len(r["labels"]) for r in records))
    return DetectionBatches(images, targets(records, max_boxes), batch_size, records=records,
                            training=False)


def model_size(config: Config) -> tuple[int, int]:
    """``data.image_size`` as (height, width): a side (square) or a ``[height, width]`` pair."""
    value = get(config, "data.image_size")
    sides = value if isinstance(value, list) else [value, value]
    if (len(sides) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 32
                               for v in sides)):
        raise ConfigError("data.image_size must be a side (128) or [height, width] "
                          f"([96, 192]) of at least 32 pixels for detection; got {value!r}")
    return int(sides[0]), int(sides[1])


def _eval_split(root: Path, fmt: str) -> str | None:
    present = splits_present(root, fmt)
    for name in ("test", "val", "train"):
        if name in present:
            return name
    return present[0] if present else None


def _split(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    if not 0.0 < fraction < 1.0 or len(items) < 2:
        raise DataError("no validation split found (val split, data.val_dir) and "
                        f"data.val_fraction = {fraction} cannot split {len(items)} image(s)")
    order = np.random.default_rng(seed).permutation(len(items))
    take = max(1, round(len(items) * fraction))
    return [items[i] for i in sorted(order[take:])], [items[i] for i in sorted(order[:take])]


def targets(records: list[dict[str, Any]], max_boxes: int) -> dict[str, np.ndarray]:
    """Padded model-pixel targets for keras-hub (-1 marks no box)."""
    boxes = np.full((len(records), max_boxes, 4), -1.0, np.float32)
    labels = np.full((len(records), max_boxes), -1, np.int32)
    for row, record in enumerate(records):
        count = min(max_boxes, len(record["labels"]))
        boxes[row, :count] = record["boxes"][:count] * record["scale"]
        labels[row, :count] = record["labels"][:count]
    return {"boxes": boxes, "labels": labels}


def read_items(items: list[Item], size: int | tuple[int, int], on_bad: str
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Decode and letterbox every image (threads); a bad image or box raises or is skipped."""
    if not items:
        raise DataError("no images in the detection split")
    images, _, records = decode_all([item.path for item in items],
                                    _decoder(items, size), on_bad)
    return images, records


def _decoder(items: list[Item], size: int | tuple[int, int]) -> Any:
    by_path = {item.path: item for item in items}

    def decode(path: Path) -> tuple[np.ndarray | None, dict[str, Any] | None, str]:
        item = by_path[path]
        if item.problem:
            return None, None, item.problem
        try:
            with open_image(path) as img:
                width, height = img.size
                image, scale = letterbox(img.convert("RGB"), size)
        except UNREADABLE as err:
            return None, None, first_line(err)
        extent = np.array([width, height, width, height], np.float32)
        boxes = item.boxes * extent if item.normalized else item.boxes
        problem = check_boxes(boxes, width, height)
        if problem:
            return None, None, problem
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        return image, {"file": str(path), "file_name": item.file_name,
                       "image_id": item.image_id, "width": width, "height": height,
                       "scale": scale, "boxes": boxes, "labels": item.labels}, ""

    return decode


def check_boxes(boxes: np.ndarray, width: int, height: int) -> str:
    """What is wrong with the first bad box (outside the image, degenerate), or ""."""
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        shown = f"box {index} [{x0:g}, {y0:g}, {x1:g}, {y1:g}] (x0, y0, x1, y1)"
        if not np.all(np.isfinite([x0, y0, x1, y1])):
            return f"{shown} is not a number"
        if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
            return f"{shown} is degenerate (under {MIN_SIDE:g} pixel wide or high)"
        if (x0 < -EDGE_SLACK or y0 < -EDGE_SLACK or x1 > width + EDGE_SLACK
                or y1 > height + EDGE_SLACK):
            return f"{shown} is outside the {width}x{height} image"
    return ""


def letterbox(image: Any, size: int | tuple[int, int]) -> tuple[np.ndarray, float]:
    """A PIL image scaled to fit ``size`` (a side, or (height, width); aspect kept), padded
    right and bottom; the scale."""
    from PIL import Image

    rows, cols = (size, size) if isinstance(size, int) else size
    width, height = image.size
    scale = min(cols / width, rows / height)
    new = (min(cols, max(1, round(width * scale))), min(rows, max(1, round(height * scale))))
    resized = np.asarray(image.resize(new, Image.Resampling.BILINEAR), dtype=np.uint8)
    canvas = np.full((rows, cols, 3), PAD_VALUE, np.uint8)
    canvas[:new[1], :new[0]] = resized
    return canvas, scale
