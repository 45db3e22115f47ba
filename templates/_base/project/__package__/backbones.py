"""Backbones shared by the image templates: a small CNN, and keras.applications built
offline by default."""

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


def small_cnn(x: Any, width: int, depth: int = 3, *, pool_last: bool = True,
              max_filters: int = 256, max_pool: bool = False) -> Any:
    """``depth`` blocks of two 3x3 conv + batch norm + ReLU, then globally pooled features.

    Filters start at ``width`` and double per block up to ``max_filters``; each block but
    the last (all with ``pool_last``) is max-pooled. Global average pooling, concatenated
    with global max pooling with ``max_pool`` (a small finding moves the maximum where the
    average barely moves). ~0.3 M parameters at width 32, depth 3.
    """
    if width < 1 or depth < 1:
        raise ConfigError(f"model.width and model.depth must be >= 1, got {width}, {depth}")
    for level in range(depth):
        filters = min(width * 2**level, max_filters)
        for index in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    name=f"block{level}_conv{index}")(x)
            # momentum 0.9: small datasets give few steps, and the default 0.99 lags behind
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{level}_norm{index}")(x)
            x = keras.layers.ReLU(name=f"block{level}_relu{index}")(x)
        if pool_last or level < depth - 1:
            x = keras.layers.MaxPooling2D(name=f"block{level}_pool")(x)
    if not max_pool:
        return keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.layers.Concatenate(name="pool")([
        keras.layers.GlobalAveragePooling2D(name="average_pool")(x),
        keras.layers.GlobalMaxPooling2D(name="max_pool")(x)])
