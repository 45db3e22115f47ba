"""Detection model: keras-hub's RetinaNet on a small ResNet, from scratch, and its augmentation.

    float [0, 1] image (data.image_size) -> ResNet (basic blocks) -> FPN P3..P5 (or P2..P4)
    -> box and class heads -> focal loss + Huber (training) or NMS (predict)

``model.preset`` swaps the ResNet for a pretrained keras-hub image backbone, fed as its
image converter normalises (scale and offset; the letterbox already sized the image),
and ``train`` fine-tunes it in two phases (``finetune.py``).

Boxes are ``xyxy`` in model pixels. The defaults are sized for a CPU: one basic
block per stage, ``model.width`` channels in the FPN and the heads (RetinaNet's paper:
256, which is most of the compute at these image sizes), ``model.head_convs``
convolutions in each head (paper: 4), and anchors of ``model.anchor_size`` x stride
(2: 16 pixels at P3), right for objects of 12 to 100 pixels in a 128-pixel image.
``model.min_level = 2`` moves the pyramid one level finer (P2..P4, strides 4 to 16) for
objects of 5 to 50 pixels, like the driving sample's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import keras
import keras_hub
import numpy as np

from .config import Config, choice, get
from .errors import ConfigError
from .finetune import BACKBONE_LAYER, load_preset

BACKBONES = ("resnet_small", "resnet18")


@contextlib.contextmanager
def _num_filters(module: ModuleType, name: str, filters: int) -> Iterator[None]:
    """While building, make ``module.name(...)`` (a keras-hub layer class) use ``filters``.

    keras-hub 0.32 builds RetinaNet's FPN and heads at 256 channels with no argument
    to change it; the classes below swap the layer in for their own construction only.
    """
    original = getattr(module, name)

    def narrowed(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "num_filters": filters})

    setattr(module, name, narrowed)
    try:
        yield
    finally:
        setattr(module, name, original)


@keras.saving.register_keras_serializable(package="detection")
class Pyramid(keras_hub.models.RetinaNetBackbone):
    """keras-hub's RetinaNet backbone (encoder + FPN) with an FPN ``fpn_filters`` wide.

    ``input_scale`` and ``input_offset`` (a pretrained encoder's normalisation, for
    [0, 1] images) put a rescaling in front of the encoder.
    """

    def __init__(self, image_encoder: Any, *args: Any, fpn_filters: int = 256,
                 input_scale: Any = None, input_offset: Any = None, **kwargs: Any) -> None:
        from keras_hub.src.models.retinanet import retinanet_backbone

        fed = image_encoder
        if input_scale is not None:
            if isinstance(image_encoder, dict):  # a checkpoint loading
                image_encoder = keras.layers.deserialize(image_encoder)
            fed = _normalized(image_encoder, input_scale, input_offset)
        with _num_filters(retinanet_backbone, "FeaturePyramid", fpn_filters):
            super().__init__(fed, *args, **kwargs)
        self.image_encoder = image_encoder  # what get_config saves: the preset's own backbone
        self.fpn_filters = fpn_filters
        self.input_scale = input_scale
        self.input_offset = input_offset

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fpn_filters": self.fpn_filters,
                "input_scale": self.input_scale, "input_offset": self.input_offset}


def _normalized(encoder: keras.Model, scale: Any, offset: Any) -> keras.Model:
    """``encoder`` behind a rescaling, with the ``pyramid_outputs`` keras-hub reads."""
    inputs = keras.Input(encoder.inputs[0].shape[1:], name="images")
    pixels = keras.layers.Rescaling(scale, offset, name="preset_normalization")(inputs)
    levels = keras.Model(encoder.inputs, encoder.pyramid_outputs, name="preset_pyramid")(pixels)
    wrapped = keras.Model(inputs, levels, name="normalized_encoder")
    wrapped.pyramid_outputs = levels
    return wrapped


@keras.saving.register_keras_serializable(package="detection")
class RetinaNet(keras_hub.models.RetinaNetObjectDetector):
    """keras-hub's RetinaNet with heads ``head_filters`` wide and Keras' own fit/evaluate/predict.

    keras-hub's versions route every input through tf.data for its preprocessor;
    this project has none (images arrive scaled to [0, 1]) and feeds ``Batches``,
    which also keeps the JAX backend free of TensorFlow.
    """

    def __init__(self, *args: Any, head_filters: int = 256, **kwargs: Any) -> None:
        from keras_hub.src.models.retinanet import retinanet_object_detector

        with _num_filters(retinanet_object_detector, "PredictionHead", head_filters):
            super().__init__(*args, **kwargs)
        self.head_filters = head_filters

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "head_filters": self.head_filters}

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """On load, compile as the checkpoint was compiled (optimizer, schedule, losses), so
        its optimizer state loads and ``--resume`` goes on where it stopped.

        keras-hub's ``compile`` is custom, so Keras' own version skips this and the model
        would keep the ``Adam(5e-5)`` keras-hub's constructor compiles with: a resumed run
        trained at 5e-5 with fresh moments instead of its schedule."""
        keras.Model.compile(self, **keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    fit = keras.Model.fit
    evaluate = keras.Model.evaluate
    train_on_batch = keras.Model.train_on_batch
    test_on_batch = keras.Model.test_on_batch

    def predict(self, x: Any, batch_size: int | None = None, **kwargs: Any) -> Any:
        self._static_batch(int(batch_size or 32))
        return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)

    def predict_on_batch(self, x: Any) -> Any:
        self._static_batch(len(x))
        return keras.Model.predict_on_batch(self, x)

    def _static_batch(self, size: int) -> None:
        """keras-hub's NMS needs a static batch size, but TensorFlow retraces a second batch
        size with the batch dimension unknown: a new size gets a fresh predict function."""
        if getattr(self, "_predict_batch", None) != size:
            self.predict_function = None
            self._predict_batch = size

    def decode_predictions(self, predictions: Any, data: Any) -> Any:
        # keras.Model.predict_on_batch hands predict_step ``(images,)``; keras-hub
        # expects the images or an ``(images, labels)`` pair
        if isinstance(data, list | tuple) and len(data) == 1:
            data = data[0]
        return super().decode_predictions(predictions, data)


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """A RetinaNet for ``meta['class_names']`` at ``meta['image_shape']``."""
    shape = tuple(meta["image_shape"])
    if shape[0] % 32 or shape[1] % 32:
        raise ConfigError(f"data.image_size must be a multiple of 32 for detection; "
                          f"got {shape[0]}x{shape[1]}")
    width = int(get(config, "model.width"))
    if not 32 <= width <= 512 or width % 32:
        # the heads' group norm splits the channels into 32 groups
        raise ConfigError(f"model.width must be a multiple of 32 from 32 to 512; got {width}")
    low = int(get(config, "model.min_level"))
    if low not in (2, 3):
        raise ConfigError(f"model.min_level must be 2 or 3; got {low}")
    preset = str(get(config, "model.preset"))
    if preset:
        encoder, scale, offset = preset_encoder(preset, shape)
    else:
        encoder = resnet(choice(config, "model.backbone", BACKBONES), shape, low + 2)
        scale = offset = None
    try:
        pyramid = Pyramid(image_encoder=encoder, min_level=low, max_level=low + 2, use_p5=False,
                          image_shape=shape, fpn_filters=width, input_scale=scale,
                          input_offset=offset)
    except (KeyError, ValueError) as err:  # a backbone without those levels
        reason = str(err).splitlines()[0][:160]
        raise ConfigError(f"model.preset = {preset!r}: {type(encoder).__name__} cannot feed "
                          f"RetinaNet's P{low}..P{low + 2} pyramid ({reason})") from None
    anchors = keras_hub.layers.AnchorGenerator(
        "xyxy", min_level=low, max_level=low + 2, num_scales=3, aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=float(get(config, "model.anchor_size")))
    head_convs = int(get(config, "model.head_convs"))
    if not 1 <= head_convs <= 4:
        raise ConfigError(f"model.head_convs must be 1..4; got {head_convs}")
    match_iou = float(get(config, "model.match_iou"))
    if not 0.2 <= match_iou <= 0.9:
        raise ConfigError(f"model.match_iou must be in [0.2, 0.9]; got {match_iou}")
    # Anchors overlapping a true box by match_iou are its positives, under match_iou - 0.1
    # background (keras-hub: 0.5 and 0.4). Boxes of a few strides fall between anchors on
    # the stride grid: on the driving sample only 37-47% of the boxes reach 0.5 with any
    # anchor, 88-97% reach 0.3. (keras-hub's force_match_for_each_col would give every box
    # its best anchor, but indexes out of range with padded boxes in 0.32.)
    # keras-hub exports no name for its label encoder (0.32): the module path is private.
    from keras_hub.src.models.retinanet.retinanet_label_encoder import RetinaNetLabelEncoder

    encoder_labels = RetinaNetLabelEncoder(
        anchors, bounding_box_format="xyxy", encoding_format="center_xywh",
        positive_threshold=match_iou, negative_threshold=match_iou - 0.1)
    return RetinaNet(
        backbone=pyramid, num_classes=len(meta["class_names"]), bounding_box_format="xyxy",
        anchor_generator=anchors, label_encoder=encoder_labels, head_filters=width,
        pre_logits_num_conv_layers=head_convs, use_prediction_head_norm=True, name="retinanet")


def resnet(kind: str, shape: tuple[int, ...], top_level: int) -> keras.Model:
    """The from-scratch encoder: ``resnet_small`` (one basic block per stage) or ``resnet18``,
    with stages up to ``top_level`` (P2 is the first; a deeper stage would go unused)."""
    stages = top_level - 1
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7 if kind == "resnet18" else 3],
        stackwise_num_filters=([64, 128, 256, 512] if kind == "resnet18"
                               else [64, 64, 128, 128])[:stages],
        stackwise_num_blocks=([2, 2, 2, 2] if kind == "resnet18" else [1, 1, 1, 1])[:stages],
        stackwise_num_strides=[1, 2, 2, 2][:stages], block_type="basic_block",
        image_shape=shape)


def preset_encoder(preset: str, shape: tuple[int, ...]) -> tuple[keras.Model, Any, Any]:
    """A keras-hub preset's image backbone, named ``BACKBONE_LAYER`` so ``train`` fine-tunes
    it in two phases, and the scale and offset that normalise [0, 1] images as its
    converter normalises [0, 255] ones."""
    converter = load_preset("layers.ImageConverter", preset)
    try:
        backbone = load_preset("models.Backbone", preset, name=BACKBONE_LAYER, image_shape=shape)
    except ConfigError:  # a backbone that takes no image_shape
        backbone = load_preset("models.Backbone", preset, name=BACKBONE_LAYER)
    if not getattr(backbone, "pyramid_outputs", None):
        raise ConfigError(f"model.preset = {preset!r}: {type(backbone).__name__} has no feature "
                          "pyramid; RetinaNet needs a convolutional image backbone (ResNet, "
                          "EfficientNet, CSPNet, ...)")
    scale = 1.0 if converter.scale is None else converter.scale
    scale = [255.0 * float(s) for s in scale] if isinstance(scale, list | tuple) \
        else 255.0 * float(scale)
    offset = converter.offset
    offset = [float(o) for o in offset] if isinstance(offset, list | tuple) \
        else float(offset or 0.0)
    return backbone, scale, offset


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """keras-hub's losses: Huber on box deltas, focal cross-entropy on classes."""
    return {"box_loss": keras.losses.Huber(reduction="sum"),
            "classification_loss": keras.losses.BinaryFocalCrossentropy(
                alpha=0.25, gamma=2.0, from_logits=True, reduction="sum")}


