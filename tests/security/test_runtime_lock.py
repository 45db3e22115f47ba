"""A run directory is written by one command at a time (RUN/.lock).

Before the lock, two ``train`` processes on one --run-dir both exited 0 and left a
mixed directory; a ``predict`` could write into a run another command was using.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from project_runner import last_line, run_project
from runtime import RUNTIME_DIR, load

from .conftest import TINY_VISION

errors = load("errors")
rundir = load("rundir")

LONG = ("--set", "train.epochs=500")  # runs until the test stops it


def _start_train(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", project.name, "train", *args], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lock(run: Path, process: subprocess.Popen[str], timeout: float = 180) -> dict:
    """The lock's content once ``process`` holds it; ``process`` is then paused (SIGSTOP) so
    that it cannot finish early (early stopping, a fast machine) and release the lock while
    the test still relies on it. ``_stop`` resumes and ends it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"train exited early: {process.communicate()[1][-2000:]}")
        try:
            lock = json.loads((run / ".lock").read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.2)
            continue
        process.send_signal(signal.SIGSTOP)
        return lock
    pytest.fail("train never locked its run directory")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
    try:
        process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _refused_naming(result: subprocess.CompletedProcess[str], pid: int, command: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    line = last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert f"pid {pid} on host {socket.gethostname()}" in line and f"'{command}'" in line, line


@pytest.mark.slow
def test_second_train_on_the_same_run_dir_is_refused(vision_project: Path, tmp_path: Path
                                                     ) -> None:
    run = tmp_path / "busy"
    first = _start_train(vision_project, "--run-dir", str(run), *TINY_VISION, *LONG)
    try:
        lock = _wait_for_lock(run, first)
        assert lock["pid"] == first.pid and lock["command"] == "train"
        second = run_project(vision_project, "train", "--run-dir", str(run), *TINY_VISION)
        _refused_naming(second, first.pid, "train")
        assert first.poll() is None  # the first run goes on undisturbed
        assert json.loads((run / ".lock").read_text())["pid"] == first.pid
    finally:
        _stop(first)


@pytest.mark.slow
def test_predict_evaluate_export_refused_while_train_resumes(vision_project: Path,
                                                             run_copy: Path,
                                                             tmp_path: Path) -> None:
    before = sorted(p.relative_to(run_copy) for p in run_copy.rglob("*"))
    trainer = _start_train(vision_project, "--resume", "--run-dir", str(run_copy), *LONG)
    try:
        _wait_for_lock(run_copy, trainer)
        image = next((vision_project / "data" / "train" / "3").glob("*.png"))
        for command in (["predict", "--run-dir", str(run_copy), str(image)],
                        ["evaluate", "--run-dir", str(run_copy)],
                        ["export", "--run-dir", str(run_copy)]):
            _refused_naming(run_project(vision_project, *command), trainer.pid, "train --resume")
        assert not (run_copy / "predictions").exists() and not (run_copy / "export").exists()
        assert not (run_copy / "evaluation.json").exists()
    finally:
        _stop(trainer)
    assert set(before) <= {p.relative_to(run_copy) for p in run_copy.rglob("*")}


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_stale_lock_of_a_dead_process_on_this_host_is_taken_over(vision_project: Path,
                                                                  run_copy: Path) -> None:
    (run_copy / ".lock").write_text(json.dumps(
        {"pid": _dead_pid(), "host": socket.gethostname(), "command": "train"}))
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_copy / "predictions" / "predictions.csv").is_file()
    assert not (run_copy / ".lock").exists()  # released at exit
    assert not list(run_copy.glob(".lock*"))


@pytest.mark.slow
def test_lock_from_another_host_is_respected(vision_project: Path, run_copy: Path) -> None:
    (run_copy / ".lock").write_text(json.dumps(
        {"pid": _dead_pid(), "host": "gpu-node-7.example", "command": "train"}))
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "on host gpu-node-7.example" in last_line(result.stderr)
    assert not (run_copy / "predictions").exists()


@pytest.mark.slow
def test_predict_into_another_folder_needs_no_lock(vision_project: Path, run_copy: Path,
                                                   tmp_path: Path) -> None:
    (run_copy / ".lock").write_text(json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "command": "train"}))
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    out = tmp_path / "elsewhere"
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image),
                         "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "predictions.csv").is_file()
    assert json.loads((run_copy / ".lock").read_text())["pid"] == os.getpid()  # untouched


HOLDER = """
import sys, time
sys.path.insert(0, {tests!r})
from runtime import load
load("rundir").hold_lock({run!r}, "train")
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_held_by_a_live_process_then_taken_over_when_it_dies(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(tests=str(RUNTIME_DIR.parents[3] / "tests"),
                                             run=str(run))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(errors.RunDirError,
                           match=f"in use by 'train' \\(pid {holder.pid} on host "):
            rundir.hold_lock(run, "predict")
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file stays behind
        holder.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == holder.pid
    rundir.hold_lock(run, "predict")  # a dead process on this host: taken over
    assert json.loads((run / ".lock").read_text())["pid"] == os.getpid()
    rundir.release_locks()
    assert list(run.iterdir()) == []


def test_a_symlink_at_the_lock_name_is_not_followed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (run / ".lock").symlink_to(victim)
    with pytest.raises(errors.RunDirError, match="remove it if no command is using"):
        rundir.hold_lock(run, "train")
    assert victim.read_text() == "keep"
