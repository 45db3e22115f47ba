"""End to end: generate the vision project and use it as a new user would."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from project_runner import beats_chance, generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

QUICK = ("--set", "train.epochs=2", "--set", "data.max_images=30", "--set", "train.batch_size=32")
# Long enough to learn (0.48-0.62 validation accuracy over seeds; 0.10-0.15 on shuffled labels).
LEARN = ("--set", "train.epochs=4", "--set", "data.max_images=30", "--set", "train.batch_size=16",
         "--set", "train.warmup_epochs=0", "--set", "train.learning_rate=0.001")
MARGIN = 0.25  # over the majority class (0.10 on the ten digits)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("vision"), "digits_demo", "vision")


@pytest.fixture(scope="module")
def trained_run(project: Path) -> Path:
    # A test split: the last 4 digits of each class, which max_images=30 keeps out of training.
    held_out = project / "held_out"
    for folder in sorted((project / "data" / "train").iterdir()):
        (held_out / folder.name).mkdir(parents=True)
        for image in sorted(folder.glob("*.png"))[-4:]:
            shutil.copy(image, held_out / folder.name / image.name)
    run = project / "runs" / "tf"
    stdout = train_ok(project, run, *LEARN, "--set", f'data.test_dir="{held_out}"').stdout
    assert "validation accuracy" in stdout and "chance level: 0.1000" in stdout
    assert "test accuracy: " in stdout and "on 40 samples" in stdout
    return run


def test_the_test_split_is_scored_once_after_training(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["scored_on"] == "test" and test["samples"] == 40
    assert test["data"] == str(trained_run.parent.parent / "held_out")
    assert test["chance_accuracy"] == pytest.approx(0.1)
    assert (trained_run / "plots" / "test" / "confusion_matrix.png").stat().st_size > 1000


def test_train_learns_and_writes_the_run_directory(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 4
    assert metrics["final"]["chance_accuracy"] == pytest.approx(0.1)
    assert beats_chance(metrics["final"], "accuracy", MARGIN), metrics["final"]
    assert set(metrics["final"]["per_class_recall"]) == {str(d) for d in range(10)}
    history = (trained_run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 5
    for name in ("training_curves", "confusion_matrix", "validation_predictions"):
        assert (trained_run / "plots" / f"{name}.png").stat().st_size > 1000
    resolved = (trained_run / "config.toml").read_text()
    assert 'precision = "float32"' in resolved and "jit_compile = false" in resolved
    assert any((trained_run / "logs").rglob("*tfevents*"))


def test_evaluate_predict_export(project: Path, trained_run: Path, tmp_path: Path) -> None:
    result = run_project(project, "evaluate", "--run-dir", str(trained_run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((trained_run / "evaluation.json").read_text())["samples"] > 0

    images = sorted((project / "data" / "train" / "3").glob("*.png"))[:3]
    video = _write_video(tmp_path / "clip.mp4", images)
    out = tmp_path / "predictions"
    result = run_project(project, "predict", "--run-dir", str(trained_run), str(images[0]),
                         str(project / "data" / "train" / "7"), str(video), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "file,class,probability,top_k" and len(rows) > 3
    tags = (out / "clip.tags.csv").read_text().splitlines()
    assert tags[0] == "second,tags" and len(tags) >= 2
    assert "frames/s" in result.stdout
    result = run_project(project, "predict", "--run-dir", str(trained_run), str(images[0]),
                         "--out", str(out), "--set", "predict.top_k=1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "predictions.csv").read_text().splitlines()[1].count(";") == 0
    result = run_project(project, "predict", "--run-dir", str(trained_run), str(images[0]),
                         "--set", "predict.no_such_knob=1")
    assert result.returncode == 2 and "no_such_knob" in last_line(result.stderr)

    for fmt, produced in (("keras", "model.keras"), ("saved_model", "saved_model")):
        result = run_project(project, "export", "--run-dir", str(trained_run), "--format", fmt)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (trained_run / "export" / produced).exists()


def test_bring_your_own_rgb_data_of_any_size(project: Path, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        folder = tmp_path / "mine" / "train" / name
        folder.mkdir(parents=True)
        for i in range(12):
            size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
            pixels = rng.integers(0, 60, (size[1], size[0], 3)).astype(np.uint8)
            pixels[:] = np.clip(pixels + np.array(colour, np.uint8), 0, 255)
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
    run = tmp_path / "run"
    result = run_project(project, "train", "--run-dir", str(run), "--set",
                         f'data.dir="{tmp_path / "mine"}"', "--set", "train.epochs=1")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["class_names"] == ["blue", "red"] and meta["image_shape"][2] == 3


@pytest.mark.parametrize(("setting", "message"), [
    ("data.dir=\"/no/such/folder\"", "does not exist"),
    ("train.epochs=\"ten\"", "train.epochs must be an integer"),
    ("model.backbone=\"alexnet\"", "model.backbone must be one of"),
])
def test_bad_settings_fail_in_one_line(project: Path, tmp_path: Path, setting: str,
                                       message: str) -> None:
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"), "--set", setting)
    assert result.returncode == 2
    assert message in last_line(result.stderr) and "Traceback" not in result.stderr


def test_a_monitor_the_model_does_not_log_is_named(project: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    result = run_project(project, "train", "--run-dir", str(run),
                         "--set", 'train.monitor="val_acc"', "--set", "train.epochs=1",
                         "--set", "data.max_images=10")
    assert result.returncode == 2, result.stderr[-2000:]
    line = last_line(result.stderr)
    assert "train.monitor = 'val_acc'" in line and "val_accuracy" in line, line
    assert "Traceback" not in result.stderr
    assert not (run / "checkpoints" / "best.keras").exists()


def test_unreadable_image_is_named(project: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(project / "data", data)
    (data / "train" / "4" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"')
    assert result.returncode == 2
    assert "corrupt.png" in last_line(result.stderr)
    assert not (tmp_path / "r" / "checkpoints" / "last.keras").exists()


def _write_video(path: Path, frames: list[Path]) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4.0, (32, 32))
    for index in range(12):
        image = cv2.imread(str(frames[index % len(frames)]))
        writer.write(cv2.resize(image, (32, 32)))
    writer.release()
    return path


def test_the_learning_check_fails_on_shuffled_labels(project: Path, tmp_path: Path) -> None:
    """The same training on the same images with their labels shuffled across the class
    folders must not pass the check that the real labels pass."""
    files = sorted((project / "data" / "train").glob("*/*.png"))
    labels = [path.parent.name for path in files]
    random.Random(0).shuffle(labels)
    for path, label in zip(files, labels, strict=True):
        (tmp_path / "shuffled" / "train" / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / "shuffled" / "train" / label / path.name)
    run = tmp_path / "run"
    stdout = train_ok(project, run, *LEARN, "--set", f'data.dir="{tmp_path / "shuffled"}"').stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert not beats_chance(metrics["final"], "accuracy", MARGIN), metrics["final"]
    # No test split: the numbers are named as validation numbers, in metrics.json and on screen.
    assert metrics["scored_on"] == "validation" and "test" not in metrics
    assert "these are validation numbers" in stdout and "set data.test_dir" in stdout
