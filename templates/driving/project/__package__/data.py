"""Driving data: front-camera frames -> uint8 arrays -> batches.

    data.dir/images/*.png|jpg     camera frames (any size: resized to data.image_height x width)
    data.dir/labels.csv           steering: filename,steering[,throttle,...] (one row per frame)
    data.dir/masks/<stem>.png     segmentation: uint8 class ids, same size as the frame

``data.task = "detection"``: COCO, YOLO or Pascal VOC folders instead (the shared
``detection_data`` module, as in the vision template).

Frames are decoded once and kept as uint8; normalisation, cropping and brightness /
shadow augmentation are layers inside the model. Two augmentations change the label
as well, so they act on the batch here: the horizontal flip (steering negated, mask
flipped with its frame) and steering balancing (rare sharp turns drawn more often).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import detection_data
from .config import Config, choice, get
from .errors import ConfigError, DataError
from .media import IMAGE_SUFFIXES, UNREADABLE, decode_all, first_line, open_image
from .overlap import warn_overlap
from .pipeline import Batches, BatchTransform, Splits
from .tables import open_table

TASKS = ("steering", "segmentation", "detection")
Image.MAX_IMAGE_PIXELS = 20_000 * 20_000  # refuse decompression bombs beyond 400 MP


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches plus what the model needs to know."""
    task = choice(config, "data.task", TASKS)
    if task == "detection":
        return detection_data.load_splits(config, batch_size=batch_size)
    seed = int(get(config, "runtime.seed"))
    images, targets, names = _load_folder(config, Path(get(config, "data.dir")), task,
                                          cap=int(get(config, "data.max_images")))
    val_dir = str(get(config, "data.val_dir"))
    if val_dir:
        val_images, val_targets, _ = _load_folder(config, Path(val_dir), task, cap=0)
    else:
        fraction = float(get(config, "data.val_fraction"))
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be between 0 and 1, got {fraction}")
        if len(names) < 2:
            raise DataError(f"{get(config, 'data.dir')} has {len(names)} usable frame(s); "
                            "need at least 2 to hold some out for validation")
        order = np.random.default_rng(seed).permutation(len(names))
        cut = max(1, round(len(names) * fraction))
        val_idx, train_idx = np.sort(order[:cut]), np.sort(order[cut:])  # sorted: keeps sequence
        images, targets, val_images, val_targets = (
            images[train_idx], targets[train_idx], images[val_idx], targets[val_idx])
    warn_overlap(images, val_images, what="frames")

    meta = _meta(config, task, images, targets)
    train = BalancedBatches(images, targets, batch_size, training=True, seed=seed,
                            transform=flip_transform(config, meta),
                            weights=balance_weights(config, targets, task))
    val = Batches(val_images, val_targets, batch_size, training=False)
    return Splits(train, val, meta)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Labelled batches from another folder in the same layout, at the run's frame size."""
    if meta["task"] == "detection":
        return detection_data.load_eval(config, path, meta, batch_size=batch_size)
    height, width, _ = meta["image_shape"]
    images, targets, _ = _load_folder(config, Path(path), meta["task"], cap=0,
                                      size=(height, width), targets=meta.get("targets"))
    return Batches(images, targets, batch_size, training=False)


# --------------------------------------------------------------------------- batches


class BalancedBatches(Batches):
    """Training batches whose epoch order is drawn with per-sample ``weights``.

    Equal weights give the usual shuffle. Steering balancing gives frames in rare
    steering bins a larger chance, so the model sees sharp turns as often as the
    configured balance asks while an epoch keeps its length.
    """

    def __init__(self, inputs: Any, targets: np.ndarray, batch_size: int, *,
                 weights: np.ndarray | None = None, **kwargs: Any) -> None:
        self.weights = None if weights is None else weights / weights.sum()
        super().__init__(inputs, targets, batch_size, **kwargs)

    def on_epoch_end(self) -> None:
        if self.weights is None or not self.training:
            super().on_epoch_end()
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        self.order = rng.choice(len(self.targets), size=len(self.targets), p=self.weights)
        self.epoch += 1


