"""Models of the generating tasks: an encoder-decoder translator and a GPT-style LM.

    translation: source ids -> TokenAndPositionEmbedding -> TransformerEncoder x N ---.
                 [START] target ids -> TokenAndPositionEmbedding -> TransformerDecoder x N
                 (causal self-attention + cross-attention) -> dense -> logits (float32)
    causal_lm:   ids -> TokenAndPositionEmbedding -> TransformerDecoder x N (causal
                 self-attention, no cross-attention) -> dense -> logits (float32)

Blocks are pre-norm (``normalize_first``) with a final LayerNormalization, which
trains stably from scratch without a long warm-up. Attention softmax runs in
float32 under mixed precision, and so do the logits, the loss and decoding.
The loss ignores padding (id 0).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
from keras import ops

from .config import Config, get
from .errors import ConfigError


@keras.saving.register_keras_serializable(package="nlp")
class Float32AttentionEncoder(keras_hub.layers.TransformerEncoder):
    """keras-hub's TransformerEncoder with its attention softmax kept in float32.

    Under mixed precision the attention scores are cast up before the softmax, so
    long sequences do not lose probability mass to bfloat16/float16 rounding.
    (With attention dropout 0, Keras uses the fused dot-product-attention kernel,
    which accumulates the softmax in float32 itself.)
    """

    def build(self, inputs_shape: Any) -> None:
        super().build(inputs_shape)
        attention = self._self_attention_layer
        axis = attention._softmax.axis
        # Stateless, so it is set past Keras' tracking (the layer is already built).
        object.__setattr__(attention, "_softmax", keras.layers.Softmax(
            axis=axis, dtype="float32", name="attention_softmax"))


def build_translator(config: Config, meta: dict[str, Any]) -> keras.Model:
    """Encoder-decoder Transformer: ``{"encoder_ids", "decoder_ids"}`` -> next-token logits
    (``model.preset``: the preset's encoder-decoder backbone, seq2seq_preset.py)."""
    if meta.get("preset"):
        from .seq2seq_preset import preset_translator

        return preset_translator(config, meta)
    length = int(meta["sequence_length"])
    width, heads, layers, inner, dropout = _sizes(config)
    source = keras.Input((length,), dtype="int32", name="encoder_ids")
    target = keras.Input((length,), dtype="int32", name="decoder_ids")
    source_mask = ops.not_equal(source, 0)
    x = keras_hub.layers.TokenAndPositionEmbedding(
        len(meta["source_vocabulary"]), length, width, name="source_embedding")(source)
    x = keras.layers.Dropout(dropout, name="source_dropout")(x)
    for index in range(layers):
        x = Float32AttentionEncoder(inner, heads, dropout=dropout, normalize_first=True,
                                    name=f"encoder_{index}")(x, padding_mask=source_mask)
    x = keras.layers.LayerNormalization(name="encoder_norm")(x)
    y = keras_hub.layers.TokenAndPositionEmbedding(
        len(meta["target_vocabulary"]), length, width, name="target_embedding")(target)
    y = keras.layers.Dropout(dropout, name="target_dropout")(y)
    for index in range(layers):
        y = Float32AttentionDecoder(inner, heads, dropout=dropout, normalize_first=True,
                                    name=f"decoder_{index}")(
            y, encoder_sequence=x, encoder_padding_mask=source_mask)
    return keras.Model([source, target], _logits(y, len(meta["target_vocabulary"])),
                       name="translator")


def build_language_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """GPT-style decoder: ``token_ids`` -> next-token logits at every position
    (``model.preset``: the preset's backbone, lm_preset.py)."""
    if meta.get("preset"):
        from .lm_preset import preset_language_model

        return preset_language_model(config, meta)
    length = int(meta["sequence_length"])
    width, heads, layers, inner, dropout = _sizes(config)
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        len(meta["vocabulary"]), length, width, name="embedding")(ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(layers):
        # Causal self-attention only: padding sits after the text, so it is never attended.
        x = Float32AttentionDecoder(inner, heads, dropout=dropout, normalize_first=True,
                                    name=f"decoder_{index}")(x)
    return keras.Model(ids, _logits(x, len(meta["vocabulary"])), name="language_model")


def sequence_compile_args() -> dict[str, Any]:
    """Cross-entropy over the vocabulary, padding ignored; token accuracy without padding."""
    return {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            "metrics": [MaskedTokenAccuracy(name="token_accuracy")]}


def _logits(x: Any, vocabulary_size: int) -> Any:
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    x = keras.layers.Dense(vocabulary_size, name="logits")(x)
    return keras.layers.Activation("linear", dtype="float32", name="logits_float32")(x)


def attention_sizes(config: Config) -> tuple[int, int]:
    """``model.embedding_dim`` and ``model.num_heads``, checked to divide."""
    width = int(get(config, "model.embedding_dim"))
    heads = int(get(config, "model.num_heads"))
    if width % heads:
        raise ConfigError(f"model.embedding_dim ({width}) must be a multiple of "
                          f"model.num_heads ({heads})")
    return width, heads


def _sizes(config: Config) -> tuple[int, int, int, int, float]:
    width, heads = attention_sizes(config)
    layers = int(get(config, "model.num_layers"))
    if layers < 1:
        raise ConfigError(f"model.num_layers must be at least 1 for this task; got {layers}")
    return width, heads, layers, int(get(config, "model.intermediate_dim")), \
        float(get(config, "model.dropout"))


@keras.saving.register_keras_serializable(package="nlp")
class Float32AttentionDecoder(keras_hub.layers.TransformerDecoder):
    """keras-hub's TransformerDecoder with both attention softmaxes kept in float32."""

    def build(self, decoder_sequence_shape: Any, encoder_sequence_shape: Any = None) -> None:
        super().build(decoder_sequence_shape, encoder_sequence_shape)
        for attention in (self._self_attention_layer, self._cross_attention_layer):
            if attention is not None:
                # Stateless, so it is set past Keras' tracking (the layer is already built).
                object.__setattr__(attention, "_softmax", keras.layers.Softmax(
                    axis=attention._softmax.axis, dtype="float32", name="attention_softmax"))


@keras.saving.register_keras_serializable(package="nlp")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Share of non-padding target tokens predicted exactly (argmax of the logits)."""

    def __init__(self, name: str = "token_accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true),
                        "float32")
        self.correct.assign_add(ops.sum(hits * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self) -> Any:
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self) -> None:
        self.correct.assign(0.0)
        self.total.assign(0.0)
