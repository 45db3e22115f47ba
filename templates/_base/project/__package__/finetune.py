"""Fine-tuning a pretrained keras-hub backbone (``model.preset``) in two phases.

Phase 1 (``train.freeze_epochs`` epochs) trains only the new head: the backbone is
frozen, so large random gradients from the head cannot wreck its pretrained features.
Phase 2 unfreezes the backbone and trains everything at ``train.learning_rate x
train.backbone_lr_multiplier`` (the keras-io transfer-learning recipe). Batch norm stays
in inference mode in both phases: its moving statistics were computed on far more data
than a fine-tuning set holds.

A template names the backbone layer ``BACKBONE_LAYER``; ``train`` finds it there, so a
model without one (trained from scratch) trains in one phase as before.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import keras

from .config import Config, get
from .errors import ConfigError

BACKBONE_LAYER = "preset_backbone"
# config keys that name a pretrained keras-hub preset: a whole backbone, or a U-Net encoder
PRESET_KEYS = ("model.preset", "model.encoder")


def find_backbone(net: keras.Model) -> keras.layers.Layer | None:
    """The model's pretrained backbone layer, or None for a model trained from scratch."""
    for layer in net.layers:
        if layer.name == BACKBONE_LAYER:
            return layer
        inner = getattr(layer, "image_encoder", None)  # detection: inside RetinaNet's pyramid
        if isinstance(inner, keras.layers.Layer) and inner.name == BACKBONE_LAYER:
            return inner
    return None


def freeze_epochs(config: Config, net: keras.Model) -> int:
    """Epochs of phase 1 (backbone frozen); 0 without a backbone or without the key."""
    if find_backbone(net) is None:
        return 0
    return int(_optional(config, "train.freeze_epochs", 0))


def lr_multiplier(config: Config) -> float:
    """The learning-rate factor of phase 2, when the backbone trains."""
    return float(_optional(config, "train.backbone_lr_multiplier", 1.0))


def set_phase(net: keras.Model, *, frozen: bool) -> None:
    """Freeze the backbone (phase 1) or unfreeze it with batch norm in inference mode.

    Also repairs a loaded checkpoint: Keras restores a keras-hub backbone's own
    ``trainable`` flag but not its sublayers' flags, so the phase is always set again.
    """
    backbone = find_backbone(net)
    if backbone is None:
        return
    backbone.trainable = True  # the setter recurses; set both ways so every sublayer follows
    if frozen:
        backbone.trainable = False
        return
    for layer in backbone._flatten_layers():
        # Keras' BatchNormalization uses its moving statistics whenever it is not trainable
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def is_frozen(net: keras.Model) -> bool:
    """Whether the backbone is frozen (phase 1)."""
    backbone = find_backbone(net)
    return backbone is not None and not backbone.trainable


def reload_optimizer(net: keras.Model, checkpoint: Path) -> None:
    """Rebuild the optimizer for the phase's trainable variables and load its saved state.

    ``keras.models.load_model`` builds the optimizer before ``set_phase`` could repair the
    backbone's flags, for the wrong variables, so it skips the saved state; this loads it.
    """
    fresh = net.optimizer.__class__.from_config(net.optimizer.get_config())
    net.optimizer = fresh
    fresh.build(net.trainable_variables)
    net.load_weights(checkpoint)


