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
    zoom = float(get(config, "augment.zoom"))
    if translate > 0 or zoom > 0:
        layers.append(RandomShiftZoom(translate, zoom, seed=seed))
    rotate = float(get(config, "augment.rotate"))
    if rotate > 0:  # note: keras' RandomRotation keeps TensorFlow from using XLA
        layers.append(keras.layers.RandomRotation(rotate, fill_mode="reflect", seed=seed))
    if bool(get(config, "augment.rand_augment")):
        layers.append(keras.layers.RandAugment(value_range=(0, 1), seed=seed))
    return layers


@keras.saving.register_keras_serializable(package="vision")
class RandomShiftZoom(keras.layers.Layer):
    """Random translation and zoom (nearest neighbour, reflected borders), training only.

    keras.layers.RandomTranslation / RandomZoom use an image-projective op that
    XLA cannot compile on TensorFlow, which would switch XLA off for the whole
    model. This layer moves rows and columns with one-hot selection matrices
    instead: two small batched matmuls that compile on every backend.
    """

    def __init__(self, translate: float, zoom: float, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.translate = translate
        self.zoom = zoom
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        ops = keras.ops
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        scale = 1.0 + keras.random.uniform((batch, 1), -self.zoom, self.zoom,
                                           seed=self.seed_generator)
        rows = self._source_indices(height, scale, batch)
        cols = self._source_indices(width, scale, batch)
        pick_rows = ops.one_hot(rows, height, dtype=images.dtype)  # (batch, out, in)
        pick_cols = ops.one_hot(cols, width, dtype=images.dtype)
        moved = ops.einsum("bij,bjwc->biwc", pick_rows, images)
        return ops.einsum("bkw,biwc->bikc", pick_cols, moved)

    def _source_indices(self, size: int, scale: Any, batch: Any) -> Any:
        ops = keras.ops
        shift = keras.random.uniform((batch, 1), -self.translate, self.translate,
                                     seed=self.seed_generator) * size
        centre = (size - 1) / 2.0
        source = (ops.arange(size, dtype="float32")[None, :] - centre) / scale + centre + shift
        source = ops.abs(ops.round(source))
        period = float(max(1, 2 * (size - 1)))
        source = ops.mod(source, period)
        source = ops.where(source > size - 1, period - source, source)  # reflect at borders
        return ops.cast(source, "int32")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "translate": self.translate, "zoom": self.zoom,
                "seed": self.seed}


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
