"""End to end: tune, runs and MLflow tracking in a generated project (issue 19).

One distributed sweep serves every test: launch/tune.sh starts a KerasTuner chief and
two workers on this machine, each trial a tiny vision run logged to a local MLflow
store. Quality is not measured here (the README quotes hand-run sweeps); these tests
check what a user sees: the ranking, best.toml, the trial run folders, ``runs``,
``tune --resume`` and the MLflow store.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from project_runner import generate, hiding, last_line, run_project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.slow

TINY = ("--set", "tune.max_trials=2", "--set", "tune.trial_epochs=1",
        "--set", "data.max_images=12", "--set", "train.batch_size=32",
        "--set", "train.verbose=0", "--set", "runtime.tracking=mlflow")
SPACE = ("train.learning_rate", "model.width", "augment.mixup")


def environ(**extra: str) -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("tune"), "tune_demo", "vision")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sweep(project: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A chief and two workers (launch/tune.sh) run a two-trial sweep."""
    folder = project / "runs" / "sweep-dist"
    result = subprocess.run(
        ["bash", "launch/tune.sh", "2", *TINY], cwd=project, capture_output=True, text=True,
        timeout=600, check=False,
        env=environ(SWEEP_DIR="runs/sweep-dist", KERASTUNER_ORACLE_PORT=str(_free_port())))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder, result


def test_each_worker_trains_its_own_trial_and_the_chief_ranks_them(sweep: tuple) -> None:
    folder, result = sweep
    trained = set()
    for worker in ("worker0", "worker1"):
        log = (folder.parent / f"sweep-dist.{worker}.log").read_text()
        assert f"worker {worker} done" in log
        trained |= {line.split("/")[-1] for line in log.splitlines()
                    if line.startswith("run directory: ")}
    assert trained == {"trial-0", "trial-1"}  # two workers, two trials, none run twice
    ranking = [line.split() for line in (folder / "ranking.txt").read_text().splitlines()]
    assert ranking[0] == ["rank", "trial", *SPACE, "val_accuracy", "time"]
    assert [row[1] for row in ranking[1:]] in (["0", "1"], ["1", "0"])
    scores = [float(row[5]) for row in ranking[1:]]
    assert scores == sorted(scores, reverse=True)
    assert "rank  trial" in result.stdout and "best.toml" in result.stdout
    for trial in ("trial-0", "trial-1"):  # TensorBoard's HParams view of the sweep
        events = list((folder / "logs" / trial).glob("*tfevents*"))
        assert events and b"hparams" in events[0].read_bytes()


def test_best_toml_holds_the_best_trials_values(sweep: tuple) -> None:
    folder, _ = sweep
    best_id = (folder / "ranking.txt").read_text().splitlines()[1].split()[1]
    best = tomllib.loads((folder / "best.toml").read_text())
    trial = tomllib.loads((folder / f"trial-{best_id}" / "config.toml").read_text())
    for key in SPACE:
        section, name = key.split(".")
        assert best[section][name] == trial[section][name]
    assert best["tune"]["space"]["model.width"] == [16, 32, 64]  # dotted keys stay quoted
    assert (folder / "plots" / "tune.png").stat().st_size > 1000


def test_a_trial_is_a_run_directory(sweep: tuple) -> None:
    # what evaluate, predict and export open (rundir.open_existing, read_meta), written by
    # the same train code; evaluating a trial end to end costs a TensorFlow start in CI
    folder, _ = sweep
    trial = folder / "trial-0"
    metrics = json.loads((trial / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and "final" in metrics
    for name in ("config.toml", "meta.json", "history.csv", "checkpoints/best.keras",
                 "checkpoints/last.keras", "plots/training_curves.png"):
        assert (trial / name).is_file(), name
    assert not (trial / ".lock").exists()  # the worker released it


def test_runs_lists_the_trials_with_their_values(project: Path, sweep: tuple) -> None:
    result = run_project(project, "runs")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert {"sweep-dist/trial-0", "sweep-dist/trial-1"} <= set(rows)
    assert "val_accuracy" in rows["sweep-dist/trial-0"]
    assert "train.learning_rate=" in rows["sweep-dist/trial-0"]


def test_mlflow_store_has_params_metrics_and_artifacts(project: Path, sweep: tuple) -> None:
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    folder, _ = sweep
    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("tune_demo")
    assert experiment is not None
    logged = {run.data.tags["run_dir"]: run for run in
              client.search_runs([experiment.experiment_id])}
    run = logged[str(folder / "trial-0")]
    assert run.info.status == "FINISHED"
    assert run.data.tags["template"] == "vision" and run.data.tags["backend"] == "tensorflow"
    assert {"task", "precision", "device"} <= set(run.data.tags)
    resolved = tomllib.loads((folder / "trial-0" / "config.toml").read_text())
    assert float(run.data.params["train.learning_rate"]) == resolved["train"]["learning_rate"]
    assert run.data.params["runtime.precision"] == "float32"  # resolved, not "auto"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [point.step for point in history] == [1]
    final = json.loads((folder / "trial-0" / "metrics.json").read_text())["final"]
    assert run.data.metrics["final.accuracy"] == pytest.approx(final["accuracy"])
    top = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"plots", "checkpoints", "metrics.json", "config.toml"} <= top
    assert [item.path for item in client.list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/best.keras"]


def test_resume_runs_only_the_trials_not_yet_run(project: Path, sweep: tuple) -> None:
    # run last among the sweep's tests: it adds trial-2
    folder, _ = sweep
    before = {p: p.stat().st_mtime_ns for p in folder.glob("trial-*/metrics.json")}
    result = run_project(project, "tune", "--resume", "--sweep-dir", str(folder),
                         "--set", "tune.max_trials=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in folder.glob("trial-*")) == ["trial-0", "trial-1", "trial-2"]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished trials not rerun
    assert result.stdout.count("run directory: ") == 1
    assert len((folder / "ranking.txt").read_text().splitlines()) == 4


@pytest.mark.parametrize(("line", "space", "message"), [
    ('"model.width" = [16, 32, 64]', '"model.widht" = [16, 32]',
     "error: [tune.space] 'model.widht': no such config key"),
    ('"augment.mixup" = "0.0..0.4"', '"augment.mixup" = "0.0-0.4"', "is not a range"),
    ('"model.width" = [16, 32, 64]', '"runtime.seed" = [1, 2]', "not tunable"),
])
def test_a_bad_space_is_one_line_before_keras(project: Path, tmp_path: Path, line: str,
                                              space: str, message: str) -> None:
    text = (project / "config.toml").read_text()
    assert line in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(line, space, 1))
    result = subprocess.run(  # keras hidden: a check after Keras started would fail on it
        [sys.executable, "-m", project.name, "tune", "--config", str(bad)], cwd=project,
        capture_output=True, text=True, timeout=120, check=False,
        env=environ(**hiding(tmp_path / "hide", "keras", "keras_tuner")))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


@pytest.mark.parametrize(("command", "hidden", "extra"), [
    (("train", "--set", "runtime.tracking=mlflow"), "mlflow", "pip install -e .[mlflow]"),
    (("tune",), "keras_tuner", "pip install -e .[tune]"),
])
def test_a_missing_extra_is_one_line_naming_it(project: Path, tmp_path: Path,
                                               command: tuple[str, ...], hidden: str,
                                               extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", project.name, *command], cwd=project, capture_output=True,
        text=True, timeout=120, check=False,
        env=environ(**hiding(tmp_path / "hide", hidden, "keras")))
    assert result.returncode == 2, result.stderr[-2000:]
    assert extra in last_line(result.stderr) and "Traceback" not in result.stderr
