"""Opt-in fine-tuning of a pretrained keras-hub backbone (``model.preset``).

The preset's own tokenizer and packer (keras-hub preprocessor) turn texts into
``token_ids`` / ``padding_mask`` (and ``segment_ids``) numpy arrays; the
backbone's first-token output feeds a dropout + dense head. Presets are
downloaded on first use, so they need the network (or a warm keras-hub cache)
and TensorFlow Text for the tokenizer: without either, the run stops with one
line saying so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import Config, get
from .errors import ConfigError


def _load(kind: str, preset: str, **kwargs: Any) -> Any:
    try:
        import keras_hub

        return getattr(keras_hub.models, kind).from_preset(preset, **kwargs)
    except ImportError as err:
        raise ConfigError(f"model.preset={preset!r} needs TensorFlow Text for its tokenizer "
                          f"({err}); pip install tensorflow-text, or set model.preset = \"\""
                          ) from None
    except Exception as err:  # offline, unknown preset, or gated weights
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ConfigError(f"cannot load keras-hub preset {preset!r} ({first}); it needs the "
                          "network or a cached copy; set model.preset = \"\" to train a model "
                          "from scratch offline") from None


def preset_meta(config: Config, preset: str, texts: list[str]) -> dict[str, Any]:
    asked = get(config, "data.sequence_length")
    length = 128 if asked == "auto" else int(asked)
    _load("TextClassifierPreprocessor", preset, sequence_length=length)  # fail early
    return {"preset": preset, "sequence_length": length,
            "summary": f"preset {preset} tokenizer, sequences of {length}"}


def preset_encoder(meta: dict[str, Any]) -> Any:
    preprocessor = _load("TextClassifierPreprocessor", meta["preset"],
                         sequence_length=int(meta["sequence_length"]))

    def encode(texts: list[str]) -> tuple[dict[str, np.ndarray], int]:
        packed = preprocessor(list(texts))
        arrays = {k: np.asarray(v) for k, v in packed.items()}
        full = np.asarray(arrays["padding_mask"]).sum(axis=1) >= int(meta["sequence_length"])
        return arrays, int(full.sum())

    return encode


def preset_model(config: Config, meta: dict[str, Any]) -> Any:
    import keras

    backbone = _load("Backbone", meta["preset"])
    inputs = {name: keras.Input((int(meta["sequence_length"]),), dtype="int32", name=name)
              for name in backbone.input if isinstance(name, str)} \
        if isinstance(backbone.input, dict) else None
    if inputs is None:
        raise ConfigError(f"preset {meta['preset']!r} is not a text backbone")
    x = backbone(inputs)["sequence_output"][:, 0, :]
    x = keras.layers.Dropout(float(get(config, "model.dropout")))(x)
    x = keras.layers.Dense(len(meta["class_names"]))(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{meta['preset']}_classifier")
