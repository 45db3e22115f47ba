"""``python -m PACKAGE tune``: search config keys with KerasTuner; every trial is a run.

The search space is the ``[tune.space]`` table of config.toml: a dotted config key and
what to try for it. Each trial trains through ``train.run_training`` (the same code as
``train``) into ``SWEEP/trial-<id>/``, a normal run directory, so evaluate, predict and
export work on any trial. KerasTuner's oracle (random, bayesian or hyperband) picks the
values and keeps its state in ``SWEEP/tuner/``; the objective is ``train.monitor``.

    SWEEP/config.toml     the config the sweep started from (what --resume reads)
    SWEEP/trial-<id>/     one run directory per trial
    SWEEP/ranking.txt     the trials, best first (also printed)
    SWEEP/best.toml       the config with the best trial's values: train --config takes it
    SWEEP/plots/tune.png  the monitor against each searched key
    SWEEP/logs/           TensorBoard HParams: each trial's values and monitor
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import rundir
from .config import (
    Config,
    check_type,
    choice,
    dump_toml,
    finite_number,
    format_value,
    get,
    load_config,
)
from .errors import ConfigError, ProjectError, RunDirError, TrainingInterrupted, TrainingStopped

# Sections a sweep cannot change: where data and runs live, how this machine runs, limits.
NOT_TUNABLE = ("data", "runtime", "limits", "bench", "launch", "predict", "tune")
NOT_TUNABLE_KEYS = ("train.monitor", "train.monitor_mode", "train.verbose")
STRATEGIES = ("random", "bayesian", "hyperband")


@dataclass(frozen=True)
class Dimension:
    """One searched key: a list of choices, or a numeric range (``low..high``)."""

    key: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    @property
    def name(self) -> str:
        """The KerasTuner hyperparameter name (the config key)."""
        return self.key

    def declare(self, hp: Any) -> None:
        """Add this key to KerasTuner's ``HyperParameters``."""
        sampling = "log" if self.log else "linear"
        if self.choices:
            hp.Choice(self.name, self.labels())
        elif self.integer:
            hp.Int(self.name, int(self.low), int(self.high), sampling=sampling)
        else:
            hp.Float(self.name, self.low, self.high, sampling=sampling)

    def labels(self) -> list[Any]:
        """The choices as KerasTuner takes them: scalars as they are, a list as its TOML."""
        return [format_value(c) if isinstance(c, list) else c for c in self.choices]

    def value(self, raw: Any) -> Any:
        """The config value for KerasTuner's ``raw`` value of this key."""
        if self.choices and any(isinstance(c, list) for c in self.choices):
            return self.choices[self.labels().index(raw)]
        return raw


def parse_space(config: Config) -> list[Dimension]:
    """The ``[tune.space]`` table as dimensions; ConfigError (one line) for a bad entry."""
    space = get(config, "tune.space")
    if not isinstance(space, dict) or not space:
        raise ConfigError("[tune.space] is empty: add a key to search, e.g. "
                          '"train.learning_rate" = "log:1e-4..1e-2"')
    return [parse_dimension(config, key, spec) for key, spec in space.items()]


def parse_dimension(config: Config, key: str, spec: Any) -> Dimension:
    """One ``[tune.space]`` entry: ``[a, b, c]``, ``"low..high"`` or ``"log:low..high"``."""
    where = f"[tune.space] {key!r}"
    if isinstance(spec, dict):
        raise ConfigError(f"{where}: quote the dotted key, e.g. \"{key}.NAME\" = [...]")
    try:
        default = get(config, key)
    except ConfigError:
        raise ConfigError(f"{where}: no such config key") from None
    section = key.partition(".")[0]
    if section in NOT_TUNABLE or key in NOT_TUNABLE_KEYS or isinstance(default, dict):
        raise ConfigError(f"{where}: not tunable (a sweep changes model, train, augment and "
                          f"task keys, not {section}.*)")
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: the list of values is empty")
        return Dimension(key, choices=tuple(_checked(key, default, value) for value in spec))
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: expected a list of values or a range \"low..high\" "
                          f"(\"log:low..high\" for log scale), got {format_value(spec)}")
    return _parse_range(where, key, default, spec)


