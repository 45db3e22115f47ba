"""Translation data: sentence pairs -> WordPiece ids -> teacher-forced batches.

    data.dir/train.tsv  (or .csv / .jsonl)   columns data.source_column, data.target_column
    data.dir/val.tsv                         optional; else a random data.val_fraction of train

Each batch is ``({"encoder_ids": source, "decoder_ids": [START] target}, target [END])``:
the decoder reads the reference up to step t and learns to predict token t + 1
(teacher forcing). Both sides are padded to ``data.sequence_length`` tokens; longer
sentences are truncated and counted. The vocabularies travel in RUN/meta.json.
With ``model.preset`` the preset's tokenizer encodes both sides instead
(``seq2seq_preset.py``) and source rows carry ``[START]`` / ``[END]`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, choice, get
from .errors import ConfigError, DataError
from .lm_preset import lora_rank, tokenizer_of
from .overlap import warn_overlap
from .pipeline import Batches, Splits
from .seq_text import detokenize, encode_rows, token_lengths, with_markers, wordpiece
from .text_io import (
    find_file,
    learn_config_vocabulary,
    read_texts,
    report_truncation,
    sequence_length,
)


def load_pairs(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches of sentence pairs, and the vocabularies in meta."""
    sources, targets, val_sources, val_targets = read_pairs(config)
    warn_overlap(sources, val_sources, what="source sentences")
    source_column = str(get(config, "data.source_column"))
    target_column = str(get(config, "data.target_column"))
    preset = str(get(config, "model.preset"))
    if preset:  # the preset's own tokenizer (seq2seq_preset.py); no vocabulary is learned
        from .seq2seq_preset import preset_meta

        meta = preset_meta(config, preset, sources, targets)
    elif lora_rank(config):
        raise ConfigError("model.lora_rank needs model.preset (LoRA adapts a pretrained "
                          "backbone); set it to 0 to train from scratch")
    else:
        meta = _learn_meta(config, sources, targets)
    meta.update(source_column=source_column, target_column=target_column,
                decoding=decoding_settings(config))
    train = encode_pairs(sources, targets, meta, batch_size, training=True,
                         seed=int(get(config, "runtime.seed")))
    val = encode_pairs(val_sources, val_targets, meta, batch_size, training=False)
    return Splits(train, val, meta)


def read_pairs(config: Config) -> tuple[list[str], list[str], list[str], list[str]]:
    """Training sources and targets, then validation sources and targets."""
    source_column = str(get(config, "data.source_column"))
    target_column = str(get(config, "data.target_column"))
    columns = f"{source_column!r}, {target_column!r}"
    train_path = find_file(config, "train", required=True, columns=columns)
    sources, targets = read_texts(train_path, source_column, target_column,
                                  limit=int(get(config, "data.max_rows")))
    val_path = find_file(config, "val", required=False, columns=columns)
    if val_path is not None:
        val_sources, val_targets = read_texts(val_path, source_column, target_column)
    else:
        if len(sources) < 2:
            raise DataError(f"{train_path}: need at least 2 pairs to hold some out for validation")
        order = np.random.default_rng(int(get(config, "runtime.seed"))).permutation(len(sources))
        held = max(1, round(len(sources) * float(get(config, "data.val_fraction"))))
        val_sources, val_targets = [sources[i] for i in order[:held]], [targets[i] for i in
                                                                         order[:held]]
        sources, targets = [sources[i] for i in order[held:]], [targets[i] for i in order[held:]]
    return sources, targets, val_sources, val_targets


