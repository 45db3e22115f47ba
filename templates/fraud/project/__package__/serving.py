"""A SavedModel that scores raw rows: ``python -m PACKAGE export --format saved_model``.

The trained Keras model takes encoded inputs (a float matrix and category ids)
so that it runs on TensorFlow and JAX alike. For serving, this module wraps it
in a TensorFlow graph that does what ``data.encode`` does in numpy, from the
values exactly as they appear in a CSV file:

    one string tensor per raw column  ->  parse numbers / booleans / timestamps,
    impute (training fill value + missing flag), log1p, hour / day of week,
    category lookup (0 missing, 1 unknown)  ->  model  ->  score, decision

The endpoint ``serve`` (also the ``serving_default`` signature) takes a dict
``{column: tf.string[batch]}`` for the columns listed in ``columns.json`` next
to the SavedModel, and returns ``score`` (float32) and ``decision`` (int32,
``score >= threshold``, the threshold train chose on validation data).
Everything comes from RUN/meta.json, so the export and ``predict`` agree (a
test checks they give the same scores).

Why not a Keras FeatureSpace: it runs on tf.data, which JAX-only machines
(such as the GPU hosts) do not have; the numpy encoding trains anywhere and
this graph reproduces it for TensorFlow Serving.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import keras

from . import rundir
from .data import BOOLEAN_VALUES, MISSING_ID, MISSING_VARIANTS, OOV_ID
from .predict import saved_threshold

ENDPOINT = "serve"
COLUMNS_FILE = "columns.json"


def export_saved_model(net: keras.Model, run: rundir.RunDir, target: Path) -> None:
    """Write a SavedModel at ``target`` whose ``serve`` endpoint scores raw string columns."""
    import tensorflow as tf  # only here: export needs the TensorFlow backend anyway

    meta = rundir.read_meta(run)
    features = meta["features"]
    threshold = saved_threshold(run)
    columns = sorted(name for name, kind in features["kinds"].items() if kind != "time_only")
    keys = _signature_keys(columns)
    tables = {spec["name"]: _vocabulary_table(tf, spec["vocabulary"])
              for spec in features["categorical"]}

    def serve(raw: dict[str, Any]) -> dict[str, Any]:
        values = {column: tf.strings.strip(raw[keys[column]]) for column in columns}
        inputs = encode_graph(tf, values, features, tables)
        score = tf.reshape(tf.cast(net(inputs, training=False), tf.float32), [-1])
        return {"score": score, "decision": tf.cast(score >= threshold, tf.int32)}

    archive = keras.export.ExportArchive()
    archive.track(net)
    for table in tables.values():
        archive.track(table)
    signature = {keys[c]: tf.TensorSpec([None], tf.string, name=keys[c]) for c in columns}
    archive.add_endpoint(ENDPOINT, serve, input_signature=[signature])
    archive.write_out(str(target), verbose=False)
    (target / COLUMNS_FILE).write_text(json.dumps(
        {"columns": keys, "threshold": threshold, "id_columns": meta.get("id_columns", [])},
        indent=2) + "\n", encoding="utf-8")


def encode_graph(tf: Any, values: dict[str, Any], features: dict[str, Any],
                 tables: dict[str, Any]) -> dict[str, Any]:
    """TensorFlow twin of ``data.encode_parsed`` for stripped string columns."""
    missing = {name: _is_missing(tf, text) for name, text in values.items()}
    parsed: dict[str, Any] = {}
    blocks, flags = [], []
    for spec in features["numeric"]:
        column = spec["column"]
        if column not in parsed:
            parsed[column] = _parse_number(tf, values[column], missing[column],
                                           features["kinds"][column])
        number = parsed[column]
        if spec["derive"] == "hour":
            number = tf.math.floormod(number, 86_400.0) / 3600.0
        elif spec["derive"] == "dayofweek":
            number = tf.math.floormod(tf.math.floor(number / 86_400.0) + 3.0, 7.0)
        gone = tf.math.is_nan(number)
        number = tf.where(gone, tf.constant(spec["fill"], tf.float64), number)
        if spec["log"]:
            number = tf.math.log1p(tf.maximum(number, 0.0))
        blocks.append(number)
        if spec["missing_flag"]:
            flags.append(tf.cast(gone, tf.float64))
    inputs: dict[str, Any] = {}
    if blocks:
        inputs["numeric"] = tf.cast(tf.stack(blocks + flags, axis=1), tf.float32)
    for spec in features["categorical"]:
        text = values[spec["name"]]
        ids = tables[spec["name"]].lookup(text)
        ids = tf.where(missing[spec["name"]], tf.constant(MISSING_ID, tf.int32), ids)
        inputs[spec["input"]] = tf.expand_dims(ids, 1)
    return inputs


def _parse_number(tf: Any, text: Any, missing: Any, kind: str) -> Any:
    """float64 with NaN where missing or not finite, as ``data.parse_column``."""
    safe = tf.where(missing, "0", text)
    if kind == "boolean":
        lowered = tf.strings.lower(safe)
        number = tf.zeros_like(safe, tf.float64)
        for word, value in BOOLEAN_VALUES.items():
            number = tf.where(lowered == word, tf.constant(value, tf.float64), number)
        known = tf.reduce_any(tf.stack([lowered == w for w in BOOLEAN_VALUES] + [missing]), 0)
        tf.debugging.assert_equal(known, True, message="a boolean column has another value")
    elif kind == "timestamp":
        number = _iso_seconds(tf, tf.where(missing, "1970-01-01", text))
    else:
        number = tf.strings.to_number(safe, tf.float64)
    number = tf.where(missing, tf.constant(float("nan"), tf.float64), number)
    return tf.where(tf.math.is_finite(number), number, float("nan"))


def _iso_seconds(tf: Any, text: Any) -> Any:
    """Seconds since 1970 for ``YYYY-MM-DD[T| ]HH:MM[:SS[.fff]][Z]`` (UTC, as numpy reads it)."""
    padded = text + " " * 19  # substr fails past the end of a short (date-only) string

    def part(start: int, length: int, default: str) -> Any:
        piece = tf.strings.strip(tf.strings.substr(padded, start, length))
        return tf.strings.to_number(tf.where(piece == "", default, piece), tf.float64)

    year, month, day = part(0, 4, "1970"), part(5, 2, "1"), part(8, 2, "1")
    seconds = part(11, 2, "0") * 3600.0 + part(14, 2, "0") * 60.0 + part(17, 2, "0")
    # Days from the civil date (H. Hinnant's algorithm), so no calendar library is needed.
    y = year - tf.cast(month <= 2, tf.float64)
    era = tf.math.floor(y / 400.0)
    yoe = y - era * 400.0
    mp = tf.math.floormod(month + 9.0, 12.0)
    doy = tf.math.floor((153.0 * mp + 2.0) / 5.0) + day - 1.0
    doe = yoe * 365.0 + tf.math.floor(yoe / 4.0) - tf.math.floor(yoe / 100.0) + doy
    days = era * 146_097.0 + doe - 719_468.0
    return days * 86_400.0 + seconds


def _is_missing(tf: Any, text: Any) -> Any:
    return tf.reduce_any(tf.stack([text == token for token in MISSING_VARIANTS]), 0)


def _vocabulary_table(tf: Any, vocabulary: list[str]) -> Any:
    """String -> category id: 2.. in vocabulary order, OOV_ID for anything else."""
    keys = tf.constant(vocabulary or [""], tf.string)
    ids = tf.constant(list(range(2, len(vocabulary) + 2)) or [OOV_ID], tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, ids),
                                     default_value=OOV_ID)


def _signature_keys(columns: list[str]) -> dict[str, str]:
    """SavedModel input names for columns (letters, digits, ``_ . -`` only; unique)."""
    keys: dict[str, str] = {}
    for column in columns:
        key = re.sub(r"[^0-9A-Za-z_.\-]", "_", column)
        key = key if key[:1].isalnum() else "c" + key
        while key in keys.values():
            key += "_"
        keys[column] = key
    return keys
