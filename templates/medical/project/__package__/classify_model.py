"""Slice classifier: uint8 image -> on-device augmentation -> small CNN (or a backbone).

The model takes the uint8 slices the pipeline yields, scales them to [0, 1] and
augments them inside the compiled step (rotation/zoom/shift, then intensity:
bias field, gamma, contrast, brightness, blur, noise). ``model.backbone`` is
``cnn`` (a small VGG-style network that trains on a CPU in minutes) or a
keras.applications architecture shared with the other image templates.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from .backbones import APPLICATIONS, application, small_cnn
from .config import Config, get
from .errors import ConfigError
from .layers import IntensityAugment, RandomAffine2D, RandomFlips

BACKBONES = ("cnn", *APPLICATIONS)
FLIP_AXES = {"none": (), "x": (2,), "y": (1,), "xy": (1, 2)}  # image axes: (batch, y, x, c)


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """Classifier for ``meta["image_shape"]`` uint8 slices into ``meta["num_classes"]``."""
    backbone = str(get(config, "model.backbone"))
    if backbone not in BACKBONES:
        raise ConfigError(f"model.backbone must be one of {', '.join(BACKBONES)}, "
                          f"got {backbone!r}")
    seed = int(get(config, "runtime.seed"))
    inputs = keras.Input(tuple(meta["image_shape"]), dtype="uint8", name="slice")
    x = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="to_unit_range")(inputs)
    flip = str(get(config, "augment.flip"))
    if flip not in FLIP_AXES:
        raise ConfigError(f"augment.flip must be one of {', '.join(FLIP_AXES)}, got {flip!r}")
    if FLIP_AXES[flip]:
        x, _ = RandomFlips(FLIP_AXES[flip], seed=seed, name="flip")(x)
    x = RandomAffine2D(float(get(config, "augment.rotate")), float(get(config, "augment.scale")),
                       float(get(config, "augment.shift")),
                       probability=float(get(config, "augment.spatial_prob")), seed=seed,
                       name="rotate_zoom_shift")(x)
    x = IntensityAugment(gamma=float(get(config, "augment.gamma")),
                         contrast=float(get(config, "augment.contrast")),
                         brightness=float(get(config, "augment.brightness")),
                         bias_field=float(get(config, "augment.bias_field")),
                         blur=float(get(config, "augment.blur")),
                         noise=float(get(config, "augment.noise")), seed=seed + 1,
                         name="intensity")(x)
    if backbone == "cnn":
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed_range")(x)
        features = small_cnn(x, int(get(config, "model.width")), int(get(config, "model.depth")),
                             max_pool=True)
    else:
        x = keras.layers.Activation("relu", name="clip_below_zero")(x)  # noise can go < 0
        features = application(x, backbone, bool(get(config, "model.pretrained")))
    features = keras.layers.Dropout(float(get(config, "model.dropout")), name="dropout")(features)
    # zero-initialised: training starts from uniform probabilities, not from the large
    # random logits that max-pooled features would give
    logits = keras.layers.Dense(int(meta["num_classes"]), kernel_initializer="zeros",
                                name="logits")(features)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=f"slice_classifier_{backbone}")


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Cross-entropy (optionally label-smoothed) and accuracy; ROC-AUC is in epoch_metrics.

    OneVsRestAUC stays registered so checkpoints compiled with it still load.
    """
    classes = int(meta["num_classes"])
    smoothing = float(get(config, "train.label_smoothing"))
    return {"loss": SmoothedSparseCrossEntropy(classes, smoothing),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}


def epoch_metrics(meta: dict[str, Any]) -> dict[str, Any]:
    """val_auc after each epoch: the exact mean one-vs-rest ROC-AUC of the final report.

    Not a streaming keras.metrics.AUC over fixed thresholds, which gives another number
    under the same name.
    """
    from .classify_report import mean_auc

    return {"auc": mean_auc}


@keras.saving.register_keras_serializable(package="medical")
class SmoothedSparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy of integer labels with label smoothing (Keras' sparse loss has none)."""

    def __init__(self, num_classes: int, smoothing: float = 0.0,
                 name: str = "cross_entropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes, self.smoothing = int(num_classes), float(smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        target = target * (1.0 - self.smoothing) + self.smoothing / self.num_classes
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0))
        return -ops.sum(target * log_p, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes,
                "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="medical")
class OneVsRestAUC(keras.metrics.AUC):
    """Mean ROC-AUC over classes, each class against the rest, from integer labels."""

    def __init__(self, num_classes: int, name: str = "auc", **kwargs: Any) -> None:
        kwargs.pop("multi_label", None)
        kwargs.pop("num_labels", None)
        super().__init__(name=name, multi_label=True, num_labels=int(num_classes), **kwargs)
        self.num_classes = int(num_classes)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        super().update_state(onehot, ops.cast(y_pred, "float32"), sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}
