"""Text files in, texts out: what every nlp task reads its data and its inputs with.

Classification (``data.py``), translation (``translation_data.py``), causal-LM
corpora (``lm_data.py``), ``predict`` and ``generate`` all read through here, so
none of them imports another task's module for a helper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from .config import Config, choice, get
from .errors import ConfigError, DataError
from .tables import open_table, text_lines
from .tokenizer import learn_vocabulary

SUFFIXES = (".csv", ".jsonl", ".tsv")


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


@overload
def find_file(config: Config, split: str, *, required: Literal[True],
              columns: str = "") -> Path: ...
@overload
def find_file(config: Config, split: str, *, required: bool,
              columns: str = "") -> Path | None: ...
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


def collect_texts(inputs: list[Path], text_column: str) -> tuple[list[str], list[str]]:
    """(source, text) pairs from raw texts and files, in the order given."""
    sources: list[str] = []
    texts: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_file():
            if path.suffix.lower() in SUFFIXES:
                found, _ = read_texts(path, text_column, None)
            else:
                found, _ = read_texts_file(path)
            if not found:
                raise DataError(f"{path} holds no text to predict")
            sources += [f"{path}:{i + 1}" for i in range(len(found))]
            texts += found
        elif path.suffix.lower() in (*SUFFIXES, ".txt") and "\n" not in str(item) \
                and " " not in str(item):
            raise DataError(f"input file {path} does not exist")
        elif str(item).strip():
            sources.append("argument")
            texts.append(str(item))
    if not texts:
        raise DataError("no texts to predict: give texts, .txt files (one per line) or CSV files")
    return sources, texts


def read_texts_file(path: Path) -> tuple[list[str], int]:
    """Non-empty lines of a text file; DataError naming the file if it is not UTF-8."""
    lines = [line for _, line in text_lines(path)]
    texts = [line for line in lines if line.strip()]
    if len(texts) < len(lines):
        print(f"note: {path}: skipped {len(lines) - len(texts)} empty line(s)", flush=True)
    return texts, len(lines) - len(texts)
