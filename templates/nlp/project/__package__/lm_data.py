"""Causal-LM data: a text corpus -> WordPiece ids -> next-token batches.

    data.dir/train.txt            one document per line (empty lines skipped)
    data.dir/train/*.txt          a folder of such files (searched recursively)
    data.dir/train.jsonl / .csv   the data.text_column field / column
    data.dir/val.txt (etc.)       optional; else a random data.val_fraction of train

Each document becomes one row ``[START] tokens [END]`` padded to
``data.sequence_length + 1`` ids; the model reads ids 0..L-1 and learns to predict
ids 1..L. Longer documents are truncated and counted in the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, get
from .errors import ConfigError, DataError
from .finetune import source
from .lm_preset import lora_rank, tokenizer_of
from .overlap import warn_overlap
from .pipeline import Batches, Splits
from .seq_text import encode_rows, token_lengths, with_markers, wordpiece
from .tables import text_lines
from .text_io import (
    SUFFIXES,
    learn_config_vocabulary,
    named_path,
    read_texts,
    report_truncation,
    sequence_length,
)


def load_corpus(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches of documents, and the vocabulary in meta."""
    text_column = str(get(config, "data.text_column"))
    documents, val_documents = read_corpus(config)
    warn_overlap(documents, val_documents, what="documents")
    preset = str(get(config, "model.preset"))
    meta: dict[str, Any] = {"task": "causal_lm", "text_column": text_column}
    if preset:  # the preset's own tokenizer (lm_preset.py); no vocabulary is learned
        meta.update(preset=source(preset), lora_rank=lora_rank(config))
        learner = f"preset {preset}"
    elif lora_rank(config):
        raise ConfigError("model.lora_rank needs model.preset (LoRA adapts a pretrained "
                          "backbone); set it to 0 to train from scratch")
    else:
        vocabulary, learner = learn_config_vocabulary(config, documents)
        meta.update(vocabulary=with_markers(vocabulary), vocabulary_learner=learner,
                    lowercase=bool(get(config, "tokenizer.lowercase")),
                    strip_accents=bool(get(config, "tokenizer.strip_accents")))
    lengths = token_lengths(lm_tokenizer(meta), documents) + 1  # [START] or [END] beside them
    length = sequence_length(config, lengths)
    train = encode_documents(documents, meta | {"sequence_length": length}, batch_size,
                             training=True, seed=int(get(config, "runtime.seed")))
    counts = np.bincount(train.targets.ravel(), minlength=vocabulary_size(meta))
    counts[0] = 0  # padding is never a target
    meta.update(sequence_length=length, tokens_per_sample=length,
                unigram_counts=counts.tolist(),
                summary=f"{vocabulary_size(meta)} tokens ({learner}), "
                        f"documents of up to {length} tokens "
                        f"(median {int(np.median(lengths))})")
    val = encode_documents(val_documents, meta, batch_size, training=False)
    return Splits(train, val, meta)


def lm_tokenizer(meta: dict[str, Any]) -> Any:
    """The run's tokenizer: the preset's (ids shifted past the markers), else WordPiece."""
    if meta.get("preset"):
        return tokenizer_of(meta["preset"])
    return wordpiece(meta)


def vocabulary_size(meta: dict[str, Any]) -> int:
    """Ids the model predicts: the learned vocabulary, or the preset's plus the markers."""
    if meta.get("preset"):
        return tokenizer_of(meta["preset"]).vocabulary_size
    return len(meta["vocabulary"])


def read_corpus(config: Config) -> tuple[list[str], list[str]]:
    """Training documents and validation documents (held out of train without a val file)."""
    text_column = str(get(config, "data.text_column"))
    train_paths = find_corpus(config, "train", required=True)
    documents = read_documents(train_paths, text_column, limit=int(get(config, "data.max_rows")))
    val_paths = find_corpus(config, "val", required=False)
    if val_paths:
        return documents, read_documents(val_paths, text_column)
    if len(documents) < 2:
        raise DataError(f"{train_paths[0]}: need at least 2 documents to hold some out "
                        "for validation")
    order = np.random.default_rng(int(get(config, "runtime.seed"))).permutation(len(documents))
    held = max(1, round(len(documents) * float(get(config, "data.val_fraction"))))
    return [documents[i] for i in order[held:]], [documents[i] for i in order[:held]]


def load_eval_corpus(config: Config, path: Path, meta: dict[str, Any], *,
                     batch_size: int) -> Batches:
    """Batches of another corpus (file or folder), tokenized with the run's vocabulary."""
    if not path.exists():
        raise DataError(f"{path} does not exist")
    paths = _txt_files(path) if path.is_dir() else [path]
    documents = read_documents(paths, str(meta.get("text_column", "text")))
    return encode_documents(documents, meta, batch_size, training=False)


def encode_documents(documents: list[str], meta: dict[str, Any], batch_size: int, *,
                     training: bool, seed: int = 0) -> Batches:
    """Next-token batches: inputs ids 0..L-1, targets ids 1..L of each row."""
    length = int(meta["sequence_length"])
    ids, truncated = encode_rows(lm_tokenizer(meta), documents, length + 1, markers=True)
    report_truncation(truncated, len(documents), length)
    return Batches(ids[:, :-1], ids[:, 1:], batch_size, training=training, seed=seed)


def read_documents(paths: list[Path], text_column: str, *, limit: int = 0) -> list[str]:
    """Non-empty documents of .txt files (one per line) or .csv/.tsv/.jsonl files."""
    documents: list[str] = []
    for path in paths:
        if path.suffix.lower() in SUFFIXES:
            found, _ = read_texts(path, text_column, None)
        else:
            found = _read_lines(path)
        documents += found
        if limit and len(documents) >= limit:
            return documents[:limit]
    return documents


def find_corpus(config: Config, split: str, *, required: bool) -> list[Path]:
    """``data.<split>_file`` (a file or folder), else ``data.dir/<split>.txt``, a
    ``data.dir/<split>/`` folder of .txt files, or ``data.dir/<split>.{csv,jsonl,tsv}``."""
    named = named_path(config, split)
    if named is not None:
        return _txt_files(named) if named.is_dir() else [named]
    root = Path(get(config, "data.dir"))
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (set data.dir in config.toml)")
    found = [root / f"{split}{suffix}" for suffix in (".txt", *SUFFIXES)
             if (root / f"{split}{suffix}").is_file()]
    if (root / split).is_dir():
        found.append(root / split)
    if len(found) > 1:
        raise DataError(f"{root} has {' and '.join(p.name for p in found)}; keep one or set "
                        f"data.{split}_file")
    if not found:
        if required:
            raise DataError(f"{root} has no {split}.txt (one document per line), {split}/ "
                            f"folder of .txt files, or {split}.jsonl / .csv")
        return []
    return _txt_files(found[0]) if found[0].is_dir() else found


def _txt_files(folder: Path) -> list[Path]:
    files = sorted(path for path in folder.rglob("*.txt") if path.is_file())
    if not files:
        raise DataError(f"{folder} holds no .txt files")
    return files


def _read_lines(path: Path) -> list[str]:
    lines = [line for _, line in text_lines(path)]
    documents = [line.strip() for line in lines if line.strip()]
    if not documents:
        raise DataError(f"{path} has no non-empty lines (one document per line)")
    return documents
