"""Fine-tuning a keras-hub encoder-decoder preset (BART) for translation (``model.preset``).

The preset's backbone and tokenizer replace the Transformer and the WordPiece
vocabularies; the rest of the translation pipeline (teacher-forced batches, loss, greedy
and beam search, BLEU, export) is the from-scratch code, because the ids keep the
template's layout (``lm_preset.py``: 0..3 are ``[PAD] [UNK] [START] [END]``, preset
token ``t`` is id ``t + 4``). A source row is ``[START] tokens [END]``, which
``PresetTranslator`` hands to the encoder as BART's ``<s> tokens </s>``; the decoder
starts from ``<s>`` and learns to end with ``</s>`` (``[END]``). keras-hub's own
preprocessor puts ``</s> <s>`` in front of the decoder's input instead; a single start
token keeps one fixed-length row per side and costs the pretrained model one position
of context that fine-tuning relearns.

``model.lora_rank > 0`` calls ``backbone.enable_lora(rank)``: the query/value kernels of
every encoder self-attention, decoder self-attention and cross-attention layer get
adapters, and every other backbone weight is frozen (those layers' biases train too).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from .config import Config
from .errors import ConfigError
from .finetune import load_preset, source
from .lm_preset import OFFSET, PresetLayer, lora_rank, special_ids, tokenizer_of
from .seq_text import token_lengths
from .text_io import sequence_length

SEQ2SEQ_INPUTS = {"encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
                  "decoder_padding_mask"}


def preset_meta(config: Config, preset: str, sources: list[str],
                targets: list[str]) -> dict[str, Any]:
    """meta.json for a preset run: the preset (a folder as an absolute path), LoRA rank and
    the sequence length; no vocabulary (the preset's tokenizer encodes both sides)."""
    recorded = source(preset)
    tokenizer = tokenizer_of(recorded)
    # a source row holds [START] and [END]; a target row is one longer than the model's
    lengths = np.maximum(token_lengths(tokenizer, sources) + 2,
                         token_lengths(tokenizer, targets) + 1)
    length = sequence_length(config, lengths, cap=256)
    return {"task": "translation", "preset": recorded, "lora_rank": lora_rank(config),
            "sequence_length": length, "tokens_per_sample": 2 * length,
            "summary": f"{tokenizer.vocabulary_size - OFFSET} tokens (preset {preset}), "
                       f"{length} tokens per side"}


def preset_translator(config: Config, meta: dict[str, Any]) -> keras.Model:
    """``{"encoder_ids", "decoder_ids"}`` (template layout) -> next-token logits, through
    the preset's encoder-decoder backbone."""
    backbone = load_preset("models.Backbone", meta["preset"])
    inputs = set(backbone.input) if isinstance(backbone.input, dict) else set()
    if not SEQ2SEQ_INPUTS <= inputs or not hasattr(backbone, "token_embedding"):
        raise ConfigError(f"preset {meta['preset']!r} ({type(backbone).__name__}) is not an "
                          "encoder-decoder backbone: translation needs a seq2seq preset such "
                          "as bart_base_en")
    length = int(meta["sequence_length"])
    longest = getattr(backbone, "max_sequence_length", None)
    if longest is not None and length > int(longest):
        raise ConfigError(f"data.sequence_length = {length} is more than the preset's "
                          f"maximum, {longest}: set data.sequence_length={longest}")
    tokenizer = tokenizer_of(meta["preset"]).tokenizer
    start, end = special_ids(tokenizer)
    pad = getattr(tokenizer, "pad_token_id", None)
    encoder_ids = keras.Input((length,), dtype="int32", name="encoder_ids")
    decoder_ids = keras.Input((length,), dtype="int32", name="decoder_ids")
    logits = PresetTranslator(backbone, lora_rank=int(meta.get("lora_rank", 0)),
                              start_id=start, end_id=end,
                              pad_id=None if pad is None else int(pad),
                              name="preset_translator")(encoder_ids, decoder_ids)
    return keras.Model([encoder_ids, decoder_ids], logits, name="preset_translator_model")


@keras.saving.register_keras_serializable(package="nlp")
class PresetTranslator(PresetLayer):
    """A keras-hub encoder-decoder backbone as the template's translator."""

    def call(self, encoder_ids: Any, decoder_ids: Any) -> Any:
        outputs = self.backbone({
            "encoder_token_ids": self.to_preset(encoder_ids),
            "encoder_padding_mask": ops.cast(ops.not_equal(encoder_ids, 0), "int32"),
            "decoder_token_ids": self.to_preset(decoder_ids),
            "decoder_padding_mask": ops.cast(ops.not_equal(decoder_ids, 0), "int32")})
        return self.to_template(outputs["decoder_sequence_output"])

    def compute_output_shape(self, encoder_ids_shape: Any, decoder_ids_shape: Any
                             ) -> tuple[Any, ...]:
        return (*decoder_ids_shape, int(self.backbone.token_embedding.input_dim) + OFFSET)

