"""Experiment tracking: ``runtime.tracking = "mlflow"`` logs every train and tune trial.

Each run logs its resolved config (flattened, as params), each epoch's metrics, the
final metrics, the plots and the best checkpoint, tagged with template, task,
backend, precision and device. The store is ``runtime.tracking_uri``, or the local
``mlruns/`` folder of the project (``mlflow ui`` shows it without a server).

Tracking is a side job: a failure (server down, disk full) prints one warning and
stops tracking for that run; training always goes on.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .config import Config, choice, finite_number, flatten, format_value, get
from .errors import ConfigError, TrainingInterrupted

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_PARAM_CHARS = 500  # MLflow caps a param value at 6000 characters; ours are short


def check(config: Config) -> None:
    """ConfigError (one line) when tracking is asked for and mlflow is not installed."""
    if choice(config, "runtime.tracking", ("none", "mlflow")) == "mlflow":
        try:
            installed = importlib.util.find_spec("mlflow") is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            raise ConfigError('runtime.tracking = "mlflow" needs MLflow: pip install -e .[mlflow] '
                              '(or set runtime.tracking = "none")')


class Tracker:
    """One MLflow run, or nothing (``runtime.tracking = "none"``): every method is safe."""

    def __init__(self, client: Any = None, run_id: str = "") -> None:
        self.client = client
        self.run_id = run_id

    @property
    def active(self) -> bool:
        return self.client is not None

    def call(self, what: str, action: Callable[[], Any]) -> None:
        """Run ``action``; on failure warn once and stop tracking this run."""
        if not self.active:
            return
        try:
            action()
        except Exception as err:  # noqa: BLE001  (any failure of the store: warn, go on)
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            print(f"warning: tracking: {what} failed ({type(err).__name__}: {first}); "
                  "training goes on without tracking", flush=True)
            self.client = None

    def _log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def log_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        """One epoch's metrics (finite numbers only), at step ``epoch``."""
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = [Metric(_name(k), float(v), stamp, epoch) for k, v in logs.items()
                   if finite_number(v) is not None]
        self.call("logging epoch metrics",
                  lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def finish(self, run_path: Path, status: str) -> None:
        """Final metrics, plots and best checkpoint of ``run_path``; close the run."""
        from .rundir import RunDir, model_checkpoint

        run = RunDir(run_path)
        if status == "FINISHED":
            self.call("logging final metrics", lambda: self._log_final(run))
            self.call("logging plots", lambda: self.client.log_artifacts(
                self.run_id, str(run.plots), "plots") if run.plots.is_dir() else None)
            for name in ("metrics.json", "config.toml", "history.csv"):
                if (run.path / name).is_file():
                    # bound late: a failed call before this one sets self.client to None
                    self.call(f"logging {name}", functools.partial(
                        self._log_artifact, run.path / name))
            best = model_checkpoint(run)
            if best.is_file():
                self.call("logging the best checkpoint", lambda: self.client.log_artifact(
                    self.run_id, str(best), "checkpoints"))
        self.call("closing the run", lambda: self.client.set_terminated(self.run_id, status))

    def _log_final(self, run: Any) -> None:
        from mlflow.entities import Metric

        stamp = _now_ms()
        metrics = run.read_metrics()
        flat = {f"final.{k}": v for k, v in flatten(metrics.get("final", {})).items()}
        flat.update({f"test.{k}": v for k, v in flatten(metrics.get("test") or {}).items()})
        flat["train_seconds"] = metrics.get("train_seconds")
        flat["best_epoch"] = metrics.get("best", {}).get("epoch")
        self.client.log_batch(self.run_id, metrics=[
            Metric(_name(k), float(v), stamp, 0) for k, v in flat.items()
            if finite_number(v) is not None])


def start(config: Config, resolved: Config, run_path: Path, tags: dict[str, str]) -> Tracker:
    """A Tracker for this run: an MLflow run with params and tags, or a no-op one."""
    if get(config, "runtime.tracking") != "mlflow":
        return Tracker()
    tracker = Tracker()
    try:
        from mlflow.entities import Param, RunTag
        from mlflow.tracking import MlflowClient

        uri = str(get(config, "runtime.tracking_uri"))
        if not uri:  # the local folder; MLflow 3 asks file stores to opt in
            uri = Path("mlruns").absolute().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(__package__)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else client.create_experiment(__package__))
        created = client.create_run(experiment_id, run_name=_run_name(run_path), tags={
            **tags, "run_dir": str(run_path.absolute())})
        params = [Param(_name(k), _param(v)) for k, v in flatten(resolved).items()]
        for first in range(0, len(params), 100):  # MLflow takes 100 params per call
            client.log_batch(created.info.run_id, params=params[first:first + 100],
                             tags=[RunTag("tracking_uri", uri)] if not first else [])
        tracker = Tracker(client, created.info.run_id)
        print(f"tracking: MLflow run {created.info.run_id} in {uri}", flush=True)
    except Exception as err:  # noqa: BLE001
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        print(f"warning: tracking: starting an MLflow run failed ({type(err).__name__}: "
              f"{reason}); training goes on without tracking", flush=True)
    return tracker


@contextlib.contextmanager
def tracked(config: Config, resolved: Config, run_path: Path, tags: dict[str, str]
            ) -> Iterator[Tracker]:
    """``start`` a tracker; close it FINISHED, FAILED or KILLED as the block ends."""
    tracker = start(config, resolved, run_path, tags)
    try:
        yield tracker
    except BaseException as err:
        stopped = isinstance(err, (KeyboardInterrupt, TrainingInterrupted))
        tracker.finish(run_path, "KILLED" if stopped else "FAILED")
        raise
    tracker.finish(run_path, "FINISHED")


def project_tags(meta: dict[str, Any], plan: Any) -> dict[str, str]:
    """template, task, backend, precision and device of this run."""
    answers = _appgen_answers()
    return {"template": str(answers.get("template", "unknown")),
            "task": str(meta.get("task") or answers.get("task", "unknown")),
            "backend": str(plan.backend), "precision": str(plan.precision),
            "device": str(plan.device_summary)}


def epoch_callback(tracker: Tracker) -> Any:
    """A Keras callback sending each epoch's logs to ``tracker``."""
    import keras

    class TrackEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if tracker.active and logs:
                tracker.log_epoch(epoch + 1, logs)

    return TrackEpochs()


def _appgen_answers() -> dict[str, Any]:
    """What appgen recorded about this project (.appgen.toml), or {} outside one."""
    path = Path(".appgen.toml")
    try:
        if path.is_file() and path.stat().st_size < 2**20:
            return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass
    return {}


def _run_name(run_path: Path) -> str:
    parts = run_path.absolute().parts
    return "/".join(parts[-2:]) if len(parts) > 1 and parts[-2].startswith("sweep") \
        else parts[-1]


def _name(key: str) -> str:
    """A metric or param name MLflow accepts (letters, digits, _ - . / and spaces)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)[:250]


def _param(value: Any) -> str:
    text = format_value(value) if not isinstance(value, str) else value
    return text[:MAX_PARAM_CHARS]


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
