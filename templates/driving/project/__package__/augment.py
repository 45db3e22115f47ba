"""Photometric augmentation as layers inside the model: brightness and cast shadows.

They run on the device inside the compiled step and only while training, on frames
already scaled to [0, 1]. Augmentations that change the label (the horizontal flip
with steering negated) run on the batch in the input pipeline (see data.py).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from .config import Config, get


@keras.saving.register_keras_serializable(package="driving")
class RandomShadow(keras.layers.Layer):
    """Darken one side of a random straight line across the frame, like a cast shadow.

    With probability ``chance`` per frame, a line from a random point on the top edge
    to a random point on the bottom edge splits the frame, and one side (chosen at
    random) is multiplied by a factor drawn from ``darkness``.
    """

    def __init__(self, chance: float = 0.5, darkness: tuple[float, float] = (0.35, 0.8),
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chance = float(chance)
        self.darkness = (float(darkness[0]), float(darkness[1]))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training or self.chance <= 0:
            return images
        height, width = images.shape[1], images.shape[2]
        batch = ops.shape(images)[0]

        def draw(low: float, high: float) -> Any:
            return keras.random.uniform((batch, 1, 1), low, high, seed=self.seed_generator)

        top, bottom = draw(0.0, float(width)), draw(0.0, float(width))
        side = ops.sign(draw(-1.0, 1.0))
        apply = ops.cast(draw(0.0, 1.0) < self.chance, "float32")
        factor = draw(*self.darkness)
        rows = ops.reshape(ops.linspace(0.0, 1.0, height), (1, height, 1))
        cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, width))
        boundary = top + (bottom - top) * rows
        shaded = ops.cast((cols - boundary) * side > 0, "float32") * apply
        scale = 1.0 - shaded * (1.0 - factor)
        return images * ops.cast(scale[..., None], images.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "chance": self.chance,
                "darkness": list(self.darkness), "seed": self.seed}


def augmentation_layers(config: Config) -> list[keras.layers.Layer]:
    """Brightness and shadow layers switched on in config.toml (identity at inference)."""
    seed = int(get(config, "runtime.seed"))
    layers: list[keras.layers.Layer] = []
    brightness = float(get(config, "augment.brightness"))
    if brightness > 0:
        layers.append(keras.layers.RandomBrightness(brightness, value_range=(0.0, 1.0),
                                                    seed=seed, name="random_brightness"))
    shadow = float(get(config, "augment.shadow"))
    if shadow > 0:
        layers.append(RandomShadow(shadow, seed=seed, name="random_shadow"))
    return layers
