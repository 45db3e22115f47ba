"""Fraud data: one table -> numeric features and category ids -> batches.

    data.dir          a folder holding one CSV (or Parquet, with pyarrow) file, one row
                      per transaction; or data.path naming the file (it then wins)
    data.target       the binary label column (0/1, true/false, yes/no or two strings)

Column types are inferred and can be forced in config: numbers and booleans
become numeric features, timestamps become hour-of-day and day-of-week, text
becomes a categorical column with a vocabulary of its most frequent values, and
text with a distinct value on nearly every row is an identifier (kept for
``predict``'s output, never a feature).

Everything learnt from the data (vocabularies, fill values, scaling) comes from
the training rows only and is saved in ``meta`` (RUN/meta.json). ``encode``
applies it to any table with the same columns: unknown categories get the
out-of-vocabulary id and missing values the training fill value, and both are
counted. The model takes numbers only (``numeric`` and one int id input per
categorical column), so the same model runs on TensorFlow and JAX: string
lookups inside a compiled JAX model are not possible.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, choice, get
from .errors import DataError
from .overlap import warn_overlap
from .pipeline import Batches, Splits, stratified_split
from .tables import open_table

TABLE_SUFFIXES = (".csv", ".parquet")
MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?")
# Every capitalisation of the tokens, so a column is checked without lower-casing it.
MISSING_VARIANTS = sorted({v for t in MISSING_TOKENS for v in (t, t.upper(), t.capitalize())}
                          | {"NaN", "N/a"})
BOOLEAN_VALUES = {"true": 1.0, "false": 0.0, "t": 1.0, "f": 0.0, "yes": 1.0, "no": 0.0,
                  "y": 1.0, "n": 0.0}
POSITIVE_NAMES = ("1", "true", "yes", "y", "t", "fraud", "fraudulent", "positive", "pos")
CREDITCARD_SCHEMA = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class")
MISSING_ID, OOV_ID = 0, 1  # category ids: 0 missing, 1 unknown or rare, 2.. the vocabulary
# Names of identifier columns (id, customer_id, CustomerID, user-uuid) and of time columns
# (time, timestamp, event_time, created_at): ids are not features; time orders the split.
ID_NAME = re.compile(r"(?i:^(id|uuid|guid)$|[_\s.-](id|uuid|guid)$)|[a-z0-9]I[Dd]$")
TIME_NAME = re.compile(r"(?i)^(time|timestamp|datetime|date|ts)$|[_\s.-](time|timestamp|date|at)$")
CHUNK_ROWS = 200_000


@dataclass
class Encoded:
    """Model inputs for a table, with what had to be filled in or mapped to unknown."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    missing: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    ids: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------- entry points


