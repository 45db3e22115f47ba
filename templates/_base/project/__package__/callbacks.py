"""Keras callbacks that keep the run directory up to date after every epoch."""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .errors import ConfigError, RunDirError
from .rundir import RunDir, atomic_save_model, atomic_write_json, atomic_write_text
from .strategy import no_distribution


class RunRecorder(keras.callbacks.Callback):
    """Writes last/best checkpoints, history.csv and metrics.json after each epoch.

    Files are renamed into place, so a killed process leaves the previous
    complete version. A NaN or infinite loss stops training *without* saving, so
    the last good checkpoint survives (Keras' TerminateOnNaN would let a backup
    be overwritten or deleted).

    Mid-epoch, ``last.keras`` is also saved every ``every_steps`` steps and when
    ``request_stop()`` is called (the SIGTERM and Ctrl-C handlers do): ``--resume``
    then starts that epoch again from those weights and optimizer state, so the
    epochs in history.csv stay complete and unique. A stop requested while the
    validation pass runs takes effect at the end of that epoch (``stopped_at`` step 0).
    """

    def __init__(self, run: RunDir, *, monitor: str, mode: str, epochs: int,
                 is_chief: bool = True, every_steps: int = 0) -> None:
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.mode = mode
        self.epochs = epochs
        self.is_chief = is_chief
        self.every_steps = every_steps
        previous = run.read_metrics()
        self.rows: list[dict[str, Any]] = _read_history(run)
        self.best: dict[str, Any] = previous.get("best", {})
        self.nan_epoch: int | None = None
        self.stop_requested = False
        self.stop_reason = ""  # what asked to stop ("SIGTERM", "Ctrl-C")
        self.stopped_at: tuple[int, int] | None = None  # (epoch, step) of a requested stop
        self.epoch = 0

    def request_stop(self, reason: str = "SIGTERM") -> None:
        """Save at the end of the current step and stop (safe to call from a signal handler)."""
        self.stop_reason = self.stop_reason or reason
        self.stop_requested = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_epoch = self.epoch + 1
            self.model.stop_training = True
            return
        periodic = self.every_steps > 0 and (batch + 1) % self.every_steps == 0
        if self.stop_requested or periodic:
            self._save(self.run.last_checkpoint)
            if self.is_chief:
                self.write_metrics(self.epoch, mid_epoch={"epoch": self.epoch + 1,
                                                          "step": batch + 1})
        if self.stop_requested:
            self.stopped_at = (self.epoch + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self.nan_epoch is not None or not all(math.isfinite(v) for v in logs.values()):
            self.nan_epoch = epoch + 1
            self.model.stop_training = True
            return
        if self.stopped_at is not None:
            return  # a partial epoch: its weights are saved, its numbers are not an epoch's
        if self.stop_requested and epoch + 1 < self.epochs:
            self.stopped_at = (epoch + 1, 0)  # asked during validation: stop after this epoch
            self.model.stop_training = True
        if self.monitor not in logs:  # else best.keras would silently stay at epoch 1
            raise ConfigError(
                f"train.monitor = {self.monitor!r} is not logged by this model; "
                f"use one of: {', '.join(sorted(logs))}")
        row = {"epoch": epoch + 1, **logs,
               "learning_rate": _current_learning_rate(self.model)}
        self.rows = [r for r in self.rows if int(r["epoch"]) <= epoch] + [row]
        self._save(self.run.last_checkpoint)
        if self._improved(logs):
            self.best = {"epoch": epoch + 1, **logs}
            self._save(self.run.best_checkpoint)
        if not self.is_chief:
            return
        atomic_write_text(self.run.history, _to_csv(self.rows))
        self.write_metrics(epoch + 1, last=row)

    def write_metrics(self, epochs_completed: int, **extra: Any) -> None:
        """Rewrite metrics.json, keeping what earlier epochs or stages wrote."""
        metrics = self.run.read_metrics()
        metrics.pop("mid_epoch", None)
        metrics.update(epochs_completed=epochs_completed, epochs_planned=self.epochs,
                       monitor=self.monitor, best=self.best, **extra)
        atomic_write_json(self.run.metrics, metrics)

    def _save(self, path: Path) -> None:
        """Save on every process: on JAX and TensorFlow clusters saving reads replicated
        variables through collectives. Only the chief keeps its file."""
        if self.is_chief:
            atomic_save_model(self.model, path)
            return
        with tempfile.TemporaryDirectory(prefix="appgen-worker-") as scratch:
            self.model.save(Path(scratch) / path.name)

    def _improved(self, logs: dict[str, float]) -> bool:
        value = logs[self.monitor]
        if self.monitor not in self.best:
            return True
        old = self.best[self.monitor]
        return value < old if self.mode == "min" else value > old


class ExactValidationMetrics(keras.callbacks.Callback):
    """Put exact whole-validation-set metrics into each epoch's logs as ``val_<name>``.

    Keras' AUC metrics are streaming estimates over a fixed grid of thresholds; on
    rare positives they differ from the exact value the final report computes. A
    template that names ``epoch_metrics(meta)`` (name -> function of labels and
    scores) gets the report's own definition in the per-epoch log, history.csv, the
    monitor and best.keras instead, so every number of that name agrees. It must
    come first among the callbacks (Keras' own loggers run after all of them).
    """

    def __init__(self, batches: Any,
                 metrics: dict[str, Callable[[np.ndarray, np.ndarray], float]]) -> None:
        super().__init__()
        self.batches = batches
        self.metrics = metrics

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or not self.metrics:
            return
        with no_distribution():  # each process scores all of val: no cross-host arrays
            scores = np.asarray(self.model.predict(self.batches, verbose=0),
                                dtype=np.float64)
        labels = np.asarray(self.batches.targets)
        for name, metric in self.metrics.items():
            logs[f"val_{name}"] = float(metric(labels, scores))


def _current_learning_rate(model: keras.Model) -> float:
    optimizer = model.optimizer
    rate = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(rate))


def _to_csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _read_history(run: RunDir) -> list[dict[str, Any]]:
    """history.csv of the run being resumed: numbers only (RunDirError otherwise)."""
    if not run.history.is_file():
        return []
    try:
        with run.history.open(newline="", encoding="utf-8") as handle:
            return [{k: int(float(v)) if k == "epoch" else float(v)
                     for k, v in row.items() if v != ""}
                    for row in csv.DictReader(handle)]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error):
        raise RunDirError(f"{run.history} is not a history written by train (every value "
                          "must be a number)") from None


def tensorboard(run: RunDir) -> list[keras.callbacks.Callback]:
    """TensorBoard logging when TensorFlow and TensorBoard are importable (they write the logs)."""
    import importlib.util

    if not all(importlib.util.find_spec(name) for name in ("tensorflow", "tensorboard")):
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False)]
