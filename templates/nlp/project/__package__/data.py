"""Text data: CSV or JSON-lines files -> WordPiece ids -> batches.

``data.task`` picks the task: classification is here; translation pairs are in
``translation_data.py`` and causal-LM corpora in ``lm_data.py``. For classification:

    data.dir/train.csv  (or train.jsonl)   columns data.text_column and data.label_column
    data.dir/val.csv    (or val.jsonl)     optional; else a stratified split of train

Texts are tokenized once, here, into int32 ids padded to one fixed length, so
the compiled training step never sees a new shape. The vocabulary is learned
from the training texts and travels in meta (RUN/meta.json) for predict.
Empty texts are skipped and counted; longer texts are truncated and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .baseline import batches_digest, tfidf_lr_accuracy
from .config import Config, choice, get
from .errors import ConfigError, DataError
from .overlap import warn_overlap
from .pipeline import Batches, Splits, one_hot, stratified_split
from .text_io import (
    find_file,
    learn_config_vocabulary,
    read_texts,
    report_truncation,
    sequence_length,
)
from .tokenizer import WordPiece

TASKS = ("classification", "translation", "causal_lm")


# A key only each task's config.toml has: the config was generated for that task.
TASK_KEYS = {"classification": "label_column", "translation": "source_column",
             "causal_lm": "text_column"}


def task_of(config_or_meta: dict[str, Any]) -> str:
    """The task of a config (``data.task``) or of a run's meta (``task``)."""
    if "data" not in config_or_meta:
        return str(config_or_meta.get("task", "classification"))
    task = choice(config_or_meta, "data.task", TASKS)
    data_section = config_or_meta["data"]
    if TASK_KEYS[task] not in data_section or (task == "causal_lm"
                                               and "label_column" in data_section):
        raise ConfigError(f"data.task = {task!r} needs that task's config.toml; generate "
                          f"one with: appgen new NAME -t nlp --task {task}")
    return task


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches plus the vocabulary (and classes) for ``data.task``."""
    task = task_of(config)
    if task == "translation":
        from .translation_data import load_pairs

        return load_pairs(config, batch_size=batch_size)
    if task == "causal_lm":
        from .lm_data import load_corpus

        return load_corpus(config, batch_size=batch_size)
    texts, labels, val_texts, val_labels, class_names = _read_classification(config)
    warn_overlap(texts, val_texts, what="texts")
    preset = str(get(config, "model.preset"))
    if preset:
        from .presets import preset_meta

        meta = preset_meta(config, preset, texts)
    else:
        meta = _learn_meta(config, texts)
    # tokens_per_sample: what bench multiplies samples/s by to report tokens/s.
    meta.update(task="classification", class_names=class_names,
                text_column=str(get(config, "data.text_column")),
                tokens_per_sample=int(meta["sequence_length"]),
                summary=f"{len(class_names)} classes, {meta['summary']}")
    encoder = make_encoder(meta)
    ids, truncated = encoder(texts)
    val_ids, val_truncated = encoder(val_texts)
    report_truncation(truncated + val_truncated, len(texts) + len(val_texts),
                       meta["sequence_length"])
    seed = int(get(config, "runtime.seed"))
    train = Batches(ids, _one_hot(labels, class_names), batch_size, training=True, seed=seed)
    val = Batches(val_ids, _one_hot(val_labels, class_names), batch_size, training=False)
    meta["baseline"] = {"tfidf_lr_accuracy": tfidf_lr_accuracy(texts, labels, val_texts,
                                                                val_labels, seed=seed),
                        "validation_digest": batches_digest(val.inputs, val.targets)}
    return Splits(train, val, meta)


def load_validation(config: Config, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """The run's validation split, encoded with the vocabulary the run recorded in meta.

    The split is read (and, without a val file, drawn) as ``load_splits`` did; nothing
    is learned again, so a changed training file or tokenizer learner cannot change
    the ids the model is scored on.
    """
    task = task_of(meta)
    if task == "translation":
        from .translation_data import encode_pairs, read_pairs

        _, _, val_sources, val_targets = read_pairs(config)
        return encode_pairs(val_sources, val_targets, meta, batch_size, training=False)
    if task == "causal_lm":
        from .lm_data import encode_documents, read_corpus

        _, val_documents = read_corpus(config)
        return encode_documents(val_documents, meta, batch_size, training=False)
    _, _, val_texts, val_labels, _ = _read_classification(config)
    unknown = sorted(set(val_labels) - set(meta["class_names"]))
    if unknown:
        raise DataError(f"validation labels the model was not trained on: {unknown[:5]}")
    ids, truncated = make_encoder(meta)(val_texts)
    report_truncation(truncated, len(val_texts), meta["sequence_length"])
    return Batches(ids, _one_hot(val_labels, meta["class_names"]), batch_size, training=False)


def _read_classification(config: Config
                         ) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """Training texts and labels, validation texts and labels, and the class names."""
    text_column, label_column = _columns(config)
    train_path = find_file(config, "train", required=True)
    texts, labels = read_texts(train_path, text_column, label_column, limit=_limit(config))
    val_path = find_file(config, "val", required=False)
    class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise DataError(f"{train_path}: column {label_column!r} has only one class "
                        f"({class_names[0]!r}); need at least two")
    if val_path is not None:
        val_texts, val_labels = read_texts(val_path, text_column, label_column)
        unknown = sorted(set(val_labels) - set(class_names))
        if unknown:
            raise DataError(f"{val_path}: labels not in the training data: {unknown[:5]}")
    else:
        indices = np.asarray([class_names.index(label) for label in labels])
        train_idx, val_idx = stratified_split(indices, float(get(config, "data.val_fraction")),
                                              int(get(config, "runtime.seed")))
        val_texts, val_labels = [texts[i] for i in val_idx], [labels[i] for i in val_idx]
        texts, labels = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
    return texts, labels, val_texts, val_labels, class_names


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Batches from another labelled file, tokenized with the training run's vocabulary."""
    if task_of(meta) == "translation":
        from .translation_data import load_eval_pairs

        return load_eval_pairs(Path(path), meta, batch_size=batch_size)
    if task_of(meta) == "causal_lm":
        from .lm_data import load_eval_corpus

        return load_eval_corpus(config, Path(path), meta, batch_size=batch_size)
    text_column, label_column = _columns(config)
    texts, labels = read_texts(Path(path), text_column, label_column)
    unknown = sorted(set(labels) - set(meta["class_names"]))
    if unknown:
        raise DataError(f"{path}: labels the model was not trained on: {unknown[:5]}")
    ids, truncated = make_encoder(meta)(texts)
    report_truncation(truncated, len(texts), meta["sequence_length"])
    return Batches(ids, _one_hot(labels, meta["class_names"]), batch_size, training=False)