def load_splits(config: Config, *, batch_size: int) -> Splits:
    """Training and validation batches, plus everything learnt from the training rows."""
    path = table_path(config)
    columns = read_table(path, max_rows=int(get(config, "data.max_rows")))
    target = target_column(config, columns, path)
    labels, classes = parse_target(columns[target], target, path,
                                   str(get(config, "data.positive_class")))
    kinds, dropped = infer_kinds(columns, config, path, target)
    parsed = {name: parse_column(columns[name], kind, name, path) for name, kind in kinds.items()}

    val_path = named_table(config, "data.val_path")
    if val_path:
        train_rows = np.arange(len(labels))
        val_columns = read_table(val_path)
        val_labels, _ = parse_target(_require(val_columns, [target], val_path)[target],
                                     target, val_path, classes[1], expect=classes)
        val_parsed = parse_for_kinds(val_columns, kinds, val_path)
        split = split_note = "separate validation file"
        time_column = ""
    else:
        time_column, why = choose_time_column(config, kinds, path, parsed)
        train_rows, val_rows = split_rows(config, labels, columns, kinds, path, time_column)
        val_parsed = {name: values[val_rows] for name, values in parsed.items()}
        val_labels = labels[val_rows]
        split = "time-ordered split" if time_column else "stratified split"
        split_note = f"{split} by {time_column!r} ({why})" if time_column else f"{split} ({why})"
    train_parsed = {name: values[train_rows] for name, values in parsed.items()}
    train_labels = labels[train_rows]
    warn_overlap(list(zip(*train_parsed.values(), strict=True)),  # features: no id, no label
                 list(zip(*(val_parsed[name] for name in train_parsed), strict=True)), what="rows")
    if not val_labels.any():
        raise DataError(f"{val_path or path}: the validation rows have no positives "
                        f"({target} = {classes[1]}); raise data.val_fraction or add fraud rows")

    features = fit_features(train_parsed, kinds, config)
    train = encode_parsed(train_parsed, features)
    val = encode_parsed(val_parsed, features)
    features["normalization"] = _normalization(train.inputs.get("numeric"))
    method = choice(config, "imbalance.method", ("class_weight", "focal", "undersample", "none"))
    seed = int(get(config, "runtime.seed"))
    train_inputs, fit_labels = train.inputs, train_labels
    if method == "undersample":
        keep = undersample(train_labels, int(get(config, "imbalance.undersample_ratio")), seed)
        train_inputs = {key: value[keep] for key, value in train.inputs.items()}
        fit_labels = train_labels[keep]

    from .baseline import fit_logistic_regression

    positives = int(fit_labels.sum())
    rates = {"train": float(train_labels.mean()), "val": float(val_labels.mean())}
    meta: dict[str, Any] = {
        "source": str(path), "target": {"column": target, "negative": classes[0],
                                        "positive": classes[1]},
        "features": features, "dropped": dropped, "split": split,
        "time_column": "" if val_path else time_column,
        "rows": {"train": int(len(train_labels)), "val": int(len(val_labels))},
        "positive_rate": rates,
        "fit_positive_rate": positives / len(fit_labels),
        "pos_weight": pos_weight(config, fit_labels),
        "imbalance": method,
        "id_columns": [name for name, why in dropped.items() if why.startswith("identifier")],
        "report": report_settings(config),
        "baseline": fit_logistic_regression(train_inputs, fit_labels, features, seed=seed),
        "input_names": sorted(train.inputs),
    }
    meta["summary"] = (
        f"{len(features['numeric'])} numeric, {len(features['categorical'])} categorical "
        f"features from {path.name}; {split_note}; positive rate train {rates['train']:.3%}, "
        f"val {rates['val']:.3%}; imbalance: {method}"
        + (f" (fraud weight {meta['pos_weight']:.3g})" if method != "none" else ""))
    _print_data_notes(path, dropped, train, kinds)
    train_batches = Batches(train_inputs, _targets(fit_labels), batch_size, training=True,
                            seed=seed)
    val_batches = Batches(val.inputs, _targets(val_labels), batch_size, training=False)
    return Splits(train_batches, val_batches, meta)


