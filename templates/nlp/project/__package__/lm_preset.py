"""Fine-tuning a keras-hub causal LM preset (``model.preset``), optionally with LoRA.

The preset's backbone (GPT-2, Gemma, ...) and tokenizer replace the model and the
WordPiece vocabulary; the rest of the causal_lm pipeline (loss, perplexity against the
unigram baseline, sampling, export) is unchanged because the ids keep the template's
layout: 0..3 are ``[PAD] [UNK] [START] [END]`` and preset token ``t`` is id ``t + 4``.
``PresetLM`` maps them to the preset's ids inside the model and back out in its logits.

``model.lora_rank > 0`` calls ``backbone.enable_lora(rank)``: every backbone weight is
frozen and only small low-rank adapters on the attention query/value layers train.
keras-hub's backbone config does not record LoRA, so ``PresetLM`` records the rank in
its own config and enables LoRA again when a checkpoint loads. Keras saves a LoRA
layer's kernel with its adapters merged in (and zeroes the adapters on load), so a
reloaded model computes exactly what the trained one did, and ``--resume`` keeps
training adapters (starting from zero on top of the merged kernel), not the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .config import Config, get
from .errors import ConfigError
from .finetune import load_preset

OFFSET = 4  # ids 0..3 are [PAD] [UNK] [START] [END] (seq_text.py)
_TOKENIZERS: dict[str, PresetTokenizer] = {}


class PresetTokenizer:
    """The preset's tokenizer, with ids shifted by ``OFFSET`` (``encode`` like WordPiece)."""

    def __init__(self, preset: str) -> None:
        self.tokenizer = load_preset("models.Tokenizer", preset)
        self.vocabulary_size = int(self.tokenizer.vocabulary_size()) + OFFSET

    def encode(self, text: str) -> list[int]:
        return [int(i) + OFFSET for i in np.asarray(self.tokenizer.tokenize(text)).ravel()]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ids up to ``[END]`` (markers and padding dropped)."""
        ids = [int(i) for i in ids]
        ids = ids[:ids.index(3)] if 3 in ids else ids  # [END]
        kept = np.asarray([i - OFFSET for i in ids if i >= OFFSET], dtype=np.int32)
        if not kept.size:
            return ""
        text = self.tokenizer.detokenize(kept)
        text = text.numpy() if hasattr(text, "numpy") else text
        return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)).strip()


def tokenizer_of(preset: str) -> PresetTokenizer:
    """One loaded tokenizer per preset and process."""
    if preset not in _TOKENIZERS:
        _TOKENIZERS[preset] = PresetTokenizer(preset)
    return _TOKENIZERS[preset]


def lora_rank(config: Config) -> int:
    """``model.lora_rank``, range-checked (0 = fine-tune every backbone weight)."""
    rank = int(get(config, "model.lora_rank"))
    if not 0 <= rank <= 1024:
        raise ConfigError(f"model.lora_rank must be 0 (off) to 1024; got {rank}")
    return rank


def special_ids(tokenizer: Any) -> tuple[int, int]:
    """The preset's ids that play [START] and [END] (GPT-2 uses <|endoftext|> for both)."""
    end = tokenizer.end_token_id
    start = getattr(tokenizer, "start_token_id", None)
    if end is None:
        raise ConfigError("the preset's tokenizer has no end token: not a causal LM preset")
    return (end if start is None else int(start)), int(end)


def preset_language_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """``token_ids`` (template layout) -> next-token logits, through the preset's backbone."""
    backbone = load_preset("models.Backbone", meta["preset"])
    if not hasattr(backbone, "token_embedding"):
        raise ConfigError(f"preset {meta['preset']!r} is not a causal LM backbone")
    longest = getattr(backbone, "max_sequence_length", None)
    if longest is not None and int(meta["sequence_length"]) > int(longest):
        raise ConfigError(f"data.sequence_length = {meta['sequence_length']} is more than the "
                          f"preset's maximum, {longest}: set data.sequence_length={longest}")
    start, end = special_ids(tokenizer_of(meta["preset"]).tokenizer)
    ids = keras.Input((int(meta["sequence_length"]),), dtype="int32", name="token_ids")
    logits = PresetLM(backbone, lora_rank=int(meta.get("lora_rank", 0)), start_id=start,
                      end_id=end, name="preset_lm")(ids)
    return keras.Model(ids, logits, name="preset_language_model")


class PresetLayer(keras.layers.Layer):
    """A keras-hub backbone inside a template model; LoRA survives save and load.

    Ids arrive in the template's layout and are mapped to the preset's (``[START]`` /
    ``[END]`` to its start / end tokens, ``[PAD]`` to ``pad_id``, else 0, which the
    padding mask or causal attention hides); logits leave over the template's ids (the
    end token's column at ``[END]``, never ``[PAD] [UNK] [START]`` or the preset's pad).
    """

    def __init__(self, backbone: Any, lora_rank: int = 0, start_id: int = 0, end_id: int = 0,
                 pad_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(backbone, dict):  # loading a checkpoint: rebuild, then LoRA, then weights
            backbone = keras.saving.deserialize_keras_object(backbone)
        if lora_rank:
            backbone.enable_lora(lora_rank)
        self.backbone = backbone
        self.lora_rank, self.start_id, self.end_id = int(lora_rank), int(start_id), int(end_id)
        self.pad_id = None if pad_id is None else int(pad_id)
        size = int(backbone.token_embedding.input_dim)
        hidden = np.zeros(size, dtype=np.float32)  # the markers have their own columns
        hidden[[self.start_id, self.end_id]] = -1e9
        if self.pad_id is not None:
            hidden[self.pad_id] = -1e9
        self.hidden = hidden

    def build(self, *input_shapes: Any) -> None:
        self.built = True

    def to_preset(self, ids: Any) -> Any:
        """Template ids -> the preset's ids."""
        ids = ops.cast(ids, "int32")
        return ops.where(ids >= OFFSET, ids - OFFSET,
                         ops.where(ids == 2, self.start_id,
                                   ops.where(ids == 3, self.end_id, self.pad_id or 0)))

    def to_template(self, x: Any) -> Any:
        """The backbone's hidden states -> logits over the template's ids (float32)."""
        logits = ops.cast(self.backbone.token_embedding(x, reverse=True), "float32")
        never = ops.full_like(logits[..., :3], -1e9)  # [PAD] [UNK] [START] are never next
        end = logits[..., self.end_id:self.end_id + 1]
        return ops.concatenate([never, end, logits + self.hidden], axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(
            self.backbone), "lora_rank": self.lora_rank, "start_id": self.start_id,
            "end_id": self.end_id, "pad_id": self.pad_id}


@keras.saving.register_keras_serializable(package="nlp")
class PresetLM(PresetLayer):
    """A keras-hub causal LM backbone as the template's language model."""

    def call(self, ids: Any) -> Any:
        mapped = self.to_preset(ids)
        # padding sits after the text and attention is causal: every position may be seen
        x = self.backbone({"token_ids": mapped, "padding_mask": ops.ones_like(mapped)})
        return self.to_template(x)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape, int(self.backbone.token_embedding.input_dim) + OFFSET)