def make_encoder(meta: dict[str, Any]) -> Any:
    """A function texts -> (int32 ids (n, sequence_length), number truncated)."""
    length = int(meta["sequence_length"])
    if meta.get("preset"):
        from .presets import preset_encoder

        return preset_encoder(meta)
    wordpiece = WordPiece(meta["vocabulary"], lowercase=meta["lowercase"],
                          strip_accents=meta["strip_accents"])
    return lambda texts: wordpiece.encode_batch(texts, length)


def _learn_meta(config: Config, texts: list[str]) -> dict[str, Any]:
    lowercase = bool(get(config, "tokenizer.lowercase"))
    strip_accents = bool(get(config, "tokenizer.strip_accents"))
    vocabulary, used = learn_config_vocabulary(config, texts)
    wordpiece = WordPiece(vocabulary, lowercase=lowercase, strip_accents=strip_accents)
    lengths = np.asarray([len(wordpiece.encode(text)) for text in texts])
    length = sequence_length(config, lengths)
    return {"vocabulary": vocabulary, "lowercase": lowercase, "strip_accents": strip_accents,
            "sequence_length": length, "vocabulary_learner": used, "preset": "",
            "summary": f"{len(vocabulary)} WordPiece tokens ({used}), sequences of {length} "
                       f"(median text {int(np.median(lengths))} tokens)"}


def _columns(config: Config) -> tuple[str, str]:
    return str(get(config, "data.text_column")), str(get(config, "data.label_column"))


def _limit(config: Config) -> int:
    return int(get(config, "data.max_rows"))


def _one_hot(labels: list[str], class_names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    return one_hot([index[label] for label in labels], len(class_names))
