"""The shared train/validation overlap warning (templates/_base/.../overlap.py)."""

from __future__ import annotations

import numpy as np
import pytest
from runtime import load

overlap = load("overlap")


def test_texts_that_differ_only_in_case_punctuation_and_spaces_are_counted(
        capsys: pytest.CaptureFixture[str]) -> None:
    train = ["A great film!", "dull and  slow", "the end"]
    val = ["a great film", "something new", "Dull, and slow."]
    assert overlap.warn_overlap(train, val, what="texts") == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line
    assert out.startswith("warning: 2 of 3 validation texts also appear in the training data")
    assert "'a great film'" in out


def test_no_overlap_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert overlap.warn_overlap(["one", "two"], ["three"], what="texts") == 0
    assert capsys.readouterr().out == ""


def test_arrays_match_by_bytes_and_blank_ones_are_not_counted(
        capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 8, 8, 1), dtype=np.uint8)
    blank = np.zeros((8, 8, 1), np.uint8)
    train = np.concatenate([images[:3], blank[None]])
    val = [images[1], images[3], blank, images[1].astype(np.float32)]
    assert overlap.count_overlap(train, val) == [0]  # same bytes; not the blank, not a new dtype
    overlap.warn_overlap(train, val, what="images", names=["a.png", "b.png", "c.png", "d.png"])
    out = capsys.readouterr().out
    assert "1 of 4 validation images" in out and "e.g. a.png" in out


def test_table_rows_and_pairs() -> None:
    train = [(1.0, 2, "visa"), (3.0, 4, "amex")]
    val = [(1.0, 2, "VISA"), (1.0, 2, "mastercard"), (3.0, 5, "amex")]
    assert overlap.count_overlap(train, val) == [0]
    assert overlap.count_overlap([{"b": 1, "a": 2}], [{"a": 2, "b": 1}, {"a": 1, "b": 2}]) == [0]
