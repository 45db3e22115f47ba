"""Text classifier: int32 WordPiece ids in, class probabilities (float32) out.
(Translation and causal_lm models are in ``seq_models.py``; build_model picks by task.)

    ids -> token + position embedding -> TransformerEncoder x model.num_layers
        -> masked mean pooling ----------------------------------------\
    ids -> hashed unigram + bigram embeddings -> masked mean (fastText) -> concat
        -> dropout -> dense -> softmax (float32)

Small corpora (thousands of short texts) do not have the data to train a deep
Transformer from scratch: the defaults are one narrow encoder layer with heavy
dropout, and a fastText-style bag of word and word-pair embeddings beside it that
learns from few examples (``model.ngram_buckets = 0`` turns it off). Attention
scores and softmax run in float32 under mixed precision. ``model.preset`` names a
keras-hub backbone (BERT, DistilBERT, ...) to fine-tune instead.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
from keras import ops

from .config import Config, choice, get
from .errors import ConfigError

# Imported here so rundir.load_model, which imports this module, registers their layers too.
from .lm_preset import PresetLM  # noqa: F401
from .seq2seq_preset import PresetTranslator  # noqa: F401
from .seq_models import (
    Float32AttentionEncoder,
    attention_sizes,
    build_language_model,
    build_translator,
    sequence_compile_args,
)


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """The model of ``meta['task']``: for classification, the classifier for
    ``meta['sequence_length']`` ids and ``meta['class_names']``."""
    if meta.get("task") == "translation":
        return build_translator(config, meta)
    if meta.get("task") == "causal_lm":
        return build_language_model(config, meta)
    if meta.get("preset"):
        from .presets import preset_model

        return preset_model(config, meta)
    length = int(meta["sequence_length"])
    vocabulary_size = len(meta["vocabulary"])
    width, heads = attention_sizes(config)
    dropout = float(get(config, "model.dropout"))

    ids = keras.Input((length,), dtype="int32", name="token_ids")
    features = []
    layers = int(get(config, "model.num_layers"))
    if layers > 0:
        padding_mask = ops.not_equal(ids, 0)  # token id 0 is padding
        x = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, length, width, name="embedding")(ids)
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        for index in range(layers):
            x = Float32AttentionEncoder(
                intermediate_dim=int(get(config, "model.intermediate_dim")), num_heads=heads,
                dropout=dropout, normalize_first=True, name=f"encoder_{index}",
            )(x, padding_mask=padding_mask)
        x = keras.layers.LayerNormalization(name="final_norm")(x)
        pooling = choice(config, "model.pooling", ("mean", "max"))
        features.append(MaskedPooling(pooling, name=f"{pooling}_pool")([x, ids]))
    buckets = int(get(config, "model.ngram_buckets"))
    if buckets > 0:
        features.append(NgramBag(vocabulary_size, buckets, width, name="ngram_bag")(ids))
    if not features:
        raise ConfigError("model.num_layers and model.ngram_buckets are both 0: no model left")
    x = features[0] if len(features) == 1 else keras.layers.Concatenate(name="features")(features)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    x = keras.layers.Dense(len(meta["class_names"]), name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(ids, outputs, name="text_classifier")


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Loss and metrics; class labels arrive one-hot, next-token targets as ids."""
    if meta.get("task") in ("translation", "causal_lm"):
        return sequence_compile_args()
    return {
        "loss": keras.losses.CategoricalCrossentropy(
            label_smoothing=float(get(config, "train.label_smoothing"))),
        "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")],
    }


@keras.saving.register_keras_serializable(package="nlp")
class MaskedPooling(keras.layers.Layer):
    """Mean or max over the non-padding positions (token id 0 is padding)."""

    def __init__(self, mode: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs: list[Any]) -> Any:
        x, ids = inputs
        mask = ops.cast(ops.expand_dims(ops.not_equal(ids, 0), -1), x.dtype)
        if self.mode == "max":
            return ops.max(x + (mask - 1.0) * 1e4, axis=1)
        return ops.sum(x * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape: list[tuple[int, ...]]) -> tuple[int, ...]:
        return (input_shape[0][0], input_shape[0][-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="nlp")
class NgramBag(keras.layers.Layer):
    """fastText: the mean of word-piece and hashed word-piece-pair embeddings.

    Pairs are hashed into ``buckets`` rows computed from the ids inside the model
    (``(a * vocabulary_size + b) mod buckets``), so no extra preprocessing is needed.
    """

    def __init__(self, vocabulary_size: int, buckets: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.buckets = buckets
        self.dim = dim
        self.unigrams = keras.layers.Embedding(vocabulary_size, dim, name="unigrams")
        self.bigrams = keras.layers.Embedding(buckets, dim, name="bigrams")

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.unigrams.build(input_shape)
        self.bigrams.build(input_shape)

    def call(self, ids: Any) -> Any:
        ids = ops.cast(ids, "int32")
        present = ops.not_equal(ids, 0)
        pair_present = ops.logical_and(present[:, :-1], present[:, 1:])
        pairs = ops.mod(ids[:, :-1] * self.vocabulary_size + ids[:, 1:], self.buckets)
        unigram = self.unigrams(ids)
        bigram = self.bigrams(pairs)
        weights = ops.cast(present, unigram.dtype)[..., None]
        pair_weights = ops.cast(pair_present, bigram.dtype)[..., None]
        total = ops.sum(unigram * weights, axis=1) + ops.sum(bigram * pair_weights, axis=1)
        count = ops.sum(weights, axis=1) + ops.sum(pair_weights, axis=1)
        return total / ops.maximum(count, 1.0)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "buckets": self.buckets, "dim": self.dim}