def _parse_range(where: str, key: str, default: Any, spec: str) -> Dimension:
    log = spec.startswith("log:")
    low_text, sep, high_text = spec.removeprefix("log:").partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not sep or not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where}: {spec!r} is not a range; write \"low..high\" or "
                          "\"log:low..high\", e.g. \"log:1e-4..1e-2\"")
    if low >= high:
        raise ConfigError(f"{where}: the range {spec!r} must go from low to high")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range must start above 0, got {spec!r}")
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise ConfigError(f"{where}: a range needs a numeric key (default "
                          f"{format_value(default)}); list the values instead: [..]")
    integer = isinstance(default, int)
    if integer and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}: {key} is an integer; give whole-number ends, got {spec!r}")
    for end in (low, high):
        _checked(key, default, int(end) if integer else end)
    return Dimension(key, low=low, high=high, log=log, integer=integer)


def _checked(key: str, default: Any, value: Any) -> Any:
    """``value`` as the default's type and within the key's range (ConfigError naming it)."""
    try:
        return check_type(key, default, value)
    except ConfigError as err:
        raise ConfigError(f"[tune.space] {err}") from None


def check_tune_config(config: Config) -> list[Dimension]:
    """Everything ``tune`` needs from config.toml, checked before Keras starts."""
    choice(config, "tune.strategy", STRATEGIES)
    return parse_space(config)


