"""Training survives SIGKILL and SIGTERM, and a NaN loss never costs the last good checkpoint.

Real processes, real signals: a generated project trains in a subprocess, is
killed once its first epoch is on disk, and `train --resume` finishes the run
with every configured epoch exactly once.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project_runner import generate, last_line, run_project

pytestmark = pytest.mark.slow

# Small enough to be quick, slow enough per epoch that the kill lands mid-run.
SMALL = {
    "vision": ("data.max_images=30", "train.batch_size=16"),
    "fraud": ("train.batch_size=64", "train.early_stopping_patience=0"),
}


def _start(project: Path, run: Path, *overrides: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", project.name, "train", "--run-dir", str(run)]
    for item in overrides:
        args += ["--set", item]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(args, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(run: Path, count: int, proc: subprocess.Popen[str],
                     timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = run / "metrics.json"
        if metrics.is_file() and json.loads(metrics.read_text())["epochs_completed"] >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError("no epoch completed in time")


def _assert_complete(run: Path, epochs: int) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == epochs and "mid_epoch" not in metrics
    rows = (run / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [str(e) for e in range(1, epochs + 1)]
    rates = [float(row.split(",")[-1]) for row in rows]
    assert all(math.isfinite(rate) for rate in rates)


@pytest.mark.parametrize("template", sorted(SMALL))
def test_sigkill_then_resume_finishes_every_epoch_once(tmp_path: Path, template: str) -> None:
    project = generate(tmp_path, f"kill_{template}", template)
    run = tmp_path / "run"
    proc = _start(project, run, "train.epochs=4", *SMALL[template])
    _wait_for_epochs(run, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished before the kill
    assert json.loads((run / "metrics.json").read_text())["epochs_completed"] < 4
    best_before = json.loads((run / "metrics.json").read_text())["best"]
    for leftover in run.rglob("*.tmp*"):  # a kill mid-write may leave a temp file, never a
        assert leftover.name.startswith(".")  # half-written checkpoint or metrics.json
    result = run_project(project, "train", "--resume", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stdout
    _assert_complete(run, 4)
    best_after = json.loads((run / "metrics.json").read_text())["best"]
    monitor = json.loads((run / "metrics.json").read_text())["monitor"]
    assert best_after[monitor] >= best_before[monitor]  # val_accuracy: best is remembered


def test_sigterm_saves_and_resume_continues(tmp_path: Path) -> None:
    project = generate(tmp_path, "term_vision", "vision")
    run = tmp_path / "run"
    proc = _start(project, run, "train.epochs=3", *SMALL["vision"])
    _wait_for_epochs(run, 1, proc)
    saved_before = (run / "checkpoints" / "last.keras").stat().st_mtime_ns
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr[-2000:]
    assert "stopped by SIGTERM" in last_line(stderr) and "--resume" in last_line(stderr)
    metrics = json.loads((run / "metrics.json").read_text())
    if metrics["epochs_completed"] < 3:  # stopped inside an epoch: a fresh checkpoint
        assert metrics["mid_epoch"]["epoch"] == metrics["epochs_completed"] + 1
        assert (run / "checkpoints" / "last.keras").stat().st_mtime_ns > saved_before
    result = run_project(project, "train", "--resume", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_complete(run, 3)


def test_nan_loss_stops_with_a_clear_message(tmp_path: Path) -> None:
    project = generate(tmp_path, "nan_vision", "vision")
    run = tmp_path / "run"
    result = run_project(project, "train", "--run-dir", str(run), "--set", "train.epochs=2",
                         "--set", "train.learning_rate=1e30", "--set", "train.warmup_epochs=0.0",
                         *[arg for item in SMALL["vision"] for arg in ("--set", item)])
    assert result.returncode == 2, result.stderr[-2000:]
    assert "NaN or infinite" in last_line(result.stderr)
    assert not (run / "checkpoints" / "last.keras").exists()