def load_eval(config: Config, path: Path, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """Batches from another labelled table with the training run's encoding."""
    path = Path(path)
    if path.is_dir():
        path = only_table_in(path)
    columns = read_table(path)
    target = meta["target"]["column"]
    _require(columns, [target], path)
    labels, _ = parse_target(columns[target], target, path, meta["target"]["positive"],
                             expect=(meta["target"]["negative"], meta["target"]["positive"]))
    encoded = encode(columns, meta, path)
    report_fills(path, encoded)
    return Batches(encoded.inputs, _targets(labels), batch_size, training=False)


def load_validation(config: Config, meta: dict[str, Any], *, batch_size: int) -> Batches:
    """The run's validation rows, encoded with its saved encoding (for ``evaluate``).

    Nothing is learnt again: no vocabulary, fill value or scaling, and no baseline
    fit; the rows are the ones training held out (the same file, split and seed).
    """
    target = meta["target"]["column"]
    expect = (meta["target"]["negative"], meta["target"]["positive"])
    val_path = named_table(config, "data.val_path")
    path = val_path or table_path(config)
    columns = read_table(path, max_rows=0 if val_path else int(get(config, "data.max_rows")))
    labels, _ = parse_target(_require(columns, [target], path)[target], target, path, expect[1],
                             expect=expect)
    if not val_path:
        kinds = meta["features"]["kinds"]
        time_column = str(meta["time_column"]) if "time_column" in meta else \
            choose_time_column(config, kinds, path)[0]
        _, rows = split_rows(config, labels, columns, kinds, path, time_column)
        columns = {name: values[rows] for name, values in columns.items()}
        labels = labels[rows]
    encoded = encode(columns, meta, path)
    report_fills(path, encoded)
    return Batches(encoded.inputs, _targets(labels), batch_size, training=False)


def encode(columns: dict[str, np.ndarray], meta: dict[str, Any], path: Path) -> Encoded:
    """Model inputs for raw ``columns`` (a read_table result) with a run's saved encoding."""
    kinds = meta["features"]["kinds"]
    encoded = encode_parsed(parse_for_kinds(columns, kinds, path), meta["features"])
    encoded.ids = {name: columns[name] for name in meta.get("id_columns", []) if name in columns}
    return encoded


# --------------------------------------------------------------------------- reading


def table_path(config: Config) -> Path:
    """``data.path`` when set, else the only CSV/Parquet file in ``data.dir``."""
    return named_table(config, "data.path") or only_table_in(Path(get(config, "data.dir")))


def named_table(config: Config, key: str) -> Path | None:
    """The file ``key`` (data.path, data.val_path) names; None when it is "".

    An absolute path, or one that exists from the working folder, is used as given;
    a bare name is looked up in ``data.dir``. A set ``data.path`` replaces the
    search of ``data.dir``, so it must exist: it is never silently passed over.
    """
    named = str(get(config, key))
    if not named:
        return None
    path = Path(named)
    if not path.is_absolute() and not path.exists():
        path = Path(get(config, "data.dir")) / named
    if not path.is_file():
        raise DataError(f"{key} = {named!r}: no such file here or in data.dir "
                        f"{get(config, 'data.dir')!r} (set {key} = \"\" to use the only table "
                        "in data.dir)")
    return path


def only_table_in(folder: Path) -> Path:
    """The single .csv/.parquet file in ``folder``."""
    if not folder.is_dir():
        raise DataError(f"data directory {folder} does not exist (set data.dir or data.path)")
    tables = sorted(p for p in folder.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
    if len(tables) != 1:
        found = ", ".join(p.name for p in tables) or "none"
        raise DataError(f"{folder} must hold exactly one .csv or .parquet file (found {found}); "
                        "set data.path to pick one")
    return tables[0]


def read_table(path: Path, max_rows: int = 0) -> dict[str, np.ndarray]:
    """Columns of a CSV or Parquet file: text as numpy strings, Parquet numbers as float64."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path, max_rows)
    if path.suffix.lower() != ".csv":
        raise DataError(f"{path}: expected a .csv or .parquet file")
    with open_table(path, delimiter=",") as table:
        header = table.header
        _check_header(header, path)
        rows = table.rows()
        chunks: list[list[np.ndarray]] = []
        count = 0
        while not max_rows or count < max_rows:
            take = CHUNK_ROWS if not max_rows else min(CHUNK_ROWS, max_rows - count)
            chunk = [row for _, row in itertools.islice(rows, take)]
            if not chunk:
                break
            count += len(chunk)
            chunks.append([np.array(col, dtype=str) for col in zip(*chunk, strict=True)])
    if not chunks:
        raise DataError(f"{path} has a header but no rows")
    return {name: np.concatenate([chunk[i] for chunk in chunks]).astype(str)
            for i, name in enumerate(header)}


def _read_parquet(path: Path, max_rows: int) -> dict[str, np.ndarray]:
    if importlib.util.find_spec("pyarrow") is None:
        raise DataError(f"reading {path} needs pyarrow, which is not installed "
                        "(pip install pyarrow, or convert the file to CSV)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path} is not a readable Parquet file: {err}") from None
    if max_rows:
        table = table.slice(0, max_rows)
    if table.num_rows == 0:
        raise DataError(f"{path} has no rows")
    _check_header(table.column_names, path)
    columns: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            columns[name] = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False),
                                       dtype=np.float64)
        else:
            values = column.cast(pa.string()).to_pylist()
            columns[name] = np.array(["" if v is None else v for v in values], dtype=str)
    return columns


def _check_header(header: list[str], path: Path) -> None:
    seen: set[str] = set()
    for index, name in enumerate(header):
        if not name:
            raise DataError(f"{path}: column {index + 1} has no name in the header")
        if name in seen:
            raise DataError(f"{path}: column name {name!r} appears twice in the header")
        seen.add(name)


def _require(columns: dict[str, np.ndarray], names: list[str], path: Path
             ) -> dict[str, np.ndarray]:
    missing = [name for name in names if name not in columns]
    if missing:
        raise DataError(f"{path} has no column {', '.join(missing)} "
                        f"(its columns: {', '.join(list(columns)[:20])})")
    return columns


# --------------------------------------------------------------------------- target


def target_column(config: Config, columns: dict[str, np.ndarray], path: Path) -> str:
    """data.target; the public credit-card schema's ``Class`` when the default is absent."""
    target = str(get(config, "data.target"))
    if target in columns:
        return target
    if target == "is_fraud" and all(name in columns for name in CREDITCARD_SCHEMA):
        return "Class"
    raise DataError(f"{path} has no target column {target!r} (set data.target; "
                    f"columns: {', '.join(list(columns)[:20])})")


def parse_target(values: np.ndarray, name: str, path: Path, positive: str,
                 expect: tuple[str, str] | None = None) -> tuple[np.ndarray, tuple[str, str]]:
    """0/1 labels and the (negative, positive) values of a binary target column."""
    text = _canonical_text(values)
    missing = _missing_mask(text)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"{path}: target column {name!r} is empty on {int(missing.sum())} row(s), "
                        f"first on data row {row + 1}")
    distinct = list(np.unique(text))
    if expect is not None:
        unknown = [v for v in distinct if v not in expect]
        if unknown:
            raise DataError(f"{path}: target column {name!r} has values {unknown[:5]} that the "
                            f"model was not trained on (expected {expect[0]!r} or {expect[1]!r})")
        return (text == expect[1]).astype(np.int8), expect
    if len(distinct) > 2:
        shown = ", ".join(repr(v) for v in distinct[:6])
        raise DataError(f"{path}: target column {name!r} is not binary: {len(distinct)} values "
                        f"({shown}{', ...' if len(distinct) > 6 else ''})")
    if positive != "auto":
        if positive not in distinct:
            raise DataError(f"{path}: data.positive_class {positive!r} never occurs in target "
                            f"column {name!r} (values: {', '.join(map(repr, distinct))})")
        if len(distinct) == 1:
            raise DataError(f"{path}: target column {name!r} has no negatives "
                            f"(every row is {positive!r})")
    elif len(distinct) == 1:
        raise DataError(f"{path}: target column {name!r} has no positives "
                        f"(every row is {distinct[0]!r}); fraud detection needs both classes")
    else:
        known = [v for v in distinct if v.lower() in POSITIVE_NAMES]
        if len(known) == 1:
            positive = known[0]
        else:
            counts = {v: int(np.sum(text == v)) for v in distinct}
            positive = min(distinct, key=lambda v: (counts[v], v))
            print(f"note: {path}: treating the rarer value {positive!r} of {name!r} as fraud "
                  "(set data.positive_class to choose)")
    negative = next(v for v in distinct if v != positive)
    return (text == positive).astype(np.int8), (negative, positive)


def _canonical_text(values: np.ndarray) -> np.ndarray:
    """Strings with numbers written one way (1, 1.0 and '1' are the same label)."""
    if values.dtype.kind == "f":
        return np.array(["" if np.isnan(v) else f"{v:g}" for v in values], dtype=str)
    distinct, inverse = np.unique(np.char.strip(values.astype(str)), return_inverse=True)
    numbers = _try_float(distinct[~_missing_mask(distinct)])
    if numbers is not None:
        distinct = np.array([v if _missing_mask(np.array([v]))[0] else f"{float(v):g}"
                             for v in distinct.tolist()], dtype=str)
    return distinct[inverse]


# --------------------------------------------------------------------------- column kinds


def infer_kinds(columns: dict[str, np.ndarray], config: Config, path: Path, target: str
                ) -> tuple[dict[str, str], dict[str, str]]:
    """Each feature column's kind (numeric, boolean, timestamp, categorical); dropped ones."""
    forced_numeric = set(get(config, "data.numeric"))
    forced_categorical = set(get(config, "data.categorical"))
    drop = set(get(config, "data.drop"))
    for key, names in (("data.numeric", forced_numeric), ("data.categorical", forced_categorical),
                       ("data.drop", drop)):
        unknown = sorted(names - set(columns))
        if unknown:
            raise DataError(f"{key} names column(s) {unknown} that {path} does not have")
    time_column = str(get(config, "data.time_column"))
    if time_column and time_column not in columns:
        raise DataError(f"{path} has no time column {time_column!r} (data.time_column)")
    id_fraction = float(get(config, "data.id_fraction"))
    keep_ids = set(get(config, "data.keep_ids"))
    unknown_kept = sorted(keep_ids - set(columns))
    if unknown_kept:
        raise DataError(f"data.keep_ids names column(s) {unknown_kept} that {path} does not have")
    kinds: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name, values in columns.items():
        if name == target:
            continue
        if name in drop:
            dropped[name] = "listed in data.drop"
        elif name in forced_numeric:
            kinds[name] = "numeric"
        elif name in forced_categorical:
            kinds[name] = "categorical"
        else:
            kind = _infer_kind(values, name, path)
            why = None if name in keep_ids or name == time_column else \
                _identifier_reason(name, values, kind, id_fraction)
            if why:
                dropped[name] = f"identifier ({why})"
            elif kind == "constant":
                dropped[name] = "constant (one value on every row)"
            else:
                kinds[name] = kind
    if time_column in kinds and kinds[time_column] not in ("numeric", "timestamp"):
        raise DataError(f"{path}: data.time_column {time_column!r} holds neither numbers nor "
                        "timestamps")
    if time_column and time_column not in kinds:
        kinds[time_column] = "time_only"  # used to order rows, not as a feature
    if not any(kind != "time_only" for kind in kinds.values()):
        raise DataError(f"{path} has no feature columns besides the target {target!r}")
    return kinds, dropped


def _infer_kind(values: np.ndarray, name: str, path: Path) -> str:
    if values.dtype.kind == "f":
        present = values[~np.isnan(values)]
        return "constant" if len(np.unique(present)) <= 1 else "numeric"
    text = np.char.strip(values)
    present = text[~_missing_mask(text)]
    numbers = _try_float(present)
    if numbers is not None:  # the common case, decided without sorting the column
        return "constant" if len(numbers) == 0 or np.ptp(numbers) == 0 else "numeric"
    distinct = np.unique(present)
    if len(distinct) <= 1:
        return "constant"
    sample = distinct[:: max(1, len(distinct) // 500)]
    numeric_share = np.mean([_is_number(v) for v in sample])
    if numeric_share == 1.0 and _try_float(distinct) is not None:
        return "numeric"
    if numeric_share >= 0.9:
        bad = [v for v in distinct if not _is_number(v)]
        row = int(np.flatnonzero(text == bad[0])[0])
        raise DataError(f"{path}: column {name!r} is numeric but has {len(bad)} non-numeric "
                        f"value(s) such as {bad[0]!r} on data row {row + 1} (fix them, or list "
                        f"the column in data.categorical)")
    if all(v.lower() in BOOLEAN_VALUES for v in distinct):
        return "boolean"
    if _is_timestamp(sample):
        return "timestamp"
    return "categorical"


def _identifier_reason(name: str, values: np.ndarray, kind: str, id_fraction: float
                       ) -> str | None:
    """Why a column is an identifier (not a feature), or None.

    An id-like name (``customer_id``: embedding it memorises customers seen in
    training), text with a distinct value on most rows, or whole numbers that never
    repeat. Time-like names are left alone: they order the split.
    """
    if kind not in ("categorical", "numeric") or TIME_NAME.search(name):
        return None
    if ID_NAME.search(name):
        return "named like an id"
    if kind == "categorical":
        distinct = len(np.unique(values))
        if distinct > 100 and distinct > id_fraction * len(values):
            return "a distinct value on most rows"
        return None
    numbers = values.astype(np.float64) if values.dtype.kind == "f" else _try_float(
        np.char.strip(values)[~_missing_mask(np.char.strip(values))])
    if numbers is None or len(numbers) <= 100 or np.isnan(numbers).any():
        return None
    if np.all(numbers == np.round(numbers)) and len(np.unique(numbers)) == len(numbers):
        return "a whole number that never repeats"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_timestamp(sample: np.ndarray) -> bool:
    if not all(re.match(r"^\d{4}-\d{2}-\d{2}", v) for v in sample[:200]):
        return False
    try:
        _to_datetime(sample)
    except ValueError:
        return False
    return True


def _to_datetime(text: np.ndarray) -> np.ndarray:
    # numpy reads ISO 8601 without a zone; a trailing Z (UTC) is dropped.
    text = np.char.strip(text)
    if np.char.endswith(text, "Z").any():
        text = np.char.rstrip(text, "Z")
    return text.astype("datetime64[s]")


# --------------------------------------------------------------------------- parsing


def parse_column(values: np.ndarray, kind: str, name: str, path: Path) -> np.ndarray:
    """float64 (NaN where missing) for numeric kinds, stripped strings for categorical."""
    if kind == "categorical":
        text = np.char.strip(values.astype(str)) if values.dtype.kind != "f" else \
            np.array(["" if np.isnan(v) else f"{v:g}" for v in values], dtype=str)
        return np.where(_missing_mask(text), "", text)
    if values.dtype.kind == "f":
        return values.astype(np.float64)
    text = np.char.strip(values)
    missing = _missing_mask(text)
    out = np.full(len(text), np.nan)
    present = text[~missing]
    if kind in ("numeric", "time_only"):
        numbers = _try_float(present)
        if numbers is None and kind == "time_only":
            try:
                numbers = _to_datetime(present).astype(np.int64).astype(np.float64)
            except ValueError:
                numbers = None
        if numbers is None:
            bad = next(v for v in np.unique(present) if not _is_number(v))
            row = int(np.flatnonzero(text == bad)[0])
            raise DataError(f"{path}: column {name!r} must be numeric but has the value {bad!r} "
                            f"on data row {row + 1}")
        out[~missing] = numbers
    elif kind == "boolean":
        distinct, inverse = np.unique(present, return_inverse=True)
        unknown = [v for v in distinct.tolist() if v.lower() not in BOOLEAN_VALUES]
        if unknown:
            raise DataError(f"{path}: column {name!r} is boolean but has the value {unknown[0]!r}")
        out[~missing] = np.array([BOOLEAN_VALUES[v.lower()] for v in distinct.tolist()])[inverse]
    elif kind == "timestamp":
        try:
            out[~missing] = _to_datetime(present).astype(np.int64).astype(np.float64)
        except ValueError as err:
            raise DataError(f"{path}: column {name!r} holds timestamps but {err}") from None
    else:
        raise DataError(f"unknown column kind {kind!r} for {name!r}")
    out[~np.isfinite(out)] = np.nan
    return out


def parse_for_kinds(columns: dict[str, np.ndarray], kinds: dict[str, str], path: Path
                    ) -> dict[str, np.ndarray]:
    """Parse the columns a trained model uses; a missing column is an error naming the file."""
    needed = [name for name, kind in kinds.items() if kind != "time_only"]
    _require(columns, needed, path)
    return {name: parse_column(columns[name], kinds[name], name, path) for name in needed}


def _missing_mask(text: np.ndarray) -> np.ndarray:
    if text.dtype.kind == "f":
        return np.isnan(text)
    return np.isin(text, MISSING_VARIANTS)


def _try_float(text: np.ndarray) -> np.ndarray | None:
    try:
        return text.astype(np.float64)
    except ValueError:
        return None


# --------------------------------------------------------------------------- split


def choose_time_column(config: Config, kinds: dict[str, str], path: Path,
                       parsed: dict[str, np.ndarray] | None = None) -> tuple[str, str]:
    """The column that orders the split ("" for a stratified random one) and why.

    data.split = "auto" splits by time whenever there is a time column: data.time_column,
    else the first timestamp column (time-like names first), else a numeric column
    named like time (time, timestamp, event_time, created_at), skipping one with empty
    cells (``parsed`` columns, NaN where missing). A random split of timestamped
    fraud puts one card-testing burst on both sides of the split.
    """
    mode = choice(config, "data.split", ("auto", "time", "random"))
    named = str(get(config, "data.time_column"))
    if mode == "random":
        return "", 'data.split = "random"'
    if named:
        return named, f"data.time_column = {named!r}"
    found = ([n for n, k in kinds.items() if k == "timestamp" and TIME_NAME.search(n)]
             + [n for n, k in kinds.items() if k == "timestamp"]
             + [n for n, k in kinds.items() if k == "numeric" and TIME_NAME.search(n)])
    complete = [n for n in found if parsed is None or not np.isnan(parsed[n]).any()]
    if complete:
        return complete[0], 'found automatically; data.split = "random" for a shuffled split'
    gappy = f"time column {found[0]!r} has empty cells" if found else "no time column found"
    if mode == "time":
        raise DataError(f"{path}: data.split = \"time\" but {gappy} (set data.time_column)")
    return "", f"{gappy}; set data.time_column to split by time"


def split_rows(config: Config, labels: np.ndarray, columns: dict[str, np.ndarray],
               kinds: dict[str, str], path: Path, time_column: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices: the latest rows by ``time_column``, else stratified."""
    fraction = float(get(config, "data.val_fraction"))
    if not 0.0 < fraction < 1.0:
        raise DataError(f"data.val_fraction must be between 0 and 1, got {fraction}")
    if not time_column:
        train, val = stratified_split(labels, fraction, int(get(config, "runtime.seed")))
        return train, val
    kind = "time_only" if kinds[time_column] == "time_only" else kinds[time_column]
    times = parse_column(columns[time_column], kind, time_column, path)
    if np.isnan(times).any():
        raise DataError(f"{path}: time column {time_column!r} is empty on "
                        f"{int(np.isnan(times).sum())} row(s)")
    order = np.argsort(times, kind="stable")
    cut = len(order) - max(1, round(len(order) * fraction))
    train, val = order[:cut], order[cut:]
    if not labels[train].any():
        raise DataError(f"{path}: no positives before the time split; lower data.val_fraction")
    return np.sort(train), np.sort(val)


def undersample(labels: np.ndarray, ratio: int, seed: int) -> np.ndarray:
    """All positive rows and ``ratio`` random negatives per positive, in random order."""
    if ratio < 1:
        raise DataError(f"imbalance.undersample_ratio must be at least 1, got {ratio}")
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    keep = rng.choice(negatives, size=min(len(negatives), ratio * len(positives)), replace=False)
    return np.sort(np.concatenate([positives, keep]))


# --------------------------------------------------------------------------- features


def fit_features(parsed: dict[str, np.ndarray], kinds: dict[str, str], config: Config
                 ) -> dict[str, Any]:
    """Fill values, log flags, vocabularies: everything ``encode_parsed`` needs, from train rows."""
    impute = choice(config, "data.impute", ("median", "mean", "zero"))
    log_mode = choice(config, "data.log_transform", ("auto", "none"))
    max_categories = int(get(config, "data.max_categories"))
    min_count = int(get(config, "data.min_category_count"))
    numeric: list[dict[str, Any]] = []
    categorical: list[dict[str, Any]] = []
    for name, kind in kinds.items():
        if kind == "time_only":
            continue
        values = parsed[name]
        if kind == "categorical":
            present = values[values != ""]
            vocab, counts = np.unique(present, return_counts=True)
            order = np.lexsort((vocab, -counts))
            keep = [str(vocab[i]) for i in order[:max_categories] if counts[i] >= min_count]
            categorical.append({"name": name, "input": _input_name(name), "vocabulary": keep})
            continue
        sources = [("", values)] if kind != "timestamp" else [
            ("_hour", _hour(values)), ("_dayofweek", _day_of_week(values))]
        for suffix, column in sources:
            present = column[~np.isnan(column)]
            if len(present) == 0:
                continue
            fill = (np.median(present) if impute == "median"
                    else np.mean(present) if impute == "mean" else 0.0)
            log = (log_mode == "auto" and kind == "numeric" and present.min() >= 0
                   and np.quantile(present, 0.999) > 10 * max(np.median(present), 1e-6))
            numeric.append({"name": name + suffix, "column": name, "kind": kind,
                            "derive": suffix.lstrip("_"), "fill": float(fill), "log": bool(log),
                            "missing_flag": bool(np.isnan(column).any())})
    return {"kinds": kinds, "numeric": numeric, "categorical": categorical}


def encode_parsed(parsed: dict[str, np.ndarray], features: dict[str, Any]) -> Encoded:
    """Model inputs from parsed columns: imputed numeric matrix and category ids."""
    blocks: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    missing: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for spec in features["numeric"]:
        column = parsed[spec["column"]]
        if spec["derive"] == "hour":
            column = _hour(column)
        elif spec["derive"] == "dayofweek":
            column = _day_of_week(column)
        gone = np.isnan(column)
        if gone.any():
            missing[spec["name"]] = int(gone.sum())
        column = np.where(gone, spec["fill"], column)
        if spec["log"]:
            column = np.log1p(np.maximum(column, 0.0))
        blocks.append(column)
        if spec["missing_flag"]:
            flags.append(gone.astype(np.float64))
    inputs: dict[str, np.ndarray] = {}
    if blocks:
        inputs["numeric"] = np.stack(blocks + flags, axis=1).astype(np.float32)
    for spec in features["categorical"]:
        values = parsed[spec["name"]]
        ids, gone, new = category_ids(values, spec["vocabulary"])
        if gone:
            missing[spec["name"]] = gone
        if new:
            unknown[spec["name"]] = new
        inputs[spec["input"]] = ids[:, None]
    return Encoded(inputs, None, missing, unknown)


def category_ids(values: np.ndarray, vocabulary: list[str]) -> tuple[np.ndarray, int, int]:
    """int32 ids (0 missing, 1 unknown/rare, 2.. vocabulary) and the missing/unknown counts."""
    ids = np.full(len(values), OOV_ID, dtype=np.int32)
    if vocabulary:
        vocab = np.array(vocabulary, dtype=str)
        order = np.argsort(vocab)
        position = np.clip(np.searchsorted(vocab[order], values), 0, len(vocab) - 1)
        found = vocab[order][position] == values
        ids[found] = order[position[found]] + 2
    empty = values == ""
    ids[empty] = MISSING_ID
    unknown = int(np.sum(ids == OOV_ID))
    return ids, int(empty.sum()), unknown


def feature_names(features: dict[str, Any]) -> list[str]:
    """Names of the columns of the ``numeric`` input, flags last."""
    names = [spec["name"] for spec in features["numeric"]]
    return names + [f"{s['name']}_missing" for s in features["numeric"] if s["missing_flag"]]


def _hour(seconds: np.ndarray) -> np.ndarray:
    return (seconds % 86_400) / 3600.0


def _day_of_week(seconds: np.ndarray) -> np.ndarray:
    return (np.floor(seconds / 86_400) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0


def _input_name(column: str) -> str:
    return "cat_" + re.sub(r"[^0-9A-Za-z_]", "_", column)


def _normalization(numeric: np.ndarray | None) -> dict[str, list[float]]:
    if numeric is None:
        return {"mean": [], "variance": []}
    variance = numeric.var(axis=0, dtype=np.float64)
    return {"mean": numeric.mean(axis=0, dtype=np.float64).tolist(),
            "variance": np.where(variance > 1e-12, variance, 1.0).tolist()}


# --------------------------------------------------------------------------- the rest


def pos_weight(config: Config, labels: np.ndarray) -> float:
    """Weight of a positive row: imbalance.pos_weight, or negatives / positives."""
    asked = get(config, "imbalance.pos_weight")
    positives = max(1, int(labels.sum()))
    if asked == "auto":
        return float((len(labels) - positives) / positives)
    if isinstance(asked, bool) or not isinstance(asked, (int, float)) or asked <= 0:
        raise DataError(f"imbalance.pos_weight must be 'auto' or a positive number, got {asked!r}")
    return float(asked)


def report_settings(config: Config) -> dict[str, Any]:
    """The [report] settings, kept in meta so evaluate uses the training run's choices."""
    levels = {key: [float(v) for v in get(config, f"report.{key}")]
              for key in ("precision_levels", "recall_levels")}
    for key, values in levels.items():
        if not all(0.0 < v <= 1.0 for v in values):
            raise DataError(f"report.{key} must be numbers in (0, 1], got {values}")
    return {"threshold": choice(config, "report.threshold", ("f1", "cost")),
            "cost_missed_fraud": float(get(config, "report.cost_missed_fraud")),
            "cost_false_alarm": float(get(config, "report.cost_false_alarm")), **levels}


def report_fills(path: Path, encoded: Encoded) -> None:
    """Print what was imputed or mapped to out-of-vocabulary, per column."""
    if encoded.missing:
        print(f"{path}: imputed missing values: " +
              ", ".join(f"{k} {v}" for k, v in encoded.missing.items()))
    if encoded.unknown:
        print(f"{path}: unknown or rare categories (out-of-vocabulary): " +
              ", ".join(f"{k} {v}" for k, v in encoded.unknown.items()))


def _print_data_notes(path: Path, dropped: dict[str, str], train: Encoded,
                      kinds: dict[str, str]) -> None:
    ids = [name for name, why in dropped.items() if why.startswith("identifier")]
    if ids:
        print(f"note: identifiers, not features (kept for predict's output): {', '.join(ids)} "
              "(list one in data.keep_ids to use it as a feature)")
    others = {k: v for k, v in dropped.items() if k not in ids}
    if others:
        print("not features: " + "; ".join(f"{k} ({v})" for k, v in others.items()))
    print("features: " + ", ".join(f"{k} ({v})" for k, v in kinds.items() if v != "time_only"))
    report_fills(path, train)


def _targets(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.float32)[:, None]
