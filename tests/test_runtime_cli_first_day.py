"""A generated project's command line on a newcomer's first day (issue 15).

Each mistake gets one line and exit code 2, before Keras or TensorFlow starts
(checked by making ``import keras`` fail: a check that ran after it would show
that ImportError instead). Ctrl-C saves like SIGTERM. No start-up noise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project_runner import generate, hiding, last_line, run_project

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NOISE = ("absl::InitializeLog", "cuInit", "port.cc", "cudart_stub", "cpu_feature_guard",
         "This TensorFlow binary")


def blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """Environment whose Python cannot import ``modules``."""
    return hiding(tmp_path / f"hide-{'-'.join(modules)}", *modules)


def run(project: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        module: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module or project.name, *args],
                          cwd=cwd or project, env=environ, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("firstday"), "first_day", "fraud")


@pytest.fixture()
def fake_run(tmp_path: Path, project: Path) -> Path:
    """A folder that looks like a finished run to checks that do not load the model."""
    run = tmp_path / "fake-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text((project / "config.toml").read_text())
    (run / "checkpoints" / "best.keras").write_bytes(b"not read by these checks")
    return run


def test_dash_h_is_help(project: Path) -> None:
    for args in (("-h",), ("train", "-h"), ("predict", "-h")):
        result = run(project, *args)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


@pytest.mark.parametrize("setting", ["train.epochs=0", "train.epochs=-3", "train.batch_size=0",
                                     "train.learning_rate=-0.1", "train.learning_rate=0",
                                     "model.dropout=1.5", "train.early_stopping_patience=-1"])
def test_out_of_range_values_are_one_line_before_keras(project: Path, tmp_path: Path,
                                                       setting: str) -> None:
    run_dir = tmp_path / "never"
    result = run(project, "train", "--run-dir", str(run_dir), "--set", setting,
                 env=blocking(tmp_path, "keras", "tensorflow", "jax"))
    one_line_error(result, setting.split("=")[0], "must be")
    assert not run_dir.exists()


def test_range_is_checked_in_config_file_too(project: Path, tmp_path: Path) -> None:
    config = tmp_path / "zero.toml"
    config.write_text((project / "config.toml").read_text().replace(
        "epochs = 12", "epochs = 0", 1))
    result = run(project, "train", "--config", str(config), "--run-dir", str(tmp_path / "r"),
                 env=blocking(tmp_path, "keras", "tensorflow", "jax"))
    one_line_error(result, "train.epochs must be at least 1")


def test_missing_predict_input_is_reported_before_keras(project: Path, fake_run: Path,
                                                        tmp_path: Path) -> None:
    result = run(project, "predict", "--run-dir", str(fake_run), str(tmp_path / "nope.csv"),
                 env=blocking(tmp_path, "keras", "tensorflow", "jax"))
    one_line_error(result, "input not found", "nope.csv")


def test_missing_run_dir_is_reported_before_keras(project: Path, tmp_path: Path) -> None:
    for command in ("evaluate", "export"):
        result = run(project, command, "--run-dir", str(tmp_path / "no-run"),
                     env=blocking(tmp_path, "keras", "tensorflow", "jax"))
        one_line_error(result, "not a run directory")


def test_missing_backend_names_the_extra(project: Path, tmp_path: Path) -> None:
    result = run(project, "train", "--run-dir", str(tmp_path / "r"),
                 env={"KERAS_BACKEND": "jax", **blocking(tmp_path, "jax")})
    one_line_error(result, "pip install -e .[jax]")
    assert not (tmp_path / "r").exists()


def test_wrong_folder_says_where_to_run_from(project: Path, tmp_path: Path) -> None:
    """From the folder above the project, python -m NAME names the folder to cd into."""
    result = run(project, "train", cwd=project.parent)
    one_line_error(result, f"cd {project.name}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(project, "train", cwd=elsewhere, env={"PYTHONPATH": str(project)})
    one_line_error(result, "run this from the project folder")


def test_console_script_entry_point(project: Path) -> None:
    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts[project.name].partition(":")
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv = ['{project.name}', 'train', '-h']; "
                               f"from {module} import {function}; {function}()"],
        cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert f"Usage: {project.name} train" in result.stdout


def test_failed_run_leaves_no_empty_folder(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-data"
    empty.mkdir()
    run_dir = tmp_path / "runs" / "failed"
    result = run(project, "train", "--run-dir", str(run_dir), "--set", f'data.dir="{empty}"')
    assert result.returncode == 2, result.stderr[-3000:]
    assert not run_dir.exists()
    # a folder the user had is never removed, even when it is empty
    mine = tmp_path / "mine"
    mine.mkdir()
    result = run(project, "train", "--run-dir", str(mine), "--set", f'data.dir="{empty}"')
    assert result.returncode == 2
    assert mine.is_dir()


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "level"), [("tensorflow", "3"), ("jax", None)])
def test_no_start_up_noise_and_one_pr_auc(project: Path, tmp_path: Path, backend: str,
                                          level: str | None) -> None:
    """No TensorFlow start-up lines (on JAX, TensorBoard imports TF), whether the user left
    TF_CPP_MIN_LOG_LEVEL unset or asked for quiet with it; the epoch's val_pr_auc is the
    summary's PR-AUC."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(KERAS_BACKEND=backend, PYTHONUNBUFFERED="1")
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", project.name, "train", "--run-dir", str(run_dir),
         "--set", "train.epochs=1", "--set", "model.hidden=[8]", "--set", "train.verbose=2"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    for noise in NOISE:
        assert noise not in result.stderr, result.stderr[-3000:]
    epoch = re.search(r"val_pr_auc: ([0-9.]+)", result.stdout)
    summary = re.search(r"validation pr_auc: ([0-9.]+)", result.stdout)
    assert epoch and summary, result.stdout
    assert abs(float(epoch.group(1)) - float(summary.group(1))) <= 1e-4, result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best"]["val_pr_auc"] == pytest.approx(metrics["final"]["pr_auc"], abs=1e-9)
    assert metrics["best"]["val_roc_auc"] == pytest.approx(metrics["final"]["roc_auc"], abs=1e-9)


