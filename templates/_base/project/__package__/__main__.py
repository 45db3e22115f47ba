"""Command line of this project: train, tune, runs, evaluate, predict, export, bench.

    python -m PACKAGE train [--config config.toml] [--set KEY=VALUE]... [--run-dir DIR] [--resume]

Errors you can act on print one line and exit with code 2.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import rundir
from .config import get, load_config
from .contract import check_sources
from .errors import ProjectError

DEFAULT_CONFIG = Path("config.toml")

# The module each backend needs installed (this project's extra of that name installs it).
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _select_backend(config_path: Path, overrides: tuple[str, ...] = (),
                    tensorboard: bool = False) -> None:
    """Set KERAS_BACKEND from config, check it is installed, then import Keras quietly.

    The environment's KERAS_BACKEND wins over the config. Everything here runs
    before Keras (and TensorFlow) is imported, so a wrong config or a missing
    backend is reported in a second, not after TensorFlow's start-up. ``tensorboard``:
    the command writes TensorBoard logs, which import TensorFlow on any backend.
    """
    if "KERAS_BACKEND" not in os.environ and config_path.is_file():
        os.environ["KERAS_BACKEND"] = str(get(load_config(config_path, overrides),
                                              "runtime.backend"))
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    module = BACKEND_MODULES.get(backend)
    if module is None:
        raise ProjectError(f"KERAS_BACKEND={backend} is not a Keras backend; use "
                           "tensorflow or jax")
    if not _installed(module):
        install = f"pip install -e .[{backend}]" if backend != "torch" else "pip install torch"
        raise ProjectError(f"the {backend} backend is not installed: {install} "
                           "(or choose another with KERAS_BACKEND or runtime.backend)")
    _import_keras_quietly(backend, tensorboard and _installed("tensorflow"))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken installation counts as none
        return False


# Start-up lines TensorFlow and XLA print to stderr on every import (twice: two copies of
# absl), including "failed call to cuInit" on a machine without a GPU.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} \d\d:\d\d:\d\d"
    r"|E\d{4} \d\d:\d\d:\d\d.*(cuInit|cuda|Unable to register)"
    r"|This TensorFlow binary is optimized|To enable the following instructions)")


def _import_keras_quietly(backend: str, tensorflow_too: bool = False) -> None:
    """Import Keras (and list the devices) with TensorFlow's start-up lines filtered out.

    Left alone when the user set TF_CPP_MIN_LOG_LEVEL=0 (show everything). Any other level
    asks for quiet, and TensorFlow 2.21 prints these lines before the level applies.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _filtered_stderr():
        import keras  # noqa: F401

        if backend == "tensorflow" or tensorflow_too:
            import tensorflow as tf

            tf.config.list_physical_devices()  # where "failed call to cuInit" is printed
    absl = sys.modules.get("absl.logging")
    if absl is not None:
        absl.set_verbosity(absl.ERROR)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a file meanwhile, then pass on each line that is not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _NOISE.match(line)))
            sys.stderr.flush()


def _check_project_folder(config_path: Path) -> None:
    """The default config.toml is missing: most likely run from the wrong folder."""
    if config_path == DEFAULT_CONFIG and not config_path.is_file():
        raise ProjectError(f"no config.toml in {Path.cwd()}: run this from the project "
                           "folder (the one holding config.toml), or pass --config")


def _predict_takes_text() -> bool:
    """Whether this template's predict reads an INPUT that is no file as literal text.

    Such a template says ``TAKES_TEXT = True`` in its predict.py (nlp does); the file is
    read, not imported, since importing it would start Keras.
    """
    spec = importlib.util.find_spec(f"{__package__}.predict")
    if spec is None or not spec.origin:
        return False
    source = Path(spec.origin).read_text(encoding="utf-8")
    return re.search(r"^TAKES_TEXT = True\b", source, re.MULTILINE) is not None


def _check_inputs(paths: tuple[Path, ...] | list[Path], what: str) -> None:
    """ProjectError naming the first path that does not exist (before Keras is imported)."""
    for path in paths:
        if not path.exists():
            raise ProjectError(f"{what} not found: {path}")


def _lock_run(run_dir: Path, command: str, out: Path | None = None) -> None:
    """Hold RUN/.lock for this command when it writes into the run directory.

    A second command writing into a run directory that another one is using is
    refused with one line naming that process; ``--out`` elsewhere needs no lock.
    """
    from .rundir import hold_lock, open_existing

    if out is not None:
        inside = Path(os.path.abspath(out)), Path(os.path.abspath(run_dir))
        if inside[1] != inside[0] and inside[1] not in inside[0].parents:
            return
    hold_lock(open_existing(run_dir).path, command)


