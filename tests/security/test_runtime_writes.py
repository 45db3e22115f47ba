"""The generated project never writes through a symlink or outside the folder it writes.

A run directory someone hands you can hold symlinks (``RUN/predictions -> ~/x``);
before, ``predict`` wrote its CSV through them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from project_runner import last_line, run_project
from runtime import load

errors = load("errors")
rundir = load("rundir")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder the attacker would like written: it must stay exactly as it is."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "predictions.csv").write_text("precious\n")
    (folder / "bashrc").write_text("export PATH=/usr/bin\n")
    return folder


def _refused(result: object, folder: Path, before: dict[str, bytes]) -> str:
    assert result.returncode == 2, result.stderr[-2000:]  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    assert _snapshot(folder) == before
    return last_line(result.stderr)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_predict_refuses_a_symlinked_predictions_folder(vision_project: Path, run_copy: Path,
                                                        outside: Path) -> None:
    (run_copy / "predictions").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image))
    line = _refused(result, outside, before)
    assert "symlink" in line and str(run_copy / "predictions") in line
    assert not list(outside.glob(".*"))  # no temporary file either


@pytest.mark.slow
def test_predict_refuses_a_symlinked_output_file(vision_project: Path, run_copy: Path,
                                                 outside: Path) -> None:
    (run_copy / "predictions").mkdir()
    (run_copy / "predictions" / "predictions.csv").symlink_to(outside / "bashrc")
    before = _snapshot(outside)
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image))
    assert "symlink" in _refused(result, outside, before)
    assert [p.name for p in (run_copy / "predictions").iterdir()] == ["predictions.csv"]


@pytest.mark.slow
def test_export_refuses_a_symlinked_export_folder(vision_project: Path, run_copy: Path,
                                                  outside: Path) -> None:
    (run_copy / "export").symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    result = run_project(vision_project, "export", "--run-dir", str(run_copy))
    assert "symlink" in _refused(result, outside, before)


@pytest.mark.slow
def test_resume_refuses_symlinked_plots_and_tensorboard_folders(vision_project: Path,
                                                                run_copy: Path,
                                                                outside: Path) -> None:
    logs = run_copy / "logs" / "train"
    for child in logs.iterdir():
        child.unlink()
    logs.rmdir()
    logs.symlink_to(outside, target_is_directory=True)
    before = _snapshot(outside)
    checkpoint = (run_copy / "checkpoints" / "last.keras").read_bytes()
    result = run_project(vision_project, "train", "--resume", "--run-dir", str(run_copy),
                         "--set", "train.epochs=2")
    assert "symlink" in _refused(result, outside, before)
    assert (run_copy / "checkpoints" / "last.keras").read_bytes() == checkpoint


# The helper every write goes through, in-process.

def test_write_via_refuses_symlinked_folders_and_files(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "run"
    (root / "plots").mkdir(parents=True)
    (root / "plots" / "sub").symlink_to(outside, target_is_directory=True)
    (root / "plots" / "curve.png").symlink_to(outside / "bashrc")
    rundir.add_write_root(root)
    before = _snapshot(outside)
    with pytest.raises(errors.RunDirError, match="symlink"):
        rundir.atomic_write_text(root / "plots" / "sub" / "deeper" / "x.csv", "a\n")
    with pytest.raises(errors.RunDirError, match="symlink"):
        rundir.atomic_write_text(root / "plots" / "curve.png", "a\n")
    with pytest.raises(errors.RunDirError, match="outside"):
        rundir.write_via(root / "plots" / ".." / ".." / "outside" / "bashrc",
                         lambda tmp: tmp.write_text("a\n"), root)
    with pytest.raises(errors.RunDirError, match="outside"):
        rundir.safe_folder(outside, root)
    assert _snapshot(outside) == before
    assert sorted(p.name for p in (root / "plots").iterdir()) == ["curve.png", "sub"]


def test_write_via_leaves_nothing_behind_when_the_writer_fails(tmp_path: Path) -> None:
    root = tmp_path / "run"
    rundir.add_write_root(root)
    target = root / "export" / "model.keras"
    rundir.atomic_write_text(target, "old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        rundir.write_via(target, fail)
    assert target.read_text() == "old"
    assert os.listdir(target.parent) == ["model.keras"]


def test_write_via_replaces_a_folder_output(tmp_path: Path) -> None:
    target = tmp_path / "saved_model"
    for version in ("1", "2"):
        def write(tmp: Path, version: str = version) -> None:
            tmp.mkdir()
            (tmp / "saved_model.pb").write_text(version)
        rundir.write_via(target, write)
    assert (target / "saved_model.pb").read_text() == "2"
    assert os.listdir(tmp_path) == ["saved_model"]
