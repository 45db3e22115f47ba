"""Command line of this project: train, evaluate, predict, export, bench.

    python -m PACKAGE train [--config config.toml] [--set KEY=VALUE]... [--run-dir DIR] [--resume]

Errors you can act on print one line and exit with code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .config import get, load_config
from .errors import ProjectError

DEFAULT_CONFIG = Path("config.toml")


def _select_backend(config_path: Path, overrides: tuple[str, ...] = ()) -> None:
    """Set KERAS_BACKEND from config before Keras is imported (the environment wins)."""
    if "KERAS_BACKEND" not in os.environ and config_path.is_file():
        os.environ["KERAS_BACKEND"] = str(get(load_config(config_path, overrides),
                                              "runtime.backend"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up quiet


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
        action()
    except ProjectError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group()
def cli() -> None:
    """Train, evaluate, predict with, export and benchmark this project's model."""


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
        _select_backend(source, overrides)
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
        _select_backend(config_path, overrides)
        from .bench import run_bench

        run_bench(config_path, list(overrides), out, run_dir)
    _run(action)


if __name__ == "__main__":
    cli(prog_name=f"python -m {__package__}")