def load_eval_pairs(path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Batches of another file's pairs, tokenized with the training run's vocabularies."""
    sources, targets = read_texts(path, meta["source_column"], meta["target_column"])
    return encode_pairs(sources, targets, meta, batch_size, training=False)


def encode_pairs(sources: list[str], targets: list[str], meta: dict[str, Any], batch_size: int,
                 *, training: bool, seed: int = 0) -> Batches:
    """Teacher-forced batches; truncated sentences are counted in the log."""
    length = int(meta["sequence_length"])
    source_ids, cut_sources = encode_sources(meta, sources)
    # length + 1: decoder inputs are tokens 0..L-1, targets tokens 1..L of the same row.
    target_ids, cut_targets = encode_rows(_tokenizer(meta, "target"), targets, length + 1,
                                          markers=True)
    report_truncation(cut_sources + cut_targets, 2 * len(sources), length)
    inputs = {"encoder_ids": source_ids, "decoder_ids": target_ids[:, :-1]}
    return Batches(inputs, target_ids[:, 1:], batch_size, training=training, seed=seed)


def encode_sources(meta: dict[str, Any], sources: Sequence[str]) -> tuple[np.ndarray, int]:
    """The encoder's ids of ``sources`` (a preset's encoder also sees [START] / [END]),
    and how many were truncated."""
    return encode_rows(_tokenizer(meta, "source"), sources, int(meta["sequence_length"]),
                       markers=bool(meta.get("preset")))


def text_of(meta: dict[str, Any], side: str) -> Callable[[Sequence[int]], str]:
    """ids of ``side`` ("source" or "target") -> readable text (cut at ``[END]``)."""
    if meta.get("preset"):
        return tokenizer_of(meta["preset"]).decode
    vocabulary = meta[f"{side}_vocabulary"]
    return lambda ids: detokenize(vocabulary, ids)


def _tokenizer(meta: dict[str, Any], side: str) -> Any:
    if meta.get("preset"):
        return tokenizer_of(meta["preset"])
    return wordpiece(meta, f"{side}_vocabulary")


def decoding_settings(config: Config) -> dict[str, Any]:
    """``predict.*`` decoding knobs, kept in meta so ``evaluate``'s BLEU decodes the same way."""
    decoding = choice(config, "predict.decoding", ("beam", "greedy"))
    width = int(get(config, "predict.beam_width"))
    if width < 1:
        raise ConfigError(f"predict.beam_width must be at least 1; got {width}")
    return {"decoding": decoding, "beam_width": width,
            "length_penalty": float(get(config, "predict.length_penalty")),
            "batch_size": max(1, int(get(config, "predict.batch_size")))}


def _learn_meta(config: Config, sources: list[str], targets: list[str]) -> dict[str, Any]:
    lowercase = bool(get(config, "tokenizer.lowercase"))
    strip_accents = bool(get(config, "tokenizer.strip_accents"))
    shared = bool(get(config, "tokenizer.shared_vocabulary"))
    if shared:
        source_vocabulary, learner = learn_config_vocabulary(config, sources + targets)
        source_vocabulary = target_vocabulary = with_markers(source_vocabulary)
    else:
        source_vocabulary, learner = learn_config_vocabulary(config, sources)
        target_vocabulary, _ = learn_config_vocabulary(config, targets)
        source_vocabulary = with_markers(source_vocabulary)
        target_vocabulary = with_markers(target_vocabulary)
    meta: dict[str, Any] = {
        "task": "translation", "source_vocabulary": source_vocabulary,
        "target_vocabulary": target_vocabulary, "shared_vocabulary": shared,
        "lowercase": lowercase, "strip_accents": strip_accents, "vocabulary_learner": learner}
    lengths = np.maximum(token_lengths(wordpiece(meta, "source_vocabulary"), sources),
                         token_lengths(wordpiece(meta, "target_vocabulary"), targets) + 1)
    length = sequence_length(config, lengths, cap=256)
    sizes = (f"{len(source_vocabulary)} shared" if shared else
             f"{len(source_vocabulary)} source / {len(target_vocabulary)} target")
    # tokens_per_sample: what bench multiplies samples/s by to report tokens/s.
    meta.update(sequence_length=length, tokens_per_sample=2 * length,
                summary=f"{sizes} WordPiece tokens ({learner}), {length} tokens per side")
    return meta