def set_thresholds(model: keras.Model, score: float, iou: float, max_detections: int) -> None:
    """Replace the detector's NMS with one using these thresholds (from ``[predict]``)."""
    from keras_hub.layers import NonMaxSuppression

    model.prediction_decoder = NonMaxSuppression(
        bounding_box_format=model.bounding_box_format, from_logits=True,
        iou_threshold=iou, confidence_threshold=score, max_detections=max_detections)


def batch_transform(config: Config) -> Any:
    """Box-aware augmentation of a uint8 training batch: flip, scale jitter + crop, colour."""
    flip = choice(config, "augment.flip", ("none", "horizontal"))
    jitter = float(get(config, "augment.scale_jitter"))
    colour = float(get(config, "augment.color"))
    if not 0 <= jitter < 1 or not 0 <= colour < 1:
        raise ConfigError("augment.scale_jitter and augment.color must be in [0, 1)")

    def transform(images: np.ndarray, targets: dict[str, np.ndarray], rng: np.random.Generator
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        images, boxes, labels = images.copy(), targets["boxes"].copy(), targets["labels"].copy()
        width = images.shape[2]
        for i in range(len(images)):
            valid = labels[i] >= 0
            if flip == "horizontal" and rng.random() < 0.5:
                images[i] = images[i, :, ::-1]
                boxes[i, valid] = np.stack([width - boxes[i, valid, 2], boxes[i, valid, 1],
                                            width - boxes[i, valid, 0], boxes[i, valid, 3]], -1)
            if jitter > 0:
                images[i], boxes[i], labels[i] = _zoom(images[i], boxes[i], labels[i],
                                                       rng.uniform(1 - jitter, 1 + jitter), rng)
        if colour > 0:
            gain = rng.uniform(1 - colour, 1 + colour, size=(len(images), 1, 1, 3))
            shift = rng.uniform(-colour, colour, size=(len(images), 1, 1, 1)) * 128
            images = np.clip(images * gain + shift, 0, 255).astype(np.uint8)
        return images, {"boxes": boxes, "labels": labels}

    return transform


def _zoom(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, factor: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale by ``factor`` around a random point, crop or pad back; drop boxes mostly cut off."""
    from PIL import Image

    size = np.array([image.shape[1], image.shape[0]])  # (x, y), like the offsets
    new = np.maximum(8, np.round(size * factor)).astype(int)
    scaled = np.asarray(Image.fromarray(image).resize((int(new[0]), int(new[1])),
                                                      Image.Resampling.BILINEAR))
    canvas = np.full_like(image, 114)
    offset = np.array([rng.integers(min(0, s - n), max(0, s - n) + 1)
                       for s, n in zip(size, new, strict=True)])
    src_x, src_y = max(0, -offset[0]), max(0, -offset[1])
    dst_x, dst_y = max(0, offset[0]), max(0, offset[1])
    width, height = min(new[0] - src_x, size[0] - dst_x), min(new[1] - src_y, size[1] - dst_y)
    canvas[dst_y:dst_y + height, dst_x:dst_x + width] = \
        scaled[src_y:src_y + height, src_x:src_x + width]
    valid = labels >= 0
    moved = boxes.copy()
    moved[valid] = boxes[valid] * np.tile(new / size, 2) + np.tile(offset, 2)
    clipped = np.clip(moved, 0, np.tile(size, 2))
    area = np.prod(moved[:, 2:] - moved[:, :2], axis=1)
    kept = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
    keep = valid & (kept >= 0.5 * np.maximum(area, 1e-6)) & \
        (np.min(clipped[:, 2:] - clipped[:, :2], axis=1) >= 2)
    out_boxes = np.where(keep[:, None], clipped, -1.0).astype(np.float32)
    return canvas, out_boxes, np.where(keep, labels, -1).astype(labels.dtype)
