"""2D (slices) and 3D (patches) U-Nets, Dice + cross-entropy loss, a foreground Dice metric.

Flips and intensity augmentation are the model's first layers (training only),
so they run inside the compiled step on the device.

The network is fully convolutional (input ``(None, None[, None], channels)``), so
it trains on fixed-size slices, crops or patches and predicts larger inputs whose
sides are multiples of ``2 ** (model.depth - 1)``. Instance normalisation (the
default) normalises every feature map per sample, which makes the network less
sensitive to a new scanner's overall contrast than batch statistics would.

``model.encoder`` (2D only) makes the encoder a pretrained keras-hub image backbone
(``encoder.py``): slices are then padded to multiples of 32, and ``train`` fine-tunes it
in two phases.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from . import classify_model, encoder
from . import layers as _layers  # noqa: F401  registers the augmentation layers for load_model
from .config import Config, choice, get
from .errors import ConfigError
from .layers import IntensityAugment, RandomFlips, UndoFlips
from .volumes import INTENSITY_RANGES

NORMS = ("instance", "batch")
FLIPS = ("none", "x", "y", "xy", "z", "xz", "yz", "xyz")  # z only for model.dims = 3
# Keras layers by number of spatial dimensions: conv, pooling, transposed conv, dropout.
LAYERS = {2: (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.Conv2DTranspose,
              keras.layers.SpatialDropout2D),
          3: (keras.layers.Conv3D, keras.layers.MaxPooling3D, keras.layers.Conv3DTranspose,
              keras.layers.SpatialDropout3D)}


def flip_axes(config: Config, dims: int) -> tuple[int, ...]:
    """``augment.flip`` as tensor axes of (batch, x, y[, z], channels)."""
    flip = choice(config, "augment.flip", FLIPS)
    if "z" in flip and dims == 2:
        raise ConfigError("augment.flip: z flips need model.dims = 3")
    return tuple(1 + "xyz".index(axis) for axis in flip if axis in "xyz")


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """U-Net with ``model.depth`` resolution levels, ``model.width`` filters at the top.

    2D (axial slices) or 3D (patches) by ``meta["dims"]``; fully convolutional, so
    it trains on crops or patches and predicts larger inputs.
    """
    if meta.get("task") == "classification":
        return classify_model.build_model(config, meta)
    dims = int(meta.get("dims", 2))
    conv, pool, up, spatial_dropout = LAYERS[dims]
    width = int(get(config, "model.width"))
    depth = int(get(config, "model.depth"))
    norm = choice(config, "model.norm", NORMS)
    dropout = float(get(config, "model.dropout"))
    inputs = keras.Input((None,) * dims + (int(meta["channels"]),), dtype="uint8",
                         name="patch" if dims == 3 else "slice")
    low, high = INTENSITY_RANGES[meta["normalize"]]
    x = keras.layers.Rescaling((high - low) / 255.0, offset=low, dtype="float32",
                               name="to_normalised_units")(inputs)
    flips = flip_axes(config, dims)
    seed = int(get(config, "runtime.seed"))
    if flips:
        x, flags = RandomFlips(flips, seed=seed, name="flip")(x)
    x = intensity_augmentation(config, seed)(x)
    preset = str(get(config, "model.encoder"))
    if preset:
        skips, x = encoder_features(x, preset, meta, width, norm)
    else:
        skips = []
        for level in range(depth):
            x = conv_block(x, min(width * 2**level, 320), norm, f"down{level}", conv)
            if level < depth - 1:
                skips.append(x)
                x = pool(name=f"down{level}_pool")(x)
    if dropout > 0:
        x = spatial_dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(len(skips))):
        filters = min(width * 2**level, 320)
        x = up(filters, 2, strides=2, name=f"up{level}_upsample")(x)
        x = keras.layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        x = conv_block(x, filters, norm, f"up{level}", conv)
    logits = conv(int(meta["num_classes"]), 1, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    if flips:  # the network saw mirrored inputs; its answer goes back onto the labels' grid
        outputs = UndoFlips(flips, dtype="float32", name="unflip")([outputs, flags])
    return keras.Model(inputs, outputs, name=f"unet{dims}d")


def encoder_features(x: Any, preset: str, meta: dict[str, Any], width: int, norm: str
                     ) -> tuple[list[Any], Any]:
    """A pretrained keras-hub encoder (``model.encoder``, 2D only) on normalised slices.

    The slices go back to [0, 255] (the uint8 the data stored, after augmentation) and
    through the preset's converter; a grey slice is repeated to RGB (``encoder.py``).
    """
    if int(meta.get("dims", 2)) != 2:
        raise ConfigError("model.encoder needs model.dims = 2: keras-hub image backbones are "
                          "2D networks, so they cannot encode 3D patches")
    if int(meta["multiple"]) % encoder.MAX_STRIDE:
        raise ConfigError(f"model.encoder: slices must be padded to a multiple of "
                          f"{encoder.MAX_STRIDE}; this run's data used {meta['multiple']}")
    low, high = INTENSITY_RANGES[meta["normalize"]]
    pixels = keras.layers.Rescaling(255.0 / (high - low), offset=-low * 255.0 / (high - low),
                                    name="to_pixel_range")(x)
    return encoder.unet_encoder(
        pixels, preset,
        lambda x, level: conv_block(x, min(width * 2**level, 320), norm, f"down{level}"))


def intensity_augmentation(config: Config, seed: int) -> IntensityAugment:
    """The on-device intensity changes of ``[augment]`` (training only)."""
    return IntensityAugment(
        gamma=float(get(config, "augment.gamma")),
        contrast=float(get(config, "augment.contrast")),
        brightness=float(get(config, "augment.brightness")),
        bias_field=float(get(config, "augment.bias_field")),
        blur=float(get(config, "augment.blur")),
        noise=float(get(config, "augment.noise")), seed=seed + 1, name="intensity")


def conv_block(x: Any, filters: int, norm: str, name: str,
               conv: Any = keras.layers.Conv2D) -> Any:
    """Two 3x3 (3x3x3) convolutions, each followed by normalisation and LeakyReLU."""
    for index in (1, 2):
        x = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        if norm == "instance":
            x = keras.layers.GroupNormalization(groups=filters, name=f"{name}_norm{index}")(x)
        else:
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_norm{index}")(x)
        x = keras.layers.LeakyReLU(0.01, name=f"{name}_act{index}")(x)
    return x


def epoch_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    """Exact val_* metrics after each epoch: classification's ROC-AUC; none for segmentation."""
    if meta.get("task") == "classification":
        return classify_model.epoch_metrics(meta)
    return {}


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Dice + cross-entropy loss and the mean foreground Dice metric."""
    if meta.get("task") == "classification":
        return classify_model.compile_args(config, meta)
    classes = int(meta["num_classes"])
    return {"loss": DiceCrossEntropy(classes, dice_weight=float(get(config, "train.dice_weight"))),
            "metrics": [ForegroundDice(classes)]}


@keras.saving.register_keras_serializable(package="medical")
class DiceCrossEntropy(keras.losses.Loss):
    """Cross-entropy per pixel plus (1 - soft Dice) over the batch, foreground classes only.

    The Dice term pulls small structures up (cross-entropy alone is dominated by
    background); the cross-entropy keeps gradients smooth early in training.
    """

    def __init__(self, num_classes: int, dice_weight: float = 1.0, name: str = "dice_ce",
                 **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.dice_weight = float(dice_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.cast(y_pred, "float32")
        onehot = ops.one_hot(ops.cast(y_true, "int32"), self.num_classes)
        cross_entropy = -ops.mean(ops.sum(onehot * ops.log(ops.clip(y_pred, 1e-7, 1.0)), -1))
        flat_true = ops.reshape(onehot, (-1, self.num_classes))
        flat_pred = ops.reshape(y_pred, (-1, self.num_classes))
        intersection = ops.sum(flat_true * flat_pred, axis=0)
        total = ops.sum(flat_true + flat_pred, axis=0)
        dice = (2.0 * intersection + 1e-5) / (total + 1e-5)
        return cross_entropy + self.dice_weight * (1.0 - ops.mean(dice[1:]))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes,
                "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="medical")
class ForegroundDice(keras.metrics.Metric):
    """Mean Dice of the foreground classes over all pixels seen (argmax predictions).

    Classes absent from both truth and prediction are left out of the mean.
    """

    def __init__(self, num_classes: int, name: str = "dice", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.intersection = self.add_variable(shape=(self.num_classes,), initializer="zeros",
                                              name="intersection")
        self.total = self.add_variable(shape=(self.num_classes,), initializer="zeros",
                                       name="total")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        true = ops.reshape(ops.one_hot(ops.cast(y_true, "int32"), self.num_classes),
                           (-1, self.num_classes))
        pred = ops.reshape(ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes),
                           (-1, self.num_classes))
        self.intersection.assign_add(ops.sum(true * pred, axis=0))
        self.total.assign_add(ops.sum(true + pred, axis=0))

    def result(self) -> Any:
        intersection, total = self.intersection[1:], self.total[1:]
        present = ops.cast(total > 0, "float32")
        dice = 2.0 * intersection / ops.maximum(total, 1.0)
        return ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        for variable in (self.intersection, self.total):
            variable.assign(ops.zeros((self.num_classes,)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}