def _run(action: Callable[[], Any]) -> None:
    try:
        check_sources()  # a template missing a piece: one line naming it, before Keras
        action()
    except ProjectError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train, tune, list runs, evaluate, predict with, export and benchmark this project's model."""


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="Config file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.epochs=5.")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Where to write this run (default runs/<timestamp>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir from its last checkpoint.")
def train(config_path: Path, overrides: tuple[str, ...], run_dir: Path | None,
          resume: bool) -> None:
    """Train the model and write the run directory."""
    def action() -> None:
        source = run_dir / "config.toml" if resume and run_dir else config_path
        _check_project_folder(source)
        config = load_config(source, overrides)  # a wrong key or value: one line, before Keras
        from .tracking import check

        check(config)  # tracking = "mlflow" without mlflow installed
        _select_backend(source, overrides, tensorboard=True)
        from .train import run_training

        run_training(config_path, list(overrides), run_dir, resume)
    _run(action)


@cli.command()
@click.option("--run-dir", type=click.Path(path_type=Path), required=True)
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None,
              help="Evaluate on this data instead of the run's validation split.")
def evaluate(run_dir: Path, data_path: Path | None) -> None:
    """Score the run's best model and write RUN/evaluation.json."""
    def action() -> None:
        rundir.open_existing(run_dir)
        _check_inputs([data_path] if data_path else [], "--data")
        _select_backend(run_dir / "config.toml")
        _lock_run(run_dir, "evaluate")
        from .evaluate import run_evaluation

        run_evaluation(run_dir, data_path)
    _run(action)


@cli.command()
@click.option("--run-dir", type=click.Path(path_type=Path), required=True)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write predictions (default RUN/predictions).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value of the run's config for this call, e.g. "
                   "--set predict.batch_size=64.")
def predict(run_dir: Path, inputs: tuple[Path, ...], out: Path | None,
            overrides: tuple[str, ...]) -> None:
    """Predict on files or folders with the run's best model."""
    def action() -> None:
        rundir.open_existing(run_dir)
        if not _predict_takes_text():
            _check_inputs(inputs, "input")
        load_config(run_dir / "config.toml", overrides)
        _select_backend(run_dir / "config.toml", overrides)
        _lock_run(run_dir, "predict", out)
        from .predict import run_prediction

        run_prediction(run_dir, list(inputs), out, list(overrides))
    _run(action)


@cli.command()
@click.option("--run-dir", type=click.Path(path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["keras", "saved_model", "onnx"]),
              default="keras", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def export(run_dir: Path, fmt: str, out: Path | None) -> None:
    """Export the run's best model for serving."""
    def action() -> None:
        rundir.open_existing(run_dir)
        _select_backend(run_dir / "config.toml")
        _lock_run(run_dir, "export", out)
        from .export import run_export

        run_export(run_dir, fmt, out)
    _run(action)


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench.json"),
              show_default=True)
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Time inference of this run's trained model (default: a fresh one).")
def bench(config_path: Path, overrides: tuple[str, ...], out: Path,
          run_dir: Path | None) -> None:
    """Measure pipeline, training and inference throughput; write bench.json."""
    def action() -> None:
        _check_project_folder(config_path)
        load_config(config_path, overrides)
        _select_backend(config_path, overrides)
        from .bench import run_bench

        run_bench(config_path, list(overrides), out, run_dir)
    _run(action)


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="Config file; its [tune] table is the search.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value for every trial, e.g. --set tune.max_trials=4.")
@click.option("--sweep-dir", type=click.Path(path_type=Path), default=None,
              help="Where to write the sweep (default runs/sweep-<timestamp>).")
@click.option("--resume", is_flag=True,
              help="Continue the sweep in --sweep-dir; finished trials are not run again "
                   "(--set tune.max_trials=N extends it).")
def tune(config_path: Path, overrides: tuple[str, ...], sweep_dir: Path | None,
         resume: bool) -> None:
    """Search the [tune.space] keys with KerasTuner; each trial is a run directory."""
    def action() -> None:
        source = sweep_dir / "config.toml" if resume and sweep_dir else config_path
        _check_project_folder(source)
        from .tune import check_resume_overrides, check_tune_config

        if resume:
            check_resume_overrides(overrides)

        config = load_config(source, overrides)
        check_tune_config(config)  # a bad [tune] table: one line, before Keras starts
        from .tracking import check

        check(config)
        if not _installed("keras_tuner"):
            raise ProjectError("tune needs KerasTuner: pip install -e .[tune]")
        _select_backend(source, overrides, tensorboard=True)
        from .tune import run_tune

        click.echo(run_tune(config_path, list(overrides), sweep_dir, resume))
    _run(action)


@cli.command()
@click.option("--dir", "root", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True, help="Folder holding the runs (and sweeps).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=DEFAULT_CONFIG,
              show_default=True, help="The defaults each run is compared with.")
def runs(root: Path, config_path: Path) -> None:
    """List the runs: monitor at the best epoch, epochs, time, what differs from config."""
    def action() -> None:
        from .runs import list_runs

        click.echo(list_runs(root, config_path))
    _run(action)


def main() -> None:
    """The console script: ``PACKAGE train ...`` once the project is pip-installed."""
    cli(prog_name=__package__)


if __name__ == "__main__":
    cli(prog_name=f"python -m {__package__}")
