"""On-the-fly augmentation of training slices (numpy + OpenCV, in the input pipeline).

Geometric changes must move the image and its label map together, and a label
map cannot pass through Keras' image layers, so augmentation runs on each
training batch in the pipeline (``pipeline.Batches`` calls it) rather than
inside the model. The intensity changes (gamma, contrast, bias field, blur,
noise) are what let a model trained on a few subjects cope with another
scanner's contrast; the spatial ones (rotation, scale, optional flips) with
another patient's pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .config import Config, choice, get
from .pipeline import BatchTransform

FLIPS = {"none": (), "x": (0,), "y": (1,), "xy": (0, 1)}


@dataclass(frozen=True)
class Options:
    """Strengths of each augmentation; 0 switches one off."""

    patch: int
    foreground_fraction: float
    flip_axes: tuple[int, ...]
    rotate: float
    scale: float
    spatial_prob: float
    gamma: float
    contrast: float
    brightness: float
    bias_field: float
    blur: float
    noise: float


def options(config: Config, meta: dict[str, Any]) -> Options:
    """Read the ``[augment]`` table (plus patch size and foreground share from ``[data]``)."""
    return Options(
        patch=int(meta.get("patch_size", 0)),
        foreground_fraction=float(get(config, "data.foreground_fraction")),
        flip_axes=FLIPS[choice(config, "augment.flip", tuple(FLIPS))],
        rotate=float(get(config, "augment.rotate")),
        scale=float(get(config, "augment.scale")),
        spatial_prob=float(get(config, "augment.spatial_prob")),
        gamma=float(get(config, "augment.gamma")),
        contrast=float(get(config, "augment.contrast")),
        brightness=float(get(config, "augment.brightness")),
        bias_field=float(get(config, "augment.bias_field")),
        blur=float(get(config, "augment.blur")),
        noise=float(get(config, "augment.noise")),
    )


def batch_transform(config: Config, meta: dict[str, Any]) -> BatchTransform | None:
    """Crop + augment every slice of a training batch; None when everything is off."""
    opts = options(config, meta)

    def transform(images: Any, labels: np.ndarray, rng: np.random.Generator
                  ) -> tuple[Any, np.ndarray]:
        pairs = [augment_slice(image[..., 0].astype(np.float32), label, rng, opts)
                 for image, label in zip(images, labels, strict=True)]
        return (np.stack([p[0] for p in pairs])[..., None].astype(np.float16),
                np.stack([p[1] for p in pairs]))

    return transform


def augment_slice(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                  opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """One (x, y) slice and its labels: crop, spatial, then intensity changes."""
    if opts.patch and opts.patch < max(image.shape):
        image, label = crop(image, label, opts.patch, rng, opts.foreground_fraction)
    for axis in opts.flip_axes:
        if rng.random() < 0.5:
            image, label = np.flip(image, axis), np.flip(label, axis)
    if (opts.rotate or opts.scale) and rng.random() < opts.spatial_prob:
        image, label = rotate_scale(image, label, rng.uniform(-opts.rotate, opts.rotate),
                                    math.exp(rng.uniform(math.log(1 - min(opts.scale, 0.9)),
                                                         math.log(1 + opts.scale))))
    return intensity(np.ascontiguousarray(image), rng, opts), np.ascontiguousarray(label)


def crop(image: np.ndarray, label: np.ndarray, patch: int, rng: np.random.Generator,
         foreground_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A ``patch`` square, centred on a random foreground pixel ``foreground_fraction`` of
    the time (when the slice has any), else anywhere."""
    sides = [min(patch, n) for n in image.shape]
    hits = np.argwhere(label > 0)
    if len(hits) and rng.random() < foreground_fraction:
        centre = hits[rng.integers(len(hits))]
        start = [int(np.clip(c - s // 2, 0, n - s))
                 for c, s, n in zip(centre, sides, image.shape, strict=True)]
    else:
        start = [int(rng.integers(0, n - s + 1)) for s, n in zip(sides, image.shape, strict=True)]
    window = tuple(slice(b, b + s) for b, s in zip(start, sides, strict=True))
    return image[window], label[window]


def rotate_scale(image: np.ndarray, label: np.ndarray, degrees: float, zoom: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and zoom about the centre; image bilinear, labels nearest."""
    image, label = np.ascontiguousarray(image), np.ascontiguousarray(label)
    rows, cols = image.shape
    matrix = cv2.getRotationMatrix2D(((cols - 1) / 2, (rows - 1) / 2), degrees, zoom)
    image = cv2.warpAffine(image, matrix, (cols, rows), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=float(image.min()))
    label = cv2.warpAffine(label, matrix, (cols, rows), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, label


def intensity(image: np.ndarray, rng: np.random.Generator, opts: Options) -> np.ndarray:
    """Bias field, gamma, contrast, brightness, blur and noise, each on a coin flip."""
    low = float(image.min())
    if opts.bias_field and rng.random() < 0.5:
        image = low + (image - low) * bias_field(image.shape, opts.bias_field, rng)
    if opts.gamma and rng.random() < 0.5:
        image = gamma(image, math.exp(rng.uniform(-1, 1) * math.log1p(opts.gamma)),
                      invert=rng.random() < 0.15)
    if opts.contrast and rng.random() < 0.5:
        mean = float(image.mean())
        image = (image - mean) * rng.uniform(1 - opts.contrast, 1 + opts.contrast) + mean
    if opts.brightness and rng.random() < 0.5:
        image = image + rng.uniform(-opts.brightness, opts.brightness)
    if opts.blur and rng.random() < opts.blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    if opts.noise and rng.random() < 0.5:
        image = image + rng.normal(0, rng.uniform(0, opts.noise), image.shape)
    return image.astype(np.float32)


def gamma(image: np.ndarray, power: float, invert: bool = False) -> np.ndarray:
    """``x ** power`` on the slice's own [min, max] range, which is then restored."""
    low, high = float(image.min()), float(image.max())
    if high - low < 1e-6:
        return image
    unit = (image - low) / (high - low)
    unit = 1 - (1 - unit) ** power if invert else unit ** power
    return low + unit * (high - low)


def bias_field(shape: tuple[int, ...], strength: float, rng: np.random.Generator
               ) -> np.ndarray:
    """exp(strength * a random quadratic in x, y), the quadratic scaled to unit std."""
    x, y = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    terms = (x, y, x * x, y * y, x * y)
    poly = sum(c * t for c, t in zip(rng.normal(0, 1, len(terms)), terms, strict=True))
    poly = (poly - poly.mean()) / max(float(poly.std()), 1e-6)
    return np.exp(strength * poly).astype(np.float32)
