"""Object-detection sample: coloured shapes on textured backgrounds, in COCO layout.

    out/annotations/instances_train.json   COCO "images", "annotations", "categories"
    out/annotations/instances_val.json
    out/images/train/NNNNN.png, out/images/val/NNNNN.png

Every image has its own size (96..160 pixels a side, so letterboxing is exercised),
a background of smooth noise, stripes and clutter lines, and 0 to 4 circles, squares
and triangles of 12..44 pixels in random colours. About one image in twenty has
no object at all. Boxes are the exact pixel extent of each drawn shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .coco import coco_split
from .parallel import available_cpus, run_pieces
from .parallel import split as split_range
from .png import encode_png
from .staging import staged_dir

CLASSES = ("circle", "square", "triangle")
PARALLEL_MIN_IMAGES = 200  # smaller sets are not worth starting worker processes for


def write_shapes(out: Path, *, size: int | None = None, seed: int = 0, **_: object) -> str:
    """Write ``size`` images (default 800; a fifth of them are the val split).

    Image ``index`` of a split depends only on ``seed``, the split and ``index``, so the
    output is the same however the images are spread over worker processes.
    """
    total = 800 if size is None else int(size)
    if total < 2:
        raise ValueError(f"size must be at least 2 images; got {total}")
    val = max(1, total // 5)
    counts = {"train": total - val, "val": val}
    boxes = 0
    with staged_dir(Path(out)) as stage:
        (stage / "annotations").mkdir()
        for split in counts:
            (stage / "images" / split).mkdir(parents=True)
        # Both splits in one pass of worker processes: image k of the run is train image k,
        # then val image k - train count.
        parts = available_cpus() if total >= PARALLEL_MIN_IMAGES else 1
        pieces = run_pieces(_write_images, [(str(stage / "images"), seed, counts["train"],
                                             start, stop)
                                            for start, stop in split_range(total, parts)])
        written = [image for piece in pieces for image in piece]
        for split, images in (("train", written[:counts["train"]]),
                              ("val", written[counts["train"]:])):
            coco = coco_split(CLASSES, images)
            boxes += len(coco["annotations"])
            (stage / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return (f"{total} images with {boxes} boxes of {', '.join(CLASSES)} (COCO layout: "
            f"annotations/instances_{{train,val}}.json, images/{{train,val}}/) in {out}")


def _write_images(folder: str, seed: int, train_count: int, start: int, stop: int
                  ) -> list[tuple[str, int, int, list[tuple[int, tuple]]]]:
    """Render and write images ``start..stop-1`` of the run (train first, then val) under
    ``folder/<split>/``; their (file name, height, width, objects). Runs in a worker
    process for large sets."""
    written = []
    for number in range(start, stop):
        split, index = ("train", number) if number < train_count else (
            "val", number - train_count)
        rng = np.random.default_rng((seed, 0 if split == "train" else 1, index))
        image, objects = render_image(rng)
        name = f"{index:05d}.png"
        # level 1: these noisy backgrounds barely compress, and level 6 took 4x longer
        (Path(folder) / split / name).write_bytes(encode_png(image, level=1))
        written.append((name, image.shape[0], image.shape[1], objects))
    return written


def render_image(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, tuple]]]:
    """One RGB image and its objects as (class index, (x0, y0, x1, y1)) in pixels."""
    height, width = (int(v) for v in rng.integers(96, 161, size=2))
    image = _background(rng, height, width)
    objects: list[tuple[int, tuple]] = []
    wanted = 0 if rng.random() < 0.05 else int(rng.integers(1, 5))
    for _ in range(wanted * 4):  # a few tries per object to avoid heavy overlap
        if len(objects) == wanted:
            break
        side = int(rng.integers(12, 45))
        x0, y0 = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        box = (x0, y0, x0 + side, y0 + side)
        # overlap measured on the smaller box: a small shape under a big one would vanish
        if any(_covered(box, other) > 0.1 for _, other in objects):
            continue
        label = int(rng.integers(len(CLASSES)))
        mask = _shape_mask(label, side)
        ys, xs = np.nonzero(mask)
        tight = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1,
                 y0 + int(ys.max()) + 1)
        colour = rng.integers(0, 256, size=3)
        patch = image[y0:y0 + side, x0:x0 + side]
        patch[mask] = colour
        objects.append((label, tight))
    return image, objects


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour noise plus stripes and a few thin clutter lines."""
    coarse = rng.integers(40, 216, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    rows = np.linspace(0, coarse.shape[0] - 1.001, height)
    cols = np.linspace(0, coarse.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    smooth = (coarse[r0][:, c0] * (1 - fr) * (1 - fc) + coarse[r0 + 1][:, c0] * fr * (1 - fc)
              + coarse[r0][:, c0 + 1] * (1 - fr) * fc + coarse[r0 + 1][:, c0 + 1] * fr * fc)
    period, angle = rng.uniform(4, 12), rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = 20 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    image = smooth + stripes[..., None] + rng.normal(0, 8, size=(height, width, 3))
    for _ in range(int(rng.integers(2, 6))):  # clutter: lines are not objects
        y, colour = int(rng.integers(0, height)), rng.integers(0, 256, size=3)
        image[y:y + int(rng.integers(1, 3)), :] = colour
    return np.clip(image, 0, 255).astype(np.uint8)


def _shape_mask(label: int, side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    if CLASSES[label] == "circle":
        return (xx - side / 2) ** 2 + (yy - side / 2) ** 2 <= (side / 2) ** 2
    if CLASSES[label] == "square":
        return np.ones((side, side), bool)
    # triangle: apex at the top centre, base at the bottom
    return (yy >= side * np.abs(xx - side / 2) * 2 / side) & (yy <= side)


def _covered(a: tuple, b: tuple) -> float:
    """The intersection of two boxes as a share of the smaller one."""
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return inter_w * inter_h / smaller if smaller else 0.0
