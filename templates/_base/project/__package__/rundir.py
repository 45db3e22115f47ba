"""The run directory: where one training run keeps everything it produces.

    RUN/config.toml      fully resolved config (re-usable with --config)
    RUN/metrics.json     final and best validation metrics, epochs_completed
    RUN/history.csv      one row per epoch
    RUN/meta.json        what the data told the model (class names, input shape)
    RUN/checkpoints/     last.keras (every epoch) and best.keras
    RUN/plots/*.png      training curves and the template's own plots
    RUN/logs/            TensorBoard

Every file is written to a temporary name and renamed, so a kill mid-write
never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunDirError


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def meta(self) -> Path:
        """What the data told the model (class names, shapes), for evaluate/predict."""
        return self.path / "meta.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def read_metrics(self) -> dict[str, Any]:
        """metrics.json as a dict, or {} before the first epoch."""
        if not self.metrics.is_file():
            return {}
        return json.loads(self.metrics.read_text(encoding="utf-8"))


def new_run_path(base: str | Path = "runs") -> Path:
    """A fresh ``runs/YYYYmmdd-HHMMSS`` path (suffixed when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = Path(base) / f"{stamp}-{suffix}"
    return candidate


def prepare(path: str | Path | None, *, resume: bool, min_free_mb: int,
            shared: bool = False) -> RunDir:
    """Create (or, with ``resume``, reopen) a run directory and check it can be written.

    Fails before any training when the directory is in use by another run,
    unwritable, or on a disk with less than ``min_free_mb`` free. ``shared``:
    this process is a non-chief worker of a run the chief owns, so the folder
    may already hold the chief's files.
    """
    if path is None and shared:
        raise RunDirError("multi-worker training needs --run-dir on a disk all workers share")
    run = RunDir(Path(path) if path is not None else new_run_path())
    if resume:
        if not run.last_checkpoint.is_file():
            raise RunDirError(f"--resume: no checkpoint at {run.last_checkpoint}")
    elif not shared and _holds_files(run.path):
        raise RunDirError(f"run directory {run.path} is not empty; pass --resume to continue "
                          "that run or choose another --run-dir")
    try:
        for folder in (run.path, run.checkpoints, run.plots, run.logs):
            folder.mkdir(parents=True, exist_ok=True)
        probe = run.path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {run.path}: {err.strerror}") from None
    free_mb = shutil.disk_usage(run.path).free // 2**20
    if free_mb < min_free_mb:
        raise RunDirError(f"only {free_mb} MB free on the disk of {run.path}; "
                          f"runtime.min_free_disk_mb asks for {min_free_mb} MB")
    return run


def _holds_files(folder: Path) -> bool:
    """True when ``folder`` holds a file (empty subfolders made by other workers don't count)."""
    if not folder.is_dir():
        return folder.exists()
    return any(p.is_file() and not p.name.startswith(".write-test") for p in folder.rglob("*"))


def open_existing(path: str | Path) -> RunDir:
    """A finished or interrupted run, for evaluate / predict / export."""
    run = RunDir(Path(path))
    if not run.config.is_file():
        raise RunDirError(f"{run.path} is not a run directory (no config.toml)")
    if not (run.best_checkpoint.is_file() or run.last_checkpoint.is_file()):
        raise RunDirError(f"{run.path} has no checkpoint yet; train first")
    return run


def read_meta(run: RunDir) -> dict[str, Any]:
    """meta.json written at training time."""
    if not run.meta.is_file():
        raise RunDirError(f"{run.path} has no meta.json; was it written by train?")
    return json.loads(run.meta.read_text(encoding="utf-8"))


def load_model(path: Path) -> Any:
    """``keras.models.load_model`` with the template's custom layers registered first."""
    import keras

    from . import model  # noqa: F401  (registers the template's serializable layers)

    return keras.models.load_model(path)


def model_checkpoint(run: RunDir) -> Path:
    """The checkpoint to use after training: best if there is one, else last."""
    return run.best_checkpoint if run.best_checkpoint.is_file() else run.last_checkpoint


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temporary file in the same folder, then rename over ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (sorted keys, indented, finite numbers only)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes atomically: fsync the temporary file, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_model(model: Any, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