def _start_long_training(project: Path, run_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", project.name, "train", "--run-dir", str(run_dir),
         "--set", "train.epochs=3", "--set", "train.batch_size=8", "--set", "model.hidden=[8]",
         "--set", "train.verbose=0"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # "data: ..." comes right before fit starts
        if line.startswith("data:"):
            break
    time.sleep(4)  # well into the 2000 steps of epoch 1
    return process


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_names_resume(project: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    process = _start_long_training(project, run_dir)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "stopped by Ctrl-C in epoch 1 after step" in last_line(stderr)
    assert f"--resume --run-dir {run_dir}" in last_line(stderr)
    assert (run_dir / "checkpoints" / "last.keras").is_file()
    resumed = run_project(project, "train", "--resume", "--run-dir", str(run_dir),
                          "--set", "train.epochs=1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once(project: Path, tmp_path: Path) -> None:
    process = _start_long_training(project, tmp_path / "run")
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    seen = ""
    while "press Ctrl-C again" not in seen:  # the first press was handled: press again
        line = process.stderr.readline()
        assert line, seen
        seen += line
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    stderr = seen + stderr
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "interrupted again" in stderr


@pytest.mark.parametrize("setting", ["train.epochs=0", "train.batch_size=-2"])
def test_appgen_new_refuses_out_of_range_values(tmp_path: Path, setting: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator checks --set with the project's own rule, ranges included."""
    from click.testing import CliRunner

    from appgen.cli import main

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["new", "shop", "-t", "fraud", "--no-sample-data",
                                       "--set", setting])
    assert result.exit_code == 2, result.output
    assert setting.split("=")[0] in result.stderr and "must be at least 1" in result.stderr
    assert not (tmp_path / "shop").exists()
