"""Augmentation: Keras layers inside the model, MixUp/CutMix on the batch.

Per-image augmentations are Keras preprocessing layers placed in the model, so
they run on the device inside the compiled step and only while training.
MixUp and CutMix also mix the labels, which a layer inside the model cannot
see, so they run on each training batch in the input pipeline instead.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .config import Config, choice, get
from .pipeline import BatchTransform


def augmentation_layers(config: Config) -> list[keras.layers.Layer]:
    """The per-image augmentations switched on in config.toml, in order."""
    layers: list[keras.layers.Layer] = []
    seed = int(get(config, "runtime.seed"))
    flip = choice(config, "augment.flip",
                  ("none", "horizontal", "vertical", "horizontal_and_vertical"))
    if flip != "none":
        layers.append(keras.layers.RandomFlip(flip, seed=seed))
    translate = float(get(config, "augment.translate"))
    if translate > 0:
        layers.append(keras.layers.RandomTranslation(translate, translate, fill_mode="reflect",
                                                     seed=seed))
    rotate = float(get(config, "augment.rotate"))
    if rotate > 0:
        layers.append(keras.layers.RandomRotation(rotate, fill_mode="reflect", seed=seed))
    zoom = float(get(config, "augment.zoom"))
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, zoom, fill_mode="reflect", seed=seed))
    if bool(get(config, "augment.rand_augment")):
        layers.append(keras.layers.RandAugment(value_range=(0, 1), seed=seed))
    return layers


def batch_transform(config: Config) -> BatchTransform | None:
    """MixUp and/or CutMix on uint8 batches with one-hot labels, or None when both are off."""
    mixup = float(get(config, "augment.mixup"))
    cutmix = float(get(config, "augment.cutmix"))
    if mixup <= 0 and cutmix <= 0:
        return None

    def transform(images: Any, labels: np.ndarray, rng: np.random.Generator
                  ) -> tuple[Any, np.ndarray]:
        partner = rng.permutation(len(labels))
        use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
        if use_cutmix:
            return _cutmix(images, labels, partner, rng.beta(cutmix, cutmix), rng)
        lam = rng.beta(mixup, mixup)
        mixed = lam * images.astype(np.float32) + (1 - lam) * images[partner].astype(np.float32)
        return np.rint(mixed).astype(np.uint8), lam * labels + (1 - lam) * labels[partner]

    return transform


def _cutmix(images: np.ndarray, labels: np.ndarray, partner: np.ndarray, lam: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    height, width = images.shape[1:3]
    cut_h, cut_w = int(height * np.sqrt(1 - lam)), int(width * np.sqrt(1 - lam))
    top, left = rng.integers(0, height - cut_h + 1), rng.integers(0, width - cut_w + 1)
    mixed = images.copy()
    mixed[:, top:top + cut_h, left:left + cut_w] = images[partner, top:top + cut_h,
                                                          left:left + cut_w]
    area = cut_h * cut_w / (height * width)
    return mixed, (1 - area) * labels + area * labels[partner]
