"""On-device augmentation layers: XLA-safe, any rank (2D slices or 3D patches), training only.

They run inside the compiled training step, so the input pipeline only gathers
batches (and, for segmentation, does the spatial changes a label map must
follow). Every draw is per sample; each change happens on a coin flip.

- ``IntensityAugment``: bias field, gamma, contrast, brightness, blur and noise,
  the changes that let a model trained on a few subjects read another scanner.
- ``RandomFlips`` / ``UndoFlips``: segmentation flips without touching labels.
  The input is flipped before the network and the class probabilities are
  flipped back after it, so the loss compares them with the unflipped label
  map while the network still sees mirrored anatomy.
- ``RandomAffine2D``: rotation, zoom and shift of whole images (classification).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def _per_sample(x: Any) -> tuple[int, ...]:
    """Shape that broadcasts one value per sample over ``x``."""
    return (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)


@keras.saving.register_keras_serializable(package="medical")
class IntensityAugment(keras.layers.Layer):
    """Random intensity changes of normalised images ``(batch, *spatial, channels)``.

    Args:
        gamma: Gamma drawn from [1/(1+g), 1+g], applied on the sample's own [min, max].
        contrast: Contrast scaled by [1-c, 1+c] around the sample's mean.
        brightness: Shift by up to this much (input units).
        bias_field: Strength of exp(a random smooth quadratic), a multiplicative field.
        blur: Probability of a light blur (a [1, 2, 1] kernel mixed in by a random amount).
        noise: Gaussian noise with std drawn from [0, noise] (input units).
        probability: Chance of each change except blur.
    """

    def __init__(self, gamma: float = 0.0, contrast: float = 0.0, brightness: float = 0.0,
                 bias_field: float = 0.0, blur: float = 0.0, noise: float = 0.0,
                 probability: float = 0.5, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # exp / power in half precision lose too much
        super().__init__(**kwargs)
        self.gamma, self.contrast, self.brightness = gamma, contrast, brightness
        self.bias_field, self.blur, self.noise = bias_field, blur, noise
        self.probability, self.seed = probability, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, shape: Any, low: float = 0.0, high: float = 1.0) -> Any:
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)

    def _maybe(self, shape: Any, changed: Any, original: Any, probability: float) -> Any:
        return ops.where(self._uniform(shape) < probability, changed, original)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training:
            return x
        x = ops.cast(x, "float32")
        one = _per_sample(x)
        axes = tuple(range(1, len(x.shape)))
        p = self.probability
        if self.bias_field:
            low = ops.min(x, axis=axes, keepdims=True)
            field = ops.exp(self.bias_field * smooth_field(x, self.seed_generator))
            x = self._maybe(one, low + (x - low) * field, x, p)
        if self.gamma:
            low = ops.min(x, axis=axes, keepdims=True)
            span = ops.maximum(ops.max(x, axis=axes, keepdims=True) - low, 1e-6)
            power = ops.exp(self._uniform(one, -1.0, 1.0) * math.log1p(self.gamma))
            x = self._maybe(one, low + ops.power((x - low) / span, power) * span, x, p)
        if self.contrast:
            mean = ops.mean(x, axis=axes, keepdims=True)
            factor = self._uniform(one, 1 - self.contrast, 1 + self.contrast)
            x = self._maybe(one, (x - mean) * factor + mean, x, p)
        if self.brightness:
            x = self._maybe(one, x + self._uniform(one, -self.brightness, self.brightness),
                            x, p)
        if self.blur:
            amount = self._uniform(one)
            x = self._maybe(one, x + amount * (soft_blur(x) - x), x, self.blur)
        if self.noise:
            std = self._uniform(one, 0.0, self.noise)
            grain = keras.random.normal(ops.shape(x), seed=self.seed_generator)
            x = self._maybe(one, x + std * grain, x, p)
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "contrast": self.contrast,
                "brightness": self.brightness, "bias_field": self.bias_field,
                "blur": self.blur, "noise": self.noise, "probability": self.probability,
                "seed": self.seed}


def smooth_field(x: Any, seed_generator: Any) -> Any:
    """A random quadratic over the spatial axes of ``x``, unit std per sample."""
    rank = len(x.shape)
    coords = []
    for axis in range(1, rank - 1):
        size = ops.shape(x)[axis]
        line = ops.cast(ops.arange(size), "float32") / ops.maximum(
            ops.cast(size, "float32") - 1.0, 1.0) * 2.0 - 1.0
        coords.append(ops.reshape(line, [1 if a != axis else -1 for a in range(rank)]))
    terms = coords + [c * c for c in coords] + [
        coords[i] * coords[j] for i in range(len(coords)) for j in range(i + 1, len(coords))]
    weights = keras.random.normal((ops.shape(x)[0], len(terms)), seed=seed_generator)
    poly = 0.0
    for index, term in enumerate(terms):
        poly = poly + ops.reshape(weights[:, index], _per_sample(x)) * term
    axes = tuple(range(1, rank))
    poly = poly + ops.zeros_like(x)
    poly = poly - ops.mean(poly, axis=axes, keepdims=True)
    return poly / ops.maximum(ops.std(poly, axis=axes, keepdims=True), 1e-6)


def soft_blur(x: Any) -> Any:
    """A [1, 2, 1] / 4 blur along every spatial axis, borders repeated."""
    for axis in range(1, len(x.shape) - 1):
        size = x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]
        before = ops.concatenate([ops.take(x, [0], axis=axis),
                                  ops.take(x, ops.arange(size - 1), axis=axis)], axis=axis)
        after = ops.concatenate([ops.take(x, ops.arange(1, size), axis=axis),
                                 ops.take(x, [size - 1], axis=axis)], axis=axis)
        x = 0.25 * before + 0.5 * x + 0.25 * after
    return x


@keras.saving.register_keras_serializable(package="medical")
class RandomFlips(keras.layers.Layer):
    """Flip each sample along each of ``axes`` on a coin flip; returns (images, flags).

    ``flags`` (batch, len(axes)) says which flips were made, for ``UndoFlips``.
    Outside training nothing is flipped and the flags are zero.
    """

    def __init__(self, axes: tuple[int, ...] | list[int] = (1,), seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool | None = None) -> tuple[Any, Any]:
        shape = (ops.shape(x)[0], len(self.axes))
        if not training:
            return x, ops.zeros(shape, dtype="float32")
        flags = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < 0.5, "float32")
        return flip_where(x, flags, self.axes), flags

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape, (input_shape[0], len(self.axes))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": list(self.axes), "seed": self.seed}


@keras.saving.register_keras_serializable(package="medical")
class UndoFlips(keras.layers.Layer):
    """Flip back what ``RandomFlips`` flipped: ``UndoFlips(axes)([outputs, flags])``."""

    def __init__(self, axes: tuple[int, ...] | list[int] = (1,), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)

    def call(self, inputs: list[Any]) -> Any:
        x, flags = inputs
        return flip_where(x, flags, self.axes)  # flips are their own inverse and commute

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": list(self.axes)}


def flip_where(x: Any, flags: Any, axes: tuple[int, ...]) -> Any:
    """Flip sample i along axes[k] where flags[i, k] is 1."""
    for k, axis in enumerate(axes):
        flag = ops.reshape(flags[:, k], _per_sample(x))
        x = ops.where(flag > 0.5, ops.flip(x, axis=axis), x)
    return x


@keras.saving.register_keras_serializable(package="medical")
class RandomAffine2D(keras.layers.Layer):
    """Rotation (degrees), zoom and shift (fractions of the side) of (batch, h, w, c) images.

    Bilinear sampling by gathering from the flattened image, borders repeated:
    plain gathers compile with XLA on every backend (Keras' RandomRotation and
    RandomZoom switch XLA off on TensorFlow). Training only.
    """

    def __init__(self, rotate: float = 0.0, zoom: float = 0.0, shift: float = 0.0,
                 probability: float = 0.5, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.rotate, self.zoom, self.shift = rotate, zoom, shift
        self.probability, self.seed = probability, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        images = ops.cast(images, "float32")
        height, width, channels = images.shape[1], images.shape[2], images.shape[3]
        batch = ops.shape(images)[0]

        def draw(limit: float) -> Any:
            return keras.random.uniform((batch, 1), -limit, limit, seed=self.seed_generator)

        moved = keras.random.uniform((batch, 1), seed=self.seed_generator) < self.probability
        angle = ops.where(moved, draw(self.rotate) * (math.pi / 180.0), 0.0)
        scale = ops.where(moved, ops.exp(draw(math.log1p(self.zoom))), 1.0)
        shift_y = ops.where(moved, draw(self.shift) * height, 0.0)
        shift_x = ops.where(moved, draw(self.shift) * width, 0.0)
        rows = ops.repeat(ops.arange(height, dtype="float32"), width) - (height - 1) / 2.0
        cols = ops.tile(ops.arange(width, dtype="float32"), [height]) - (width - 1) / 2.0
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # output pixel -> source pixel: inverse rotation and zoom about the centre, then shift
        src_y = cos * rows[None] - sin * cols[None] + (height - 1) / 2.0 - shift_y
        src_x = sin * rows[None] + cos * cols[None] + (width - 1) / 2.0 - shift_x
        src_y = ops.clip(src_y, 0.0, height - 1.0)
        src_x = ops.clip(src_x, 0.0, width - 1.0)
        y0, x0 = ops.floor(src_y), ops.floor(src_x)
        fy, fx = (src_y - y0)[..., None], (src_x - x0)[..., None]
        y0, x0 = ops.cast(y0, "int32"), ops.cast(x0, "int32")
        y1, x1 = ops.minimum(y0 + 1, height - 1), ops.minimum(x0 + 1, width - 1)
        flat = ops.reshape(images, (batch, height * width, channels))

        def pick(y: Any, x: Any) -> Any:
            index = ops.repeat((y * width + x)[..., None], channels, axis=-1)
            return ops.take_along_axis(flat, index, axis=1)

        top = pick(y0, x0) * (1 - fx) + pick(y0, x1) * fx
        bottom = pick(y1, x0) * (1 - fx) + pick(y1, x1) * fx
        return ops.reshape(top * (1 - fy) + bottom * fy, (batch, height, width, channels))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rotate": self.rotate, "zoom": self.zoom,
                "shift": self.shift, "probability": self.probability, "seed": self.seed}
