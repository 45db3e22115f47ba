"""``python -m PACKAGE predict``: score every row of CSV/Parquet tables.

Each input gets ``<stem>.scores.csv`` with the row number, the identifier
columns (e.g. transaction_id), the fraud score and the decision
(``score >= threshold``, the threshold train chose on validation data and saved
in RUN/metrics.json). The table is encoded exactly as in training (RUN/meta.json):
missing values are imputed and unknown categories mapped to out-of-vocabulary,
and both are counted and printed, per column. The target column is not needed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import rundir
from .config import get, load_config
from .csv_out import write_csv
from .data import TABLE_SUFFIXES, encode, read_table, report_fills
from .errors import DataError, RunDirError


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Score every input table; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])  # predict --set KEY=VALUE
    meta = rundir.read_meta(run)
    threshold = saved_threshold(run)
    tables = _expand(inputs)
    out = rundir.output_folder(run, out)
    net = rundir.load_model(rundir.model_checkpoint(run))
    batch_size = int(get(config, "predict.batch_size"))
    for table in tables:
        encoded = encode(read_table(table), meta, table)
        started = time.perf_counter()
        scores = np.asarray(net.predict(encoded.inputs, batch_size=batch_size, verbose=0),
                            dtype=np.float64).reshape(-1)
        seconds = time.perf_counter() - started
        decisions = scores >= threshold
        target = out / f"{table.stem}.scores.csv"
        _write(target, encoded.ids, scores, decisions)
        report_fills(table, encoded)
        print(f"{table}: {len(scores):,} rows scored in {seconds:.2f} s "
              f"({len(scores) / max(seconds, 1e-9):,.0f} rows/s), {int(decisions.sum()):,} "
              f"flagged at threshold {threshold:.4f} -> {target}")
    return out


def saved_threshold(run: rundir.RunDir) -> float:
    """The decision threshold train chose on validation data."""
    final = run.read_metrics().get("final", {})
    value = final.get("threshold") if isinstance(final, dict) else None
    if value is None:
        raise RunDirError(f"{run.metrics} has no decision threshold; the run did not finish "
                          "training (train again, or --resume it)")
    if type(value) not in (int, float) or not 0.0 <= value <= 1.0:
        raise RunDirError(f"{run.metrics}: final.threshold must be a number from 0 to 1")
    return float(value)


def _expand(inputs: list[Path]) -> list[Path]:
    tables: list[Path] = []
    for path in inputs:
        if path.is_dir():
            tables += sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)
        elif not path.exists():
            raise DataError(f"input {path} does not exist")
        elif path.suffix.lower() in TABLE_SUFFIXES:
            tables.append(path)
        else:
            raise DataError(f"{path}: not a table ({', '.join(TABLE_SUFFIXES)})")
    if not tables:
        raise DataError("no .csv or .parquet files found in the inputs")
    return tables


def _write(path: Path, ids: dict[str, np.ndarray], scores: np.ndarray, decisions: np.ndarray
           ) -> None:
    id_columns = [column.tolist() for column in ids.values()]
    rows = ([index + 1, *(column[index] for column in id_columns),
             repr(score), int(decisions[index])]  # exact: ties decide
            for index, score in enumerate(scores.tolist()))
    write_csv(path, ["row", *ids, "score", "decision"], rows)