def load_preset(kind: str, preset: str, *, key: str = "model.preset", **kwargs: Any) -> Any:
    """``keras_hub.<kind>.from_preset(preset)``; a one-line ConfigError when it cannot load.

    ``kind`` is e.g. ``"models.Backbone"`` or ``"layers.ImageConverter"``; ``key`` is the
    config key that named the preset, for the messages. A local folder must exist; a named
    preset that fails to load gets the command that fetches it and where KaggleHub caches
    it (``KAGGLEHUB_CACHE``).
    """
    import keras_hub

    module, _, name = kind.partition(".")
    loader = getattr(getattr(keras_hub, module), name)
    local = is_local(preset)
    if local and not Path(preset).is_dir():
        raise ConfigError(_not_a_folder(key, preset))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return loader.from_preset(preset, **kwargs)
    except ImportError as err:
        raise ConfigError(f"{key} = {preset!r} needs {err.name or err} "
                          "(pip install tensorflow-text for keras-hub tokenizers)") from None
    except Exception as err:  # offline, unknown name, gated weights, missing file
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if local:
            raise ConfigError(f"cannot load {kind.split('.')[-1]} from preset folder "
                              f"{preset!r} ({key}): {first}") from None
        offline = any(word in str(err) for word in ("Connection", "NameResolution", "resolve"))
        raise ConfigError(
            f"cannot load keras-hub preset {preset!r} ({'no network' if offline else first}); "
            "it is downloaded on first use "
            f"into the KaggleHub cache ({kagglehub_cache()}, set KAGGLEHUB_CACHE to move it): "
            f"fetch it once with the network: python -c \"import keras_hub; "
            f"keras_hub.models.Backbone.from_preset('{preset}')\", or set {key} to a "
            "local folder") from None


def check_preset(config: Config) -> None:
    """ConfigError before any data loads when ``model.preset`` or ``model.encoder`` names a
    missing folder, or when an encoder is asked of a 3D network."""
    for key in PRESET_KEYS:
        preset = str(_optional(config, key, ""))
        if preset and is_local(preset) and not Path(preset).is_dir():
            raise ConfigError(_not_a_folder(key, preset))
    if str(_optional(config, "model.encoder", "")) and int(_optional(config, "model.dims",
                                                                          2)) == 3:
        raise ConfigError("model.encoder needs model.dims = 2: keras-hub image backbones are "
                          "2D networks, so they cannot encode 3D patches; set model.encoder "
                          "= \"\" for the 3D U-Net, or model.dims = 2 for slices")


def preset_setting(config: Config) -> tuple[str, str]:
    """The key that names the run's pretrained preset and its value; ("", "") for none."""
    for key in PRESET_KEYS:
        preset = str(_optional(config, key, ""))
        if preset:
            return key, preset
    return "", ""


def _not_a_folder(key: str, preset: str) -> str:
    return (f"{key} = {preset!r} is not a folder (a local preset is a folder written by "
            "save_to_preset())")


def is_local(preset: str) -> bool:
    """A local folder, not a name or a ``kaggle://`` / ``hf://`` handle."""
    return "://" not in preset and (os.sep in preset or preset.startswith(".")
                                    or Path(preset).is_dir())


def source(preset: str) -> str:
    """What the run records as the preset: a local folder's absolute path, else the handle."""
    return str(Path(preset).resolve()) if is_local(preset) else preset


def kagglehub_cache() -> str:
    """Where KaggleHub keeps downloaded presets (``KAGGLEHUB_CACHE``, else its default)."""
    return os.environ.get("KAGGLEHUB_CACHE") or str(Path.home() / ".cache" / "kagglehub")


def pretrained_backbone(net: keras.Model) -> keras.layers.Layer | None:
    """The preset's backbone: the ``BACKBONE_LAYER``, or one a template layer wraps as
    ``.backbone`` (nlp's LoRA-aware ``PresetLayer``, which trains in one phase)."""
    found = find_backbone(net)
    if found is not None:
        return found
    for layer in net.layers:
        inner = getattr(layer, "backbone", None)
        if isinstance(inner, keras.Model) and hasattr(inner, "save_to_preset"):
            return inner
    return None


def describe(net: keras.Model, preset: str) -> dict[str, Any]:
    """meta.json's record of the preset: its source, backbone class and parameter count
    (LoRA adapters included)."""
    backbone = pretrained_backbone(net)
    if backbone is None:
        return {}
    inner = getattr(backbone, "backbone", None)  # a U-Net encoder wraps the keras-hub one
    if isinstance(inner, keras.Model):
        backbone = inner
    return {"pretrained": {"source": source(preset), "backbone": type(backbone).__name__,
                       "parameters": int(backbone.count_params())}}


def _optional(config: Config, key: str, default: Any) -> Any:
    """``key``'s value, or ``default`` in a template that has no such key."""
    try:
        return get(config, key)
    except ConfigError:
        return default
