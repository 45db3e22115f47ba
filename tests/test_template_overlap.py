"""Templates warn, in one line, when validation samples duplicate training samples, and
medical classification says when it could only split per file (no patient to group by).

The templates' modules are imported as a generated project would (tests/template_modules.py)
and fed tiny folders; nothing is trained.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import template_modules
from PIL import Image


def _pngs(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(folder / name)


def _medical_config(root: Path, val_dir: str = "", group_by: str = "auto") -> dict:
    return {"data": {"dir": str(root), "val_dir": val_dir, "val_fraction": 0.3,
                     "group_by": group_by, "image_size": 16, "channels": 1, "window": "auto"},
            "runtime": {"seed": 0}}


def test_medical_split_per_file_is_said_in_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    classify_data = template_modules.load("medical", "classify_data")
    for index, label in enumerate(("normal", "tumour")):
        _pngs(tmp_path / "flat" / label, [f"slice{i}.png" for i in range(6)], index)
    classify_data.load_splits(_medical_config(tmp_path / "flat"), batch_size=4)
    lines = [line for line in capsys.readouterr().out.splitlines() if "per file" in line]
    assert len(lines) == 1
    assert lines[0].startswith("warning: 12 of 12 slices have no DICOM PatientID")
    assert "may sit in both training and validation" in lines[0]

    # Patient prefixes to group by, or a per-file split asked for: nothing to warn about.
    for index, label in enumerate(("normal", "tumour")):
        _pngs(tmp_path / "grouped" / label, [f"P{i % 3}_slice{i}.png" for i in range(6)], index)
    classify_data.load_splits(_medical_config(tmp_path / "grouped"), batch_size=4)
    classify_data.load_splits(_medical_config(tmp_path / "flat", group_by="file"), batch_size=4)
    assert "per file" not in capsys.readouterr().out


def test_medical_validation_slices_copied_from_training_are_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    classify_data = template_modules.load("medical", "classify_data")
    for index, label in enumerate(("normal", "tumour")):
        _pngs(tmp_path / "train" / label, [f"P{i}_s.png" for i in range(4)], index)
        _pngs(tmp_path / "val" / label, [f"Q{i}_s.png" for i in range(2)], 10 + index)
    copied = tmp_path / "val" / "tumour" / "Q9_s.png"
    copied.write_bytes((tmp_path / "train" / "tumour" / "P1_s.png").read_bytes())
    classify_data.load_splits(_medical_config(tmp_path / "train", str(tmp_path / "val")),
                              batch_size=4)
    out = capsys.readouterr().out
    assert "warning: 1 of 5 validation slices also appear in the training data" in out


def test_nlp_validation_texts_repeating_training_texts_are_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = template_modules.load("nlp", "data")
    config = template_modules.load("nlp", "config")
    rows = [(f"review number {i} was {'good' if i % 2 else 'bad'}", ("neg", "pos")[i % 2])
            for i in range(40)]
    for name, part in (("train.csv", rows), ("val.csv", [("Review number 3 was GOOD!", "pos"),
                                                         ("an unseen review", "neg")])):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *part])
    settings = {"data": {"task": "classification", "dir": str(tmp_path), "text_column": "text",
                         "label_column": "label", "train_file": "", "val_file": "",
                         "max_rows": 0, "val_fraction": 0.2, "sequence_length": "auto"},
                "tokenizer": {"vocabulary_size": 64, "learner": "python", "lowercase": True,
                              "strip_accents": True},
                "model": {"preset": ""}, "runtime": {"seed": 0}}
    assert config.get(settings, "data.dir") == str(tmp_path)
    splits = data.load_splits(settings, batch_size=8)
    out = capsys.readouterr().out
    assert splits.val.num_samples == 2
    assert ("warning: 1 of 2 validation texts also appear in the training data "
            "(exact duplicates, e.g. 'Review number 3 was GOOD!')") in out
