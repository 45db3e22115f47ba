"""Opt-in fine-tuning of a pretrained keras-hub backbone (``model.preset``).

The preset's own tokenizer and packer (keras-hub preprocessor) turn texts into
``token_ids`` / ``padding_mask`` (and ``segment_ids``) numpy arrays; the
backbone's first-token output feeds a dropout + dense head. Named presets are
downloaded on first use, so they need the network (or a warm KaggleHub cache),
and keras-hub's tokenizers need TensorFlow Text: without either, the run stops
with one line saying so. ``train`` fine-tunes the backbone in two phases
(``finetune.py``: head first, then everything at a lower learning rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import Config, get
from .errors import ConfigError
from .finetune import BACKBONE_LAYER, load_preset, source


def _load(kind: str, preset: str, **kwargs: Any) -> Any:
    return load_preset(f"models.{kind}", preset, **kwargs)


def preset_meta(config: Config, preset: str, texts: list[str]) -> dict[str, Any]:
    asked = get(config, "data.sequence_length")
    length = 128 if asked == "auto" else int(asked)
    _load("TextClassifierPreprocessor", preset, sequence_length=length)  # fail early
    # the folder as an absolute path: evaluate and predict encode with the same tokenizer
    return {"preset": source(preset), "sequence_length": length,
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

    backbone = _load("Backbone", meta["preset"], name=BACKBONE_LAYER)
    inputs = {name: keras.Input((int(meta["sequence_length"]),), dtype="int32", name=name)
              for name in backbone.input if isinstance(name, str)} \
        if isinstance(backbone.input, dict) else None
    if inputs is None:
        raise ConfigError(f"preset {meta['preset']!r} is not a text backbone")
    outputs = backbone(inputs)
    if isinstance(outputs, dict) and "pooled_output" in outputs:  # BERT: the [CLS] summary
        x = outputs["pooled_output"]
    else:  # per-token outputs: the first token's
        x = (outputs["sequence_output"] if isinstance(outputs, dict) else outputs)[:, 0, :]
    x = keras.layers.Dropout(float(get(config, "model.dropout")))(x)
    x = keras.layers.Dense(len(meta["class_names"]))(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="preset_classifier")