def balance_weights(config: Config, targets: np.ndarray, task: str) -> np.ndarray | None:
    """Per-frame sampling weights that flatten the steering histogram, or None when off.

    ``sqrt`` weights a frame by 1/sqrt(frames in its bin), ``full`` by 1/frames in its bin
    (every bin equally likely). The first target (steering) is binned.
    """
    mode = choice(config, "augment.balance", ("none", "sqrt", "full"))
    if task != "steering" or mode == "none":
        return None
    bins = int(get(config, "augment.balance_bins"))
    if bins < 2:
        raise ConfigError(f"augment.balance_bins must be at least 2, got {bins}")
    steering = targets[:, 0]
    edges = np.linspace(steering.min(), steering.max() + 1e-9, bins + 1)
    which = np.clip(np.digitize(steering, edges) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    return 1.0 / counts[which] ** (0.5 if mode == "sqrt" else 1.0)


def flip_transform(config: Config, meta: dict[str, Any]) -> BatchTransform | None:
    """Mirror a random share of each training batch left-right, with its labels.

    Every frame of the batch is flipped with chance ``augment.flip``, drawn anew for each
    batch. Steering-like targets (``data.flip_negates``) change sign; masks are mirrored
    with their frames. The flip runs in place on the batch's uint8 copy, one OpenCV call per
    frame: numpy's reversed-stride copy of 3-byte pixels was 10x slower and capped the whole
    pipeline at about 15k frames/s (see ``bench``'s "pipeline alone").
    """
    chance = float(get(config, "augment.flip"))
    if chance <= 0:
        return None
    if chance > 1:
        raise ConfigError(f"augment.flip is a probability in [0, 1], got {chance}")
    import cv2  # only needed when flipping; a dependency of the project anyway

    sign = np.asarray(meta.get("flip_sign", []), dtype=np.float32)

    def transform(images: Any, targets: np.ndarray, rng: np.random.Generator
                  ) -> tuple[Any, np.ndarray]:
        flip = np.flatnonzero(rng.random(len(targets)) < chance)
        images = np.ascontiguousarray(images)  # already so: a gathered batch is a fresh copy
        for index in flip:
            cv2.flip(images[index], 1, dst=images[index])
        if targets.ndim == 3:  # segmentation masks, mirrored with their frames
            targets = np.ascontiguousarray(targets)
            for index in flip:
                cv2.flip(targets[index], 1, dst=targets[index])
        else:
            targets[flip] = targets[flip] * sign
        return images, targets

    return transform


# --------------------------------------------------------------------------- reading


def read_frame(path: Path, height: int, width: int) -> np.ndarray:
    """One frame as uint8 ``height x width x 3``; DataError naming the file if unreadable."""
    frame, _, err = _decode(path, (height, width), "RGB")
    if frame is None:
        raise DataError(f"cannot read image {path}: {err}")
    return frame


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` (not recursive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file() and not p.name.startswith("."))


def _load_folder(config: Config, root: Path, task: str, *, cap: int,
                 size: tuple[int, int] | None = None, targets: list[str] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (set data.dir in config.toml)")
    if not (root / "images").is_dir():
        raise DataError(f"{root} has no images/ folder; expected {root}/images/*.png")
    size = size or (int(get(config, "data.image_height")), int(get(config, "data.image_width")))
    if min(size) < 16:
        raise ConfigError(f"data.image_height and data.image_width must be at least 16, got {size}")
    on_bad = choice(config, "data.on_bad_file", ("error", "skip"))
    if task == "steering":
        names = list(targets or get(config, "data.targets"))
        files, labels = _read_labels(root, names, on_bad)
    else:
        files = list_images(root / "images")
        if not files:
            raise DataError(f"{root / 'images'} has no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        labels = np.zeros(len(files), dtype=np.float32)  # placeholder; masks replace it
    if cap > 0:
        files, labels = files[:cap], labels[:cap]

    images, keep, resized = _decode_all(files, size, "RGB", on_bad)
    if resized:
        print(f"note: resized {len(resized)} frame(s) to {size[1]}x{size[0]} "
              f"(first: {resized[0][0]}, {resized[0][1][0]}x{resized[0][1][1]})", flush=True)
    files = [files[i] for i in keep]
    if task == "steering":
        return images, labels[keep], [f.name for f in files]
    masks = _read_masks(root, files, size, len(get(config, "data.class_names")))
    return images, masks, [f.name for f in files]


def _read_labels(root: Path, targets: list[str], on_bad: str) -> tuple[list[Path], np.ndarray]:
    """Rows of labels.csv -> (image paths, float32 targets); bad rows are named by line."""
    labels_csv = root / "labels.csv"
    if not labels_csv.is_file():
        raise DataError(f"{labels_csv} not found; steering needs filename,steering rows "
                        "(or set data.task = \"segmentation\")")
    if not targets:
        raise ConfigError("data.targets is empty; name at least one labels.csv column")
    files: list[Path] = []
    values: list[list[float]] = []
    skipped: list[str] = []
    with open_table(labels_csv, delimiter=",") as table:
        name_at, *target_at = table.require(["filename", *targets])
        for line, fields in table.rows(ragged="keep"):
            name = fields[name_at].strip() if name_at < len(fields) else ""
            path = root / name if (root / name).is_file() else root / "images" / name
            problem = ""
            try:
                numbers = [float(fields[i]) if i < len(fields) else float("nan")
                           for i in target_at]
                if not np.all(np.isfinite(numbers)):
                    problem = "a target is not finite"
            except ValueError:
                problem = f"a target in {targets} is not a number"
            if len(fields) != len(table.header):
                problem = (f"{len(fields)} fields, the header has {len(table.header)} "
                           "(a ragged row; quote fields that hold commas)")
            if not problem and not path.is_file():
                problem = f"image {path} does not exist"
            if problem:
                message = f"{labels_csv} line {line} ({name or 'no filename'}): {problem}"
                if on_bad == "error":
                    raise DataError(message + " (fix the row, or set data.on_bad_file = \"skip\")")
                skipped.append(message)
                continue
            files.append(path)
            values.append(numbers)
    if skipped:
        print(f"warning: skipped {len(skipped)} bad row(s) of {labels_csv}, first: {skipped[0]}")
    if not files:
        raise DataError(f"{labels_csv} lists no usable frames")
    order = sorted(range(len(files)), key=lambda i: files[i].name)  # sequence order
    return [files[i] for i in order], np.asarray(values, dtype=np.float32)[order]


def _read_masks(root: Path, files: list[Path], size: tuple[int, int], num_classes: int
                ) -> np.ndarray:
    """The mask of every frame, resized like its frame; shape or value problems are named."""
    folder = root / "masks"
    if not folder.is_dir():
        raise DataError(f"{root} has no masks/ folder; segmentation needs masks/<stem>.png")
    masks = np.empty((len(files), *size), dtype=np.uint8)
    for index, image_path in enumerate(files):
        candidates = [folder / f"{image_path.stem}{s}" for s in (".png", ".tif", ".bmp")]
        mask_path = next((p for p in candidates if p.is_file()), None)
        if mask_path is None:
            raise DataError(f"no mask for {image_path}: expected {candidates[0]}")
        try:
            with open_image(mask_path) as img:
                mask_img = img.convert("L") if img.mode not in ("L", "P", "I", "I;16") else img
                with open_image(image_path) as frame:
                    frame_size = frame.size
                if mask_img.size != frame_size:
                    raise DataError(
                        f"mask {mask_path} is {mask_img.size[0]}x{mask_img.size[1]} but its "
                        f"image {image_path} is {frame_size[0]}x{frame_size[1]}")
                mask = np.asarray(mask_img.resize((size[1], size[0]), Image.Resampling.NEAREST))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"cannot read mask {mask_path}: {err}") from None
        if mask.max() >= num_classes:
            raise DataError(f"mask {mask_path} has class id {int(mask.max())}, but "
                            f"data.class_names lists only {num_classes} classes")
        masks[index] = mask
    return masks


def _decode_all(files: list[Path], size: tuple[int, int], mode: str, on_bad: str
                ) -> tuple[np.ndarray, list[int], list[tuple[Path, tuple[int, int]]]]:
    """Decode in parallel; returns (frames, indices kept, resized files with their size)."""
    images, keep, originals = decode_all(files, lambda path: _decode(path, size, mode), on_bad)
    resized = [(files[i], original) for i, original in zip(keep, originals, strict=True)
               if original != (size[1], size[0])]
    return images, keep, resized


def _decode(path: Path, size: tuple[int, int], mode: str
            ) -> tuple[np.ndarray | None, tuple[int, int], str]:
    """(uint8 frame, original (width, height), error text)."""
    try:
        with open_image(path) as img:
            original = img.size
            pixels = img.convert(mode)
            if original != (size[1], size[0]):
                pixels = pixels.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(pixels, dtype=np.uint8)
    except UNREADABLE as err:
        return None, (0, 0), first_line(err)
    return array, original, ""


def _meta(config: Config, task: str, images: np.ndarray, targets: np.ndarray
          ) -> dict[str, Any]:
    height, width, channels = images.shape[1:]
    meta: dict[str, Any] = {"task": task, "image_shape": [height, width, channels]}
    if task == "steering":
        names = [str(t) for t in get(config, "data.targets")]
        negate = set(get(config, "data.flip_negates"))
        meta.update(
            targets=names, flip_sign=[-1.0 if n in negate else 1.0 for n in names],
            label_mean=[float(v) for v in targets.mean(axis=0)],
            label_std=[float(v) for v in targets.std(axis=0)],
            summary=(f"{height}x{width} frames, targets {', '.join(names)}; "
                     f"steering mean {targets[:, 0].mean():+.3f} std {targets[:, 0].std():.3f}"))
    else:
        class_names = [str(c) for c in get(config, "data.class_names")]
        share = np.bincount(targets.ravel(), minlength=len(class_names)) / targets.size
        meta.update(class_names=class_names, summary=(
            f"{height}x{width} frames, classes "
            + ", ".join(f"{n} {s:.1%}" for n, s in zip(class_names, share, strict=True))))
    return meta
