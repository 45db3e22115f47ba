"""3D patches: foreground-aware sampling for training, tiling and sliding-window inference.

Whole volumes rarely fit a 3D network's memory, so ``model.dims = 3`` trains on
patches of ``data.patch_3d`` voxels drawn on the fly (``data.foreground_fraction``
of them centred on a random foreground voxel, the rest anywhere) and predicts
whole volumes by sliding that window with ``predict.overlap``, blending the
overlapping class probabilities with Gaussian weights (the centre of a patch sees
the most context) or a plain mean.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

import numpy as np

from .pipeline import Batches

BLENDS = ("gaussian", "mean")


class PatchSampler:
    """Draws (image, label) patches from uint8 volumes; a ``pipeline.Batches`` transform.

    Batches hands it the indices of the draws in the batch (draw i comes from volume
    i mod the number of volumes) and a seeded generator, so epochs are reproducible.
    """

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray],
                 patch: tuple[int, int, int], foreground_fraction: float) -> None:
        self.images = [pad_to(image, patch, int(image.min())) for image in images]
        self.labels = [pad_to(label, patch, 0) for label in labels]
        self.patch = patch
        self.foreground_fraction = foreground_fraction
        # foreground voxel coordinates once per volume, so a draw is a lookup
        self.foreground = [np.argwhere(label > 0) for label in self.labels]

    def __call__(self, draws: np.ndarray, _: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.draw(int(d) % len(self.images), rng) for d in draws]
        return (np.stack([p[0] for p in pairs])[..., None], np.stack([p[1] for p in pairs]))

    def draw(self, volume: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One patch of ``volume``: centred on foreground or anywhere."""
        shape = self.images[volume].shape
        hits = self.foreground[volume]
        if len(hits) and rng.random() < self.foreground_fraction:
            centre = hits[rng.integers(len(hits))]
            start = [int(np.clip(c - p // 2, 0, n - p))
                     for c, p, n in zip(centre, self.patch, shape, strict=True)]
        else:
            start = [int(rng.integers(0, n - p + 1)) for p, n in zip(self.patch, shape,
                                                                      strict=True)]
        window = tuple(slice(b, b + p) for b, p in zip(start, self.patch, strict=True))
        return self.images[volume][window], self.labels[volume][window]


def training_batches(images: list[np.ndarray], labels: list[np.ndarray],
                     patch: tuple[int, int, int], per_volume: int, foreground_fraction: float,
                     batch_size: int, seed: int) -> Batches:
    """``per_volume`` random patches of every volume per epoch."""
    draws = np.arange(len(images) * max(1, per_volume))
    sampler = PatchSampler(images, labels, patch, foreground_fraction)
    return Batches(draws, draws, batch_size, training=True, seed=seed, transform=sampler)


def tiles(volume: np.ndarray, patch: tuple[int, int, int], fill: int
          ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Non-overlapping patches covering ``volume`` (padded with ``fill``), and their corners."""
    padded = pad_to(volume, tuple(-(-n // p) * p for n, p in zip(volume.shape, patch,
                                                                  strict=True)), fill)
    corners = list(product(*(range(0, n, p) for n, p in zip(padded.shape, patch, strict=True))))
    return (np.stack([padded[tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True))]
                      for corner in corners]), corners)


def pad_to(volume: np.ndarray, shape: tuple[int, ...], fill: int) -> np.ndarray:
    """Pad (at the end of each axis) to at least ``shape``."""
    pads = [(0, max(0, t - n)) for n, t in zip(volume.shape[:3], shape, strict=True)]
    pads += [(0, 0)] * (volume.ndim - 3)
    return np.pad(volume, pads, constant_values=fill) if any(p[1] for p in pads) else volume


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Corners along one axis: steps of ``patch * (1 - overlap)``, the last one flush."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1.0 - overlap)))
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def blend_weights(patch: tuple[int, int, int], blend: str) -> np.ndarray:
    """Per-voxel weight of a patch's prediction: a Gaussian (sigma = side / 8) or ones."""
    if blend == "mean":
        return np.ones(patch, np.float32)
    axes = [np.exp(-0.5 * ((np.arange(p) - (p - 1) / 2) / (p / 8.0)) ** 2) for p in patch]
    weights = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    # never exactly zero, so voxels seen only by patch borders still get a value
    return np.maximum(weights / weights.max(), 1e-3).astype(np.float32)


def sliding_window(predict: Callable[[np.ndarray], Any], volume: np.ndarray,
                   patch: tuple[int, int, int], overlap: float, blend: str, *,
                   batch_size: int, fill: int = 0) -> np.ndarray:
    """Blended (x, y, z, classes) predictions of ``predict`` over the whole ``volume``.

    ``volume`` is (x, y, z) or (x, y, z, channels); ``predict`` maps a batch of
    patches (b, px, py, pz, channels) to (b, px, py, pz, classes).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    original = volume.shape[:3]
    volume = volume[..., None] if volume.ndim == 3 else volume
    volume = pad_to(volume, patch, fill)
    corners = list(product(*(window_starts(n, p, overlap)
                             for n, p in zip(volume.shape[:3], patch, strict=True))))
    weights = blend_weights(patch, blend)[..., None]
    windows = [tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True))
               for corner in corners]
    total = np.zeros((), np.float32)  # becomes (x, y, z, classes) with the first batch
    norm = np.zeros(volume.shape[:3] + (1,), np.float32)
    for first in range(0, len(windows), batch_size):
        group = windows[first:first + batch_size]
        predicted = np.asarray(predict(np.stack([volume[w] for w in group])), np.float32)
        if total.ndim == 0:
            total = np.zeros(volume.shape[:3] + predicted.shape[-1:], np.float32)
        for window, values in zip(group, predicted, strict=True):
            total[window] += values * weights
            norm[window] += weights
    result = total / norm
    return result[: original[0], : original[1], : original[2]]
