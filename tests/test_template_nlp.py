"""End to end: generate the nlp project and use it as a new user would."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from project_runner import generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

QUICK = ("--set", "train.epochs=1", "--set", "data.max_rows=600", "--set", "train.batch_size=32")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("nlp"), "reviews_demo", "nlp")


@pytest.fixture(scope="module")
def trained_run(project: Path) -> Path:
    run = project / "runs" / "tf"
    assert "validation accuracy" in train_ok(project, run, *QUICK).stdout
    return run


def test_train_writes_the_run_directory(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    final = metrics["final"]
    assert 0.0 <= final["accuracy"] <= 1.0 and 0.0 <= final["macro_f1"] <= 1.0
    assert set(final["per_class_recall"]) == {"negative", "positive"}
    for name in ("training_curves", "confusion_matrix"):
        assert (trained_run / "plots" / f"{name}.png").stat().st_size > 1000
    meta = json.loads((trained_run / "meta.json").read_text())
    assert meta["vocabulary"][:2] == ["[PAD]", "[UNK]"] and meta["sequence_length"] >= 16
    assert (trained_run / "checkpoints" / "best.keras").is_file()


def test_predict_raw_text_and_files(project: Path, trained_run: Path, tmp_path: Path) -> None:
    texts = tmp_path / "lines.txt"
    texts.write_text("the plot was superb\n\nthe ending was awful\n", encoding="utf-8")
    out = tmp_path / "predictions"
    result = run_project(project, "predict", "--run-dir", str(trained_run),
                         "the acting was not bad at all", str(texts),
                         str(project / "data" / "val.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    with (out / "predictions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["text"] == "the acting was not bad at all"
    assert len(rows) == 3 + 600  # one argument, two non-empty lines, every val.csv row
    assert {row["label"] for row in rows} <= {"negative", "positive"}
    assert all(0.5 <= float(row["probability"]) <= 1.0 for row in rows)
    assert "the acting was not bad at all" in result.stdout


def test_same_project_trains_on_jax_without_keras_hub_learner(project: Path) -> None:
    run = project / "runs" / "jax"
    result = run_project(project, "train", "--run-dir", str(run), *QUICK,
                         "--set", 'tokenizer.learner="python"', backend="jax")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend jax" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and 0.0 <= metrics["final"]["accuracy"] <= 1.0
    assert json.loads((run / "meta.json").read_text())["vocabulary_learner"] == "python"


def test_non_utf8_file_is_named_in_one_line(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "latin"
    data.mkdir()
    (data / "train.csv").write_bytes("text,label\ntrès bien,positive\nnul,negative\n"
                                     .encode("latin-1"))
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"')
    assert result.returncode == 2
    assert "train.csv is not UTF-8" in last_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_label_column_is_named(project: Path, tmp_path: Path) -> None:
    data = tmp_path / "nolabel"
    data.mkdir()
    (data / "train.csv").write_text("review,stars\ngood,5\nbad,1\n", encoding="utf-8")
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.dir="{data}"')
    assert result.returncode == 2
    assert "train.csv: no column 'text'" in last_line(result.stderr)
