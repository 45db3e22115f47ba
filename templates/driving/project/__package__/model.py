"""Driving models: uint8 frames in, float32 steering (or per-pixel classes) out.

Steering (``data.task = "steering"``):

    uint8 frame -> [0, 1] -> crop sky / hood and resize back -> brightness, shadow
    (training only) -> PilotNet or a keras.applications backbone -> dense -> targets

PilotNet is NVIDIA's end-to-end network (Bojarski et al. 2016, "End to End Learning
for Self-Driving Cars"): five convolutions and three dense layers on a 66x200 frame,
about 250 k parameters, fast enough for real time on a CPU.

Segmentation (``data.task = "segmentation"``): a small U-Net, softmax over
``data.class_names`` at every pixel; ``model.encoder`` gives it a pretrained keras-hub
encoder.

Detection (``data.task = "detection"``): keras-hub's RetinaNet, shared with the vision
template (``detection_model``).
"""

from __future__ import annotations

from typing import Any

import keras

from . import detection_model, encoder
from .augment import augmentation_layers
from .backbones import APPLICATIONS, application
from .config import Config, choice, get
from .errors import ConfigError

BACKBONES = ("pilotnet", "unet", *APPLICATIONS)
NORMS = ("batch", "group", "none")


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """The steering regressor or the segmentation network for ``meta``."""
    if meta["task"] == "detection":  # keras-hub RetinaNet (shared with vision)
        return detection_model.build_model(config, meta)
    backbone = choice(config, "model.backbone", BACKBONES)
    if meta["task"] == "segmentation":
        if backbone != "unet":
            raise ConfigError(f"model.backbone={backbone} is a steering model; "
                              "segmentation uses model.backbone = \"unet\"")
        return unet(config, meta)
    if backbone == "unet":
        raise ConfigError("model.backbone=unet is for segmentation; steering uses pilotnet "
                          f"or one of {', '.join(APPLICATIONS)}")
    if str(get(config, "model.encoder")):
        raise ConfigError("model.encoder is the segmentation U-Net's encoder; steering uses "
                          "model.backbone (and model.pretrained)")

    height, width, channels = meta["image_shape"]
    inputs = keras.Input((height, width, channels), dtype="uint8", name="frame")
    x = keras.layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    top, bottom = int(get(config, "data.crop_top")), int(get(config, "data.crop_bottom"))
    if top < 0 or bottom < 0 or top + bottom > height - 16:
        raise ConfigError(f"data.crop_top={top} and data.crop_bottom={bottom} must be >= 0 "
                          f"and leave at least 16 of the {height} rows")
    if top or bottom:
        x = keras.layers.Cropping2D(((top, bottom), (0, 0)), name="crop_sky_hood")(x)
        x = keras.layers.Resizing(height, width, name="resize_back")(x)
    for layer in augmentation_layers(config):
        x = layer(x)
    if backbone == "pilotnet":
        x = pilotnet(x, float(get(config, "model.dropout")),
                     choice(config, "model.norm", NORMS))
    else:
        x = application(x, backbone, bool(get(config, "model.pretrained")))
        x = keras.layers.Dropout(float(get(config, "model.dropout")), name="head_dropout")(x)
        x = keras.layers.Dense(64, activation="relu", name="head_dense")(x)
    outputs = keras.layers.Dense(len(meta["targets"]), dtype="float32", name="targets")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_steering")


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Loss and metrics: MAE and RMSE for steering, IoU and pixel accuracy for masks."""
    if meta["task"] == "detection":
        return detection_model.compile_args(config, meta)
    if meta["task"] == "segmentation":
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "metrics": [
                keras.metrics.MeanIoU(num_classes=len(meta["class_names"]),
                                      sparse_y_pred=False, name="mean_iou"),
                keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
            ],
        }
    losses = {"mse": keras.losses.MeanSquaredError(), "mae": keras.losses.MeanAbsoluteError(),
              "huber": keras.losses.Huber(delta=0.1)}
    return {
        "loss": losses[choice(config, "model.loss", tuple(losses))],
        "metrics": [keras.metrics.MeanAbsoluteError(name="mae"),
                    keras.metrics.RootMeanSquaredError(name="rmse")],
    }


def pilotnet(x: Any, dropout: float, norm: str = "batch") -> Any:
    """NVIDIA PilotNet: 5 convolutions (24-36-48 5x5 stride 2, 64-64 3x3) and 100-50-10 dense.

    The input is normalised to [-1, 1] as in the paper. ``norm`` adds batch (or group)
    normalisation after each convolution, which the paper predates: it converges several
    times faster, which is what a 10-minute CPU budget needs. Needs frames of at least 61x61.
    """
    height, width = x.shape[1], x.shape[2]
    if height < 61 or width < 61:
        raise ConfigError(f"PilotNet needs frames of at least 61x61 (66x200 is its design); "
                          f"got {height}x{width}: raise data.image_height / data.image_width")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed_range")(x)
    for index, (filters, size, stride) in enumerate(
            ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))):
        name = f"conv{index + 1}"
        x = keras.layers.Conv2D(filters, size, strides=stride, use_bias=norm == "none",
                                name=name)(x)
        if norm == "batch":
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        elif norm == "group":  # batch-size independent; 4 groups divide 24, 36, 48 and 64
            x = keras.layers.GroupNormalization(groups=4, name=f"{name}_gn")(x)
        x = keras.layers.Activation("elu", name=f"{name}_elu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    for units in (100, 50, 10):
        x = keras.layers.Dense(units, activation="elu", name=f"fc{units}")(x)
    return x


def unet(config: Config, meta: dict[str, Any]) -> keras.Model:
    """A small U-Net; the frame is padded to a multiple of 2**depth and cropped back.

    ``model.encoder`` (a keras-hub preset) replaces the encoder with a pretrained image
    backbone's feature pyramid (``encoder.py``); the frame is then padded to a multiple of
    its deepest stride (32), and ``train`` fine-tunes the encoder in two phases.
    """
    height, width, channels = meta["image_shape"]
    depth, base = int(get(config, "model.depth")), int(get(config, "model.width"))
    preset = str(get(config, "model.encoder"))
    if not 1 <= depth <= 5 or base < 4:
        raise ConfigError(f"model.depth must be 1..5 and model.width >= 4; got {depth}, {base}")
    inputs = keras.Input((height, width, channels), dtype="uint8", name="frame")
    x = keras.layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    for layer in augmentation_layers(config):
        x = layer(x)
    step = encoder.MAX_STRIDE if preset else 2 ** depth
    pad_h, pad_w = -height % step, -width % step
    padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    if pad_h or pad_w:
        x = keras.layers.ZeroPadding2D(padding, name="pad")(x)
    if preset:
        pixels = keras.layers.Rescaling(255.0, name="to_pixel_range")(x)
        skips, x = encoder.unet_encoder(
            pixels, preset, lambda x, level: _conv_block(x, base * 2**level, f"down{level}"))
    else:
        skips = []
        for level in range(depth):
            x = _conv_block(x, base * 2**level, f"down{level}")
            skips.append(x)
            x = keras.layers.MaxPooling2D(name=f"pool{level}")(x)
        x = _conv_block(x, base * 2**depth, "bottom")
    for level in reversed(range(len(skips))):
        x = keras.layers.Conv2DTranspose(base * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, base * 2**level, f"dec{level}")
    if pad_h or pad_w:
        x = keras.layers.Cropping2D(padding, name="crop")(x)
    x = keras.layers.Conv2D(len(meta["class_names"]), 1, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="unet_segmentation")


def _conv_block(x: Any, filters: int, name: str) -> Any:
    for repeat in range(2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                name=f"{name}_conv{repeat}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{repeat}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{repeat}")(x)
    return x
