"""Vision model: uint8 images in, class probabilities (float32) out.

    uint8 image -> [0, 1] floats -> augmentation (training only) -> backbone
    -> global pooling -> dropout -> dense -> softmax (float32 under mixed precision)

``model.backbone`` picks a small CNN (the default, right for small images on a
CPU) or a keras.applications / keras-hub architecture built from scratch, with
ImageNet weights when ``model.pretrained = true`` and the network allows.
``model.preset`` (a keras-hub preset: a name, a handle or a local folder) replaces the
backbone with a pretrained one and its own image converter; ``train`` then fine-tunes it
in two phases (``finetune.py``).
"""

from __future__ import annotations

from typing import Any

import keras

from . import detection_model
from .augment import augmentation_layers
from .backbones import APPLICATIONS, application, small_cnn
from .config import Config, choice, get
from .errors import ConfigError
from .finetune import BACKBONE_LAYER, load_preset

BACKBONES = ("small_cnn", "vit", *APPLICATIONS)


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """The classifier for ``meta['image_shape']`` and ``meta['class_names']``."""
    if meta.get("task") == "detection":  # keras-hub RetinaNet (shared with driving)
        return detection_model.build_model(config, meta)
    height, width, channels = meta["image_shape"]
    num_classes = len(meta["class_names"])
    backbone = choice(config, "model.backbone", BACKBONES)
    preset = str(get(config, "model.preset"))

    inputs = keras.Input((height, width, channels), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    for layer in augmentation_layers(config):
        x = layer(x)
    if preset:
        x = preset_features(x, preset)
        backbone = "preset"
    elif backbone == "small_cnn":
        width = int(get(config, "model.width"))
        # three stages, the last not max-pooled: the 8x8 digits keep a 2x2 map
        x = small_cnn(x, width, 3, pool_last=False, max_filters=4 * width)
    elif backbone == "vit":
        x = vit(x, meta)
    else:
        x = application(x, backbone, bool(get(config, "model.pretrained")))
    x = keras.layers.Dropout(float(get(config, "model.dropout")), name="head_dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_classifier")


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Loss and metrics; labels arrive one-hot (MixUp/CutMix and label smoothing need it)."""
    if meta.get("task") == "detection":
        return detection_model.compile_args(config, meta)
    return {
        "loss": keras.losses.CategoricalCrossentropy(
            label_smoothing=float(get(config, "augment.label_smoothing"))),
        "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")],
    }


def preset_features(x: Any, preset: str) -> Any:
    """Pooled features of a pretrained keras-hub image backbone for [0, 1] images.

    The preset's image converter resizes to the size the backbone was trained at and
    normalises as it was trained; it gets [0, 255] RGB like the preset's own pipeline.
    """
    import keras_hub  # noqa: F401  (registers the keras-hub classes for loading)

    converter = load_preset("layers.ImageConverter", preset)
    backbone = None
    if converter.image_size is not None:  # a fixed input shape lets bench count FLOPs
        try:
            backbone = load_preset("models.Backbone", preset, name=BACKBONE_LAYER,
                                   image_shape=(*converter.image_size, 3))
        except ConfigError:  # a backbone that takes no image_shape
            backbone = None
    if backbone is None:
        backbone = load_preset("models.Backbone", preset, name=BACKBONE_LAYER)
    if x.shape[-1] == 1:  # pretrained image backbones take RGB
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = keras.layers.Rescaling(255.0, name="to_pixel_range")(x)
    features = backbone(converter(x))
    if len(features.shape) == 4:  # a convolutional feature map
        return keras.layers.GlobalAveragePooling2D(name="pool")(features)
    return keras.layers.GlobalAveragePooling1D(name="token_pool")(features)


def vit(x: Any, meta: dict[str, Any]) -> Any:
    """A small Vision Transformer from keras-hub (patches of 1/8 of the side)."""
    import keras_hub

    height, width, channels = x.shape[1:]
    patch = max(2, min(height, width) // 8)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(height, width, channels), patch_size=(patch, patch), num_layers=6,
        num_heads=4, hidden_dim=192, mlp_dim=384, dropout_rate=0.1)
    tokens = backbone(x)
    return keras.layers.GlobalAveragePooling1D(name="token_pool")(tokens)
