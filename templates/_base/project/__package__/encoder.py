"""A pretrained keras-hub image backbone as the encoder of a U-Net (``model.encoder``).

    [0, 255] pixels -> grey repeated to RGB (when the backbone takes 3 channels)
    -> the preset's image converter (its scale and offset; no resizing)
    -> the backbone's feature pyramid (ResNet: P2..P5, strides 4..32)

The template's decoder upsamples from the deepest level and concatenates each shallower
one as a skip connection. Levels finer than the pyramid's first (ResNet's P2 is at
stride 4) come from a small convolution stem trained from scratch, so thin structures
(lane markings, small lesions) keep full resolution. The converter's resizing is turned
off: a segmentation keeps its pixel grid, crops and whole slices keep one scale, and a
convolutional backbone takes any size whose sides are multiples of its deepest stride.

The encoder is one layer named ``finetune.BACKBONE_LAYER``, so ``train`` fine-tunes it in
two phases like any pretrained backbone (``finetune.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from .errors import ConfigError
from .finetune import BACKBONE_LAYER, load_preset

KEY = "model.encoder"
MAX_STRIDE = 32  # keras-hub's convolutional pyramids end at P5: inputs must be multiples of it


@keras.saving.register_keras_serializable(package="appgen")
class PyramidEncoder(keras.layers.Layer):
    """A keras-hub backbone's ``pyramid_outputs`` as one layer: feature maps, finest first.

    ``backbone`` is a keras-hub ``FeaturePyramidBackbone`` (or its serialized config, when
    a checkpoint loads). ``strides`` gives each output's stride, measured on a probe input.
    """

    def __init__(self, backbone: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        pyramid = dict(getattr(backbone, "pyramid_outputs", None) or {})
        if not pyramid:
            raise ConfigError(f"{KEY}: {type(backbone).__name__} has no feature pyramid "
                              "(pyramid_outputs); a U-Net encoder needs a convolutional image "
                              "backbone such as ResNet, EfficientNet, CSPNet or DenseNet")
        self.pyramid = keras.Model(backbone.inputs, list(pyramid.values()))
        self.channels = int(backbone.inputs[0].shape[-1])
        # a probe of the backbone's own size when it was built for one, else 128x128
        side = backbone.inputs[0].shape[1] or 4 * MAX_STRIDE
        width = backbone.inputs[0].shape[2] or 4 * MAX_STRIDE
        probe = self.pyramid.compute_output_spec(keras.KerasTensor((1, side, width,
                                                                    self.channels)))
        strides = [side // int(spec.shape[1]) if spec.shape[1] else 0 for spec in probe]
        order = sorted(range(len(strides)), key=strides.__getitem__)
        self.strides = [strides[i] for i in order]
        self.order = order
        first = self.strides[0]
        if first < 2 or first & (first - 1) or self.strides[-1] > MAX_STRIDE or \
                self.strides != [first * 2**n for n in range(len(self.strides))]:
            raise ConfigError(f"{KEY}: {type(backbone).__name__}'s pyramid levels are at "
                              f"strides {self.strides}; a U-Net encoder needs one level per "
                              f"power of two up to {MAX_STRIDE} (a ViT's are all one size)")
        self.built = True

    @property
    def layers(self) -> list[keras.Model]:
        """The wrapped backbone, so code that walks nested models (bench's FLOPs) sees it."""
        return [self.backbone]

    def call(self, images: Any) -> list[Any]:
        outputs = self.pyramid(images)
        return [outputs[i] for i in self.order]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "backbone": keras.saving.serialize_keras_object(self.backbone)}


def load_encoder(preset: str, channels: int, size: tuple[int | None, ...] = (None, None)
                 ) -> tuple[keras.layers.Layer, PyramidEncoder]:
    """The preset's image converter (resizing off) and its backbone as a ``PyramidEncoder``.

    ``channels`` is what the images have; 1 is repeated to the 3 an RGB backbone takes.
    A fixed ``size`` (height, width) builds the backbone at that shape, so ``bench`` can
    count its FLOPs; a fully convolutional model (medical) leaves it open.
    """
    import keras_hub  # noqa: F401  (registers the keras-hub classes for loading)

    converter = load_preset("layers.ImageConverter", preset, key=KEY)
    converter.image_size = None  # keep the pixel grid; see the module docstring
    backbone = None
    if None not in size:
        try:
            backbone = load_preset("models.Backbone", preset, key=KEY,
                                   image_shape=(*size, 3 if channels == 1 else channels))
        except ConfigError:  # a backbone that takes no image_shape
            backbone = None
    if backbone is None:
        backbone = load_preset("models.Backbone", preset, key=KEY)
    encoder = PyramidEncoder(backbone, name=BACKBONE_LAYER)
    if channels != encoder.channels and not (channels == 1 and encoder.channels == 3):
        raise ConfigError(f"{KEY}: the backbone takes {encoder.channels}-channel images and "
                          f"the data has {channels} channels")
    return converter, encoder


def unet_encoder(pixels: Any, preset: str, stem: Callable[[Any, int], Any]
                 ) -> tuple[list[Any], Any]:
    """Skip connections (one per stride 1, 2, 4, ...) and the deepest features.

    ``pixels`` are float [0, 255] images whose sides are multiples of ``MAX_STRIDE``;
    ``stem(x, level)`` is the template's convolution block for the levels finer than the
    pyramid's first (``level`` = log2 of the stride): level 0 on the [0, 1] image, each
    next one on the previous one max-pooled, as in a U-Net trained from scratch.
    """
    converter, encoder = load_encoder(preset, int(pixels.shape[-1]), tuple(pixels.shape[1:3]))
    x = pixels
    if x.shape[-1] == 1 and encoder.channels == 3:  # grey slices: the RGB backbone sees grey
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    features = encoder(converter(x))
    skips: list[Any] = []
    finest = encoder.strides[0].bit_length() - 1
    scaled = keras.layers.Rescaling(1.0 / 255, name="stem_unit_range")(pixels)
    for level in range(finest):
        if level:
            scaled = keras.layers.MaxPooling2D(name=f"stem{level}_pool")(scaled)
        scaled = stem(scaled, level)
        skips.append(scaled)
    return skips + list(features[:-1]), features[-1]
