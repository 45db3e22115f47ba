"""Host-side augmentation of training slices: crops, rotation and zoom.

Only what moves the label map with the image runs here, on each training batch
in the input pipeline (``pipeline.Batches`` calls it): foreground-aware crops
and in-plane rotation/zoom (OpenCV). Everything else runs on the device inside
the compiled model (``layers.py``, built into the network by ``model.py``):
flips (the output is flipped back, so labels stay as they are) and the
intensity changes (gamma, contrast, brightness, bias field, blur, noise) that
let a model trained on a few subjects cope with another scanner's contrast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .config import Config, get
from .pipeline import BatchTransform

# OpenCV's thread pool costs more than it gains on single slices, and would compete with
# the training step for the same cores: one thread per warp.
cv2.setNumThreads(1)


@dataclass(frozen=True)
class Options:
    """Crop size and spatial augmentation strengths; 0 switches one off."""

    patch: int
    foreground_fraction: float
    rotate: float
    scale: float
    spatial_prob: float


def options(config: Config, meta: dict[str, Any]) -> Options:
    """Read the spatial part of ``[augment]`` (plus patch size and foreground share)."""
    return Options(
        patch=int(meta.get("patch_size", 0)),
        foreground_fraction=float(get(config, "data.foreground_fraction")),
        rotate=float(get(config, "augment.rotate")),
        scale=float(get(config, "augment.scale")),
        spatial_prob=float(get(config, "augment.spatial_prob")),
    )


def batch_transform(config: Config, meta: dict[str, Any]) -> BatchTransform | None:
    """Crop + rotate/zoom the slices of a training batch; None when all of that is off."""
    opts = options(config, meta)
    spatial = (opts.rotate or opts.scale) and opts.spatial_prob > 0
    if not spatial and not opts.patch:
        return None

    def transform(images: Any, labels: np.ndarray, rng: np.random.Generator
                  ) -> tuple[Any, np.ndarray]:
        if opts.patch and opts.patch < max(images.shape[1:3]):
            pairs = [crop(image, label, opts.patch, rng, opts.foreground_fraction)
                     for image, label in zip(images, labels, strict=True)]
            images = np.stack([p[0] for p in pairs])
            labels = np.stack([p[1] for p in pairs])
        if spatial:
            for index in np.flatnonzero(rng.random(len(images)) < opts.spatial_prob):
                images[index, ..., 0], labels[index] = augment_slice(
                    images[index, ..., 0], labels[index], rng, opts)
        return images, labels

    return transform


def augment_slice(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                  opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """One (x, y) slice and its labels, rotated and zoomed by a random amount."""
    degrees = rng.uniform(-opts.rotate, opts.rotate)
    zoom = math.exp(rng.uniform(math.log(1 - min(opts.scale, 0.9)), math.log(1 + opts.scale)))
    return rotate_scale(image, label, degrees, zoom)


def crop(image: np.ndarray, label: np.ndarray, patch: int, rng: np.random.Generator,
         foreground_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``patch`` square, centred on a random foreground pixel ``foreground_fraction`` of
    the time (when the slice has any), else anywhere."""
    sides = [min(patch, n) for n in label.shape]
    hits = np.argwhere(label > 0)
    if len(hits) and rng.random() < foreground_fraction:
        centre = hits[rng.integers(len(hits))]
        start = [int(np.clip(c - s // 2, 0, n - s))
                 for c, s, n in zip(centre, sides, label.shape, strict=True)]
    else:
        start = [int(rng.integers(0, n - s + 1)) for s, n in zip(sides, label.shape, strict=True)]
    window = tuple(slice(b, b + s) for b, s in zip(start, sides, strict=True))
    return image[window], label[window]


def rotate_scale(image: np.ndarray, label: np.ndarray, degrees: float, zoom: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and zoom about the centre; image (uint8) bilinear, labels nearest."""
    image, label = np.ascontiguousarray(image), np.ascontiguousarray(label)
    rows, cols = image.shape
    matrix = cv2.getRotationMatrix2D(((cols - 1) / 2, (rows - 1) / 2), degrees, zoom)
    image = cv2.warpAffine(image, matrix, (cols, rows), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=int(image.min()))
    label = cv2.warpAffine(label, matrix, (cols, rows), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, label
