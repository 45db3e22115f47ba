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

import json
from pathlib import Path
from typing import Any

import numpy as np

from .baseline import batches_digest, tfidf_lr_accuracy
from .config import Config, choice, get
from .errors import ConfigError, DataError
from .pipeline import Batches, Splits, one_hot, stratified_split
from .tables import open_table, text_lines
from .tokenizer import WordPiece, learn_vocabulary

SUFFIXES = (".csv", ".jsonl", ".tsv")
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


def read_texts(path: Path, text_column: str, label_column: str | None, *, limit: int = 0
               ) -> tuple[list[str], list[str]]:
    """Texts and string labels from a .csv/.tsv/.jsonl file; empty texts skipped and counted.

    With ``label_column=None`` only texts are read (labels come back empty).
    """
    rows = _read_rows(path, text_column, label_column)
    texts: list[str] = []
    labels: list[str] = []
    empty = 0
    for line, text, label in rows:
        if not text.strip():
            empty += 1
            continue
        if label_column is not None and not label.strip():
            raise DataError(f"{path}:{line}: empty {label_column!r} for a non-empty text")
        texts.append(text)
        labels.append(label.strip())
        if limit and len(texts) >= limit:
            break
    if empty:
        print(f"warning: {path}: skipped {empty} row(s) with an empty {text_column!r}", flush=True)
    if not texts:
        raise DataError(f"{path}: no rows with a non-empty {text_column!r}")
    return texts, labels


def _read_rows(path: Path, text_column: str, label_column: str | None
               ) -> list[tuple[int, str, str]]:
    wanted = [text_column] + ([label_column] if label_column else [])
    rows: list[tuple[int, str, str]] = []
    if path.suffix.lower() == ".jsonl":
        for number, line in text_lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            missing = [c for c in wanted if c not in record]
            if missing:
                raise DataError(f"{path}:{number}: no {missing[0]!r} field "
                                f"(has {', '.join(map(str, record)) or 'none'})")
            label = record[label_column] if label_column else ""
            rows.append((number, _as_text(record[text_column]), _as_text(label)))
        return rows
    with open_table(path) as table:
        text_at, *label_at = table.require(wanted, "set data.text_column / data.label_column")
        for number, row in table.rows():
            rows.append((number, row[text_at], row[label_at[0]] if label_at else ""))
    return rows


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def named_path(config: Config, split: str) -> Path | None:
    """``data.<split>_file`` (relative to the working folder or ``data.dir``); None if unset."""
    named = str(get(config, f"data.{split}_file"))
    if not named:
        return None
    root = Path(get(config, "data.dir"))
    path = Path(named) if Path(named).is_absolute() or Path(named).exists() else root / named
    if not path.exists():
        raise DataError(f"data.{split}_file {path} does not exist")
    return path


def find_file(config: Config, split: str, *, required: bool, columns: str = "") -> Path | None:
    """``data.<split>_file`` if set, else ``data.dir/<split>.{csv,jsonl,tsv}``."""
    named = named_path(config, split)
    root = Path(get(config, "data.dir"))
    if named is not None:
        if not named.is_file():
            raise DataError(f"data.{split}_file {named} is not a file")
        return named
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist (set data.dir in config.toml)")
    found = [root / f"{split}{suffix}" for suffix in SUFFIXES
             if (root / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise DataError(f"{root} has {' and '.join(p.name for p in found)}; keep one or set "
                        f"data.{split}_file")
    if not found and required:
        columns = columns or (f"{get(config, 'data.text_column')!r}, "
                              f"{get(config, 'data.label_column')!r}")
        raise DataError(f"{root} has no {split}.csv, {split}.tsv or {split}.jsonl "
                        f"(columns {columns})")
    return found[0] if found else None


def learn_config_vocabulary(config: Config, texts: list[str]) -> tuple[list[str], str]:
    """A WordPiece vocabulary learned with the ``tokenizer.*`` settings; also the learner."""
    size = int(get(config, "tokenizer.vocabulary_size"))
    if not 16 <= size <= 46_000:
        raise ConfigError(f"tokenizer.vocabulary_size must be within 16..46000; got {size}")
    learner = choice(config, "tokenizer.learner", ("auto", "keras_hub", "python"))
    return learn_vocabulary(texts, size, learner=learner,
                            lowercase=bool(get(config, "tokenizer.lowercase")),
                            strip_accents=bool(get(config, "tokenizer.strip_accents")))


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


def sequence_length(config: Config, lengths: np.ndarray, *, cap: int = 512) -> int:
    """``data.sequence_length``, or (auto) one that 99% of ``lengths`` fit, a multiple of 16."""
    asked = get(config, "data.sequence_length")
    if asked != "auto":
        if not isinstance(asked, int) or isinstance(asked, bool) or asked < 4:
            raise ConfigError(f"data.sequence_length must be 'auto' or an integer >= 4; "
                              f"got {asked!r}")
        return asked
    # Long enough for 99% of the training texts, a multiple of 16, within 16..512.
    covering = int(np.percentile(lengths, 99)) if len(lengths) else 16
    return int(min(cap, max(16, -(-covering // 16) * 16)))


def report_truncation(truncated: int, total: int, length: int) -> None:
    """Say how many texts were cut to ``length`` tokens (nothing when none were)."""
    if truncated:
        print(f"note: {truncated} of {total} text(s) are longer than {length} tokens and were "
              "truncated (raise data.sequence_length to keep more)", flush=True)


def _columns(config: Config) -> tuple[str, str]:
    return str(get(config, "data.text_column")), str(get(config, "data.label_column"))


def _limit(config: Config) -> int:
    return int(get(config, "data.max_rows"))


def _one_hot(labels: list[str], class_names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    return one_hot([index[label] for label in labels], len(class_names))
