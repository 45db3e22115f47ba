"""What a run directory says about itself is data: re-validated, and harmless in CSV output."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from project_runner import last_line, run_project
from runtime import load

csv_out = load("csv_out")
errors = load("errors")
rundir = load("rundir")

HOSTILE = ["=HYPERLINK(\"http://x.example\",\"open\")", "+cmd|' /C calc'!A0", "-2+3",
           "@SUM(A1:A9)", "\tTAB", "\rCR", "-0.25", "plain", "seven", "=1+1"]


def test_formula_cells_are_neutralised_and_numbers_kept() -> None:
    assert [csv_out.safe_cell(v) for v in HOSTILE] == [
        "'=HYPERLINK(\"http://x.example\",\"open\")", "'+cmd|' /C calc'!A0", "'-2+3",
        "'@SUM(A1:A9)", "'\tTAB", "'\rCR", "-0.25", "plain", "seven", "'=1+1"]
    assert csv_out.safe_row([-0.25, 3, "-1.5e-3", "+7", "-", "", None]) == [
        -0.25, 3, "-1.5e-3", "+7", "'-", "", None]
    rows = list(csv.reader(io.StringIO(csv_out.csv_text(["file", "=steer"],
                                                        [["a.png", "-0.250000"]]))))
    assert rows == [["file", "'=steer"], ["a.png", "-0.250000"]]


@pytest.mark.slow
def test_predict_csv_neutralises_class_names_from_meta(vision_project: Path,
                                                       run_copy: Path) -> None:
    meta = json.loads((run_copy / "meta.json").read_text())
    meta["class_names"] = HOSTILE[:4] + [
        "@@x", "+SUM(1)", "-0.25", "plain", "seven", "=1+1"]  # no control characters here
    (run_copy / "meta.json").write_text(json.dumps(meta))
    images = sorted((vision_project / "data" / "train" / "3").glob("*.png"))[:4]
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy),
                         *map(str, images))
    assert result.returncode == 0, result.stderr[-2000:]
    with (run_copy / "predictions" / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        for cell in (row["class"], row["top_k"]):
            assert not cell.startswith(("=", "+", "@")), cell
            assert not cell.startswith("-") or cell == "-0.25" or cell.startswith("-0.25:"), cell
        assert row["class"] in ("'=HYPERLINK(\"http://x.example\",\"open\")",
                                "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1:A9)", "'@@x",
                                "'+SUM(1)", "-0.25", "plain", "seven", "'=1+1")
        float(row["probability"])  # numbers stay numbers


def _meta_with(run: Path, **changes: object) -> None:
    meta = json.loads((run / "meta.json").read_text())
    meta.update(changes)
    (run / "meta.json").write_text(json.dumps(meta))


@pytest.mark.slow
@pytest.mark.parametrize(("change", "message"), [
    ({"class_names": ["a", "b", "c"]}, "lists 3 class_names but the model predicts 10"),
    ({"class_names": [str(i) for i in range(9)] + ["\x1b]0;pwned\x07"]}, "printable"),
])
def test_predict_revalidates_meta_json(vision_project: Path, run_copy: Path,
                                       change: dict[str, object], message: str) -> None:
    _meta_with(run_copy, **change)
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    result = run_project(vision_project, "predict", "--run-dir", str(run_copy), str(image))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = last_line(result.stderr)
    assert message in line and "meta.json" in line
    assert "\x1b" not in result.stderr  # a control sequence is never echoed to the terminal
    assert not (run_copy / "predictions").exists()


@pytest.mark.parametrize(("text", "message"), [
    ('{"class_names": "0123456789"}', "class_names must be a list"),
    ('{"class_names": ["a", "a"]}', "repeats a name"),
    ('{"class_names": ["a", 2]}', "printable strings"),
    ('{"class_names": ["a", "b"], "num_classes": 3}', "num_classes must equal"),
    ('{"image_shape": [32, 32, "1; rm -rf /"]}', "image_shape must be"),
    ('{"targets": []}', "targets must be a list of 1"),
    ('{"task": ["classification"]}', "task must be a string"),
    ('{"class_names": [', "is not valid JSON"),
    ('["a"]', "must hold a JSON object"),
])
def test_meta_json_is_revalidated(tmp_path: Path, text: str, message: str) -> None:
    run = rundir.RunDir(tmp_path)
    run.meta.write_text(text)
    with pytest.raises(errors.RunDirError, match=re.escape(message)):
        rundir.read_meta(run)


def test_metrics_json_that_is_not_an_object_is_a_one_line_error(tmp_path: Path) -> None:
    run = rundir.RunDir(tmp_path)
    run.metrics.write_text("[1, 2]")
    with pytest.raises(errors.RunDirError, match="metrics.json must hold a JSON object"):
        run.read_metrics()
    run.metrics.write_text("\xff")
    with pytest.raises(errors.RunDirError, match="not valid JSON"):
        run.read_metrics()


def test_resumed_history_that_is_not_numbers_is_a_one_line_error(tmp_path: Path) -> None:
    callbacks = load("callbacks")
    run = rundir.RunDir(tmp_path)
    run.history.write_text('epoch,loss\n1,"=HYPERLINK(""http://x.example"")"\n')
    with pytest.raises(errors.RunDirError, match="history.csv is not a history written by train"):
        callbacks._read_history(run)
    run.history.write_text("epoch,loss,val_loss\n1,0.5,\n2,0.25,0.3\n")
    assert callbacks._read_history(run) == [{"epoch": 1, "loss": 0.5},
                                             {"epoch": 2, "loss": 0.25, "val_loss": 0.3}]