class Sweep:
    """A sweep folder and how one of its trials is trained."""

    def __init__(self, path: Path, config_path: Path, config: Config,
                 dimensions: list[Dimension]) -> None:
        self.path = path
        self.config_path = config_path  # SWEEP/config.toml
        self.config = config
        self.dimensions = dimensions
        self.monitor = str(get(config, "train.monitor"))
        self.mode = choice(config, "train.monitor_mode", ("min", "max"))
        self.stopped: ProjectError | None = None  # the error that ended the sweep

    def trial_path(self, trial_id: str) -> Path:
        return self.path / f"trial-{trial_id}"

    def values(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Config values of a trial from KerasTuner's hyperparameter values."""
        return {d.key: d.value(raw[d.name]) for d in self.dimensions if d.name in raw}

    def run_trial(self, trial_id: str, raw: dict[str, Any]) -> dict[str, float]:
        """Train trial ``trial_id`` (or continue it after a kill); its objective."""
        import keras

        from .train import run_training

        path = self.trial_path(trial_id)
        run = rundir.RunDir(path)
        finished = run.read_metrics() if run.metrics.is_file() else {}
        if "final" not in finished:
            resume = run.last_checkpoint.is_file()
            if not resume and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # killed before its first checkpoint: start it again
            overrides = [] if resume else self.overrides(raw)
            keras.backend.clear_session()  # a fresh graph and layer names per trial
            try:
                finished = run_training(self.config_path, overrides, path, resume)
            finally:  # evaluate, predict and export may use the trial while the sweep goes on
                rundir.release_lock(path)
            trained = True
        else:
            trained = False
        best = finished.get("best")  # metrics.json is read back: check what it holds
        score = finite_number(best.get(self.monitor)) if isinstance(best, dict) else None
        if score is None:
            raise RunDirError(f"{run.metrics} has no best {self.monitor}")
        if trained:
            self.write_hparams(trial_id, raw, score)
        return {self.monitor: score}

    def write_hparams(self, trial_id: str, raw: dict[str, Any], score: float) -> None:
        """TensorBoard's HParams view of the sweep: SWEEP/logs/trial-<id> holds the trial's
        values and monitor (``tensorboard --logdir SWEEP/logs``). Needs TensorFlow."""
        try:
            import tensorflow as tf
            from tensorboard.plugins.hparams import api as hparams_api
        except ImportError:
            return
        folder = rundir.safe_folder(self.path / "logs" / f"trial-{trial_id}", self.path)
        values = {key: format_value(value) if isinstance(value, list) else value
                  for key, value in self.values(raw).items()}
        with tf.summary.create_file_writer(str(folder)).as_default():
            hparams_api.hparams(values, trial_id=trial_id)
            tf.summary.scalar(self.monitor, score, step=1)

    def overrides(self, raw: dict[str, Any]) -> list[str]:
        """``--set`` items of a trial; hyperband also sets the epochs of its round."""
        items = [f"{key}={format_value(value)}" for key, value in self.values(raw).items()]
        epochs = raw.get("tuner/epochs") or int(get(self.config, "tune.trial_epochs"))
        if epochs:
            items.append(f"train.epochs={int(epochs)}")
        return items


def run_tune(config_path: Path, overrides: list[str], sweep_path: Path | None,
             resume: bool) -> str:
    """Run (or continue) a sweep; return the ranking printed at the end."""
    if resume:
        if sweep_path is None:
            raise ProjectError("tune --resume needs --sweep-dir of the sweep to continue")
        if not (sweep_path / "config.toml").is_file():
            raise RunDirError(f"{sweep_path} is not a sweep folder (no config.toml)")
        check_resume_overrides(overrides)
        config_path = sweep_path / "config.toml"
    config = load_config(config_path, overrides)
    dimensions = check_tune_config(config)
    # KerasTuner's distributed mode: the chief hands out trials, workers train them
    chief = "chief" in os.environ.get("KERASTUNER_TUNER_ID", "chief")
    if not chief and sweep_path is None:
        raise ProjectError("a tune worker needs --sweep-dir: the chief's sweep folder")
    path = sweep_path or rundir.new_run_path("runs", prefix="sweep-")
    if chief:
        _open_sweep(path, resume)
    else:  # a worker trains the chief's config, once the chief has written it
        config = _wait_for_chief(path)
        dimensions = check_tune_config(config)
    sweep = Sweep(path, path / "config.toml", config, dimensions)
    tuner = make_tuner(sweep, resume or not chief)
    if chief and not resume:  # last: workers start once it is there
        rundir.atomic_write_text(sweep.config_path, dump_toml(config))
    try:
        tuner.search()
    except Exception as err:
        if sweep.stopped is not None:  # a trial's error: the user's to act on
            raise sweep.stopped from None
        if type(err).__name__ == "FatalError":
            raise ProjectError(f"the sweep stopped: {str(err).splitlines()[-1]}") from None
        raise
    if not chief:
        return f"worker {os.environ['KERASTUNER_TUNER_ID']} done"
    return finish(sweep, tuner.oracle)


def check_resume_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """``--resume`` continues the sweep as it started: only its trial budget may change."""
    for item in overrides:
        if item.partition("=")[0].strip() != "tune.max_trials":
            raise ConfigError(f"tune --resume runs the sweep's own config; only "
                              f"tune.max_trials can change, not {item!r}")


CHIEF_WAIT_SECONDS = 300  # how long a worker waits for the chief's SWEEP/config.toml


def _wait_for_chief(path: Path) -> Config:
    """The sweep's config, once the chief has written it (workers may start first)."""
    deadline = time.monotonic() + CHIEF_WAIT_SECONDS
    while not (path / "config.toml").is_file():
        if time.monotonic() > deadline:
            raise ProjectError(f"no sweep in {path} after {CHIEF_WAIT_SECONDS} s: start the "
                               "chief (KERASTUNER_TUNER_ID=chief) with the same --sweep-dir")
        time.sleep(0.5)
    return load_config(path / "config.toml")


def _open_sweep(path: Path, resume: bool) -> None:
    """Create (or reopen) the sweep folder and lock it."""
    if not resume and path.exists() and any(path.iterdir()):
        raise RunDirError(f"sweep folder {path} is not empty; pass --resume to continue that "
                          "sweep or choose another --sweep-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"cannot write to sweep folder {path}: {err.strerror}") from None
    rundir.add_write_root(path)
    rundir.hold_lock(path, "tune")


def make_tuner(sweep: Sweep, reload: bool) -> Any:
    """The KerasTuner tuner whose trials are ``sweep.run_trial`` (state in SWEEP/tuner)."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for dimension in sweep.dimensions:
        dimension.declare(hp)
    objective = keras_tuner.Objective(sweep.monitor, direction=sweep.mode)
    common = dict(objective=objective, hyperparameters=hp, tune_new_entries=False,
                  allow_new_entries=False, seed=int(get(sweep.config, "runtime.seed")))
    strategy = choice(sweep.config, "tune.strategy", STRATEGIES)
    trials = int(get(sweep.config, "tune.max_trials"))
    oracle: Any
    if strategy == "hyperband":
        epochs = int(get(sweep.config, "tune.trial_epochs")) or int(get(sweep.config,
                                                                        "train.epochs"))
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max(2, epochs), **common)
    elif strategy == "bayesian":
        oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=trials, **common)
    else:
        oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=trials, **common)

    class RunTuner(keras_tuner.Tuner):  # type: ignore[misc]
        """Each trial is a ``train`` run in the sweep folder."""

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            try:
                return sweep.run_trial(trial.trial_id, trial.hyperparameters.values)
            except TrainingInterrupted as err:  # SIGTERM / Ctrl-C: stop the sweep, resumable
                sweep.stopped = err
                raise keras_tuner.errors.FatalError(str(err)) from None
            except TrainingStopped as err:  # NaN loss: this trial failed, the next may not
                print(f"trial {trial.trial_id} failed: {err}", flush=True)
                raise keras_tuner.errors.FailedTrialError(str(err)) from None
            except ProjectError as err:  # bad data or config: every trial would fail alike
                sweep.stopped = err
                raise keras_tuner.errors.FatalError(str(err)) from None

    tuner = RunTuner(oracle=oracle, directory=str(sweep.path), project_name="tuner",
                     overwrite=not reload)
    # KerasTuner reloads through its tuner_<id>.json; a sweep started by launch/tune.sh has
    # tuner_chief.json instead, so a plain --resume reloads the oracle's trials itself.
    if reload and not oracle.trials and os.path.isfile(oracle._get_oracle_fname()):
        oracle.reload()
    return tuner


@dataclass(frozen=True)
class Result:
    """One finished trial, for the ranking."""

    trial_id: str
    values: dict[str, Any]
    score: float
    seconds: float | None


def finish(sweep: Sweep, oracle: Any) -> str:
    """Rank the trials, write ranking.txt, best.toml and the plot; the ranking."""
    results = ranked(sweep, oracle)
    if not results:
        raise ProjectError(f"no trial of {sweep.path} finished; see the trial folders")
    table = format_ranking(sweep, results)
    best = results[0]
    config = load_config(sweep.config_path, [f"{k}={format_value(v)}"
                                             for k, v in best.values.items()])
    rundir.atomic_write_text(sweep.path / "ranking.txt", table + "\n")
    rundir.atomic_write_text(sweep.path / "best.toml", dump_toml(config))
    plot_sweep(sweep, results, sweep.path / "plots" / "tune.png")
    return (f"{table}\n\nbest: trial {best.trial_id}, {sweep.monitor} = {best.score:.4f} "
            f"({sweep.trial_path(best.trial_id)})\ntrain it again or longer: python -m "
            f"{__package__} train --config {sweep.path / 'best.toml'}\nplot: "
            f"{sweep.path / 'plots' / 'tune.png'}")


def ranked(sweep: Sweep, oracle: Any) -> list[Result]:
    """The completed trials, best first."""
    results = []
    for trial in oracle.trials.values():
        score = trial.score
        if trial.status != "COMPLETED" or score is None or not math.isfinite(score):
            continue
        metrics = rundir.RunDir(sweep.trial_path(trial.trial_id)).read_metrics()
        seconds = metrics.get("train_seconds")
        results.append(Result(trial.trial_id, sweep.values(trial.hyperparameters.values),
                              float(score), float(seconds)
                              if isinstance(seconds, (int, float)) else None))
    return sorted(results, key=lambda r: r.score, reverse=sweep.mode == "max")


def format_ranking(sweep: Sweep, results: list[Result]) -> str:
    """rank, trial, the searched values, the monitor and the time, as aligned columns."""
    keys = [d.key for d in sweep.dimensions]
    lines = [["rank", "trial", *keys, sweep.monitor, "time"]]
    for rank, result in enumerate(results, 1):
        lines.append([str(rank), result.trial_id,
                      *(_short(result.values.get(key)) for key in keys),
                      f"{result.score:.4f}",
                      "-" if result.seconds is None else f"{result.seconds:.0f}s"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else format_value(value)


def plot_sweep(sweep: Sweep, results: list[Result], out: Path) -> Path:
    """One panel per searched key: the monitor of each trial against its value."""
    import matplotlib.pyplot as plt

    from .plots import save_figure

    fig, axes = plt.subplots(1, len(sweep.dimensions), squeeze=False,
                             figsize=(4.2 * len(sweep.dimensions), 3.4))
    scores = [r.score for r in results]
    for axis, dimension in zip(axes[0], sweep.dimensions, strict=True):
        if dimension.choices:  # categories at 0, 1, 2... labelled with their values
            labels = [_short(c) for c in dimension.choices]
            xs = [dimension.choices.index(r.values[dimension.key]) for r in results]
            axis.set_xticks(range(len(labels)), labels)
        else:
            xs = [r.values[dimension.key] for r in results]
            if dimension.log:
                axis.set_xscale("log")
        axis.scatter(xs, scores)
        axis.scatter(xs[:1], scores[:1], color="red", label="best")
        axis.set_xlabel(dimension.key)
        axis.set_ylabel(sweep.monitor)
        axis.legend()
    return save_figure(fig, out)
