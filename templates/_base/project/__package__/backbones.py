"""keras.applications backbones shared by the image templates, built offline by default."""

from __future__ import annotations

from typing import Any

import keras

from .errors import ConfigError

# name -> (keras.applications constructor, smallest input side it accepts)
APPLICATIONS = {
    "resnet50": ("ResNet50", 32),
    "efficientnetv2b0": ("EfficientNetV2B0", 32),
    "mobilenetv3small": ("MobileNetV3Small", 32),
    "convnext_tiny": ("ConvNeXtTiny", 32),
}


def application(x: Any, name: str, pretrained: bool) -> Any:
    """Globally pooled features of a keras.applications backbone for [0, 1] images.

    The backbone gets [0, 255] RGB, as those models expect; ImageNet weights only
    with ``pretrained`` (a download: a clear error when offline).
    """
    constructor, min_side = APPLICATIONS[name]
    if min(x.shape[1], x.shape[2]) < min_side:
        raise ConfigError(f"model.backbone={name} needs images of at least {min_side} px; "
                          f"use larger images (data.image_size >= {min_side})")
    if x.shape[-1] == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = keras.layers.Rescaling(255.0, name="to_pixel_range")(x)
    options: dict[str, Any] = {"include_top": False, "input_shape": tuple(x.shape[1:]),
                               "weights": "imagenet" if pretrained else None, "pooling": "avg"}
    if name == "resnet50":
        # ResNet50 expects ImageNet-mean-centred pixels; the others normalise themselves.
        x = keras.layers.Normalization(mean=[123.68, 116.779, 103.939], variance=[1.0] * 3,
                                       name="imagenet_centre")(x)
    else:
        options["include_preprocessing"] = True
    try:
        network = getattr(keras.applications, constructor)(**options)
    except Exception as err:  # download failures surface as several exception types
        if pretrained:
            raise ConfigError(f"cannot load ImageNet weights for {name} ({err}); "
                              "set model.pretrained = false to train from scratch offline"
                              ) from None
        raise
    return network(x)
