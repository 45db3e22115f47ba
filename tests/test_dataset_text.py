"""Tests of the templated movie-review writer (appgen.datasets.text_samples)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from appgen.datasets import get_writer
from appgen.datasets.text_samples import POSITIVE, review, write_reviews


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_writes_train_and_val_csv_with_balanced_labels(tmp_path: Path) -> None:
    summary = write_reviews(tmp_path / "d", size=500, seed=3)
    train, val = _read(tmp_path / "d" / "train.csv"), _read(tmp_path / "d" / "val.csv")
    assert (len(train), len(val)) == (400, 100)
    assert set(train[0]) == {"text", "label"}
    labels = [row["label"] for row in train + val]
    assert set(labels) == {"positive", "negative"}
    assert 0.4 < labels.count("positive") / len(labels) < 0.6
    assert "500 templated movie reviews" in summary
    assert get_writer("reviews") is write_reviews


def test_same_seed_same_reviews_other_seed_other_reviews(tmp_path: Path) -> None:
    write_reviews(tmp_path / "a", size=50, seed=1)
    write_reviews(tmp_path / "b", size=50, seed=1)
    write_reviews(tmp_path / "c", size=50, seed=2)
    a, b, c = ((tmp_path / x / "train.csv").read_bytes() for x in "abc")
    assert a == b and a != c


def test_labels_follow_negation_and_clause_order() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [review(rng) for _ in range(3000)]
    positive_words = "|".join(POSITIVE)
    # One negated positive adjective and nothing else: the review is negative.
    simple = [(t, y) for t, y in rows if re.fullmatch(
        rf"(?i)(honestly, |overall, |to be fair, |in short, )?[a-z ]*"
        rf"\b(was not|wasn't|is not|isn't) (\w+ )?({positive_words})[.!]?", t)]
    assert simple and all(y == "negative" for _, y in simple)
    # "A, but B": the same words in the other order carry the other label.
    turns = [(t, y) for t, y in rows if ", but " in t and "expected" not in t]
    assert len(turns) > 100
    assert {y for _, y in turns} == {"positive", "negative"}


def test_refuses_occupied_folder_and_tiny_size(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_reviews(tmp_path / "full", size=20)
    with pytest.raises(ValueError, match="at least 10"):
        write_reviews(tmp_path / "small", size=3)
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"


def test_phrase_pairs_are_deterministic_distinct_tsv(tmp_path: Path) -> None:
    from appgen.datasets.text_pairs import write_phrase_pairs

    summary = write_phrase_pairs(tmp_path / "a", size=300, seed=4)
    write_phrase_pairs(tmp_path / "b", size=300, seed=4)
    write_phrase_pairs(tmp_path / "c", size=300, seed=5)
    a, b, c = ((tmp_path / x / "train.tsv").read_bytes() for x in "abc")
    assert a == b and a != c
    assert get_writer("phrase_pairs") is write_phrase_pairs and "300 English" in summary
    with (tmp_path / "a" / "train.tsv").open(newline="", encoding="utf-8") as handle:
        train = list(csv.DictReader(handle, delimiter="\t"))
    with (tmp_path / "a" / "val.tsv").open(newline="", encoding="utf-8") as handle:
        val = list(csv.DictReader(handle, delimiter="\t"))
    assert (len(train), len(val)) == (270, 30) and set(train[0]) == {"source", "target"}
    assert not {row["source"] for row in val} & {row["source"] for row in train}


def test_phrase_pairs_follow_the_grammar() -> None:
    import numpy as np
    from appgen.datasets.text_pairs import phrase_pair

    rng = np.random.default_rng(0)
    pairs = dict(phrase_pair(rng) for _ in range(2000))
    # Verb last with its tense / number ending; negation before it.
    assert all(t.split()[-1].endswith(("a", "an", "is")) for t in pairs.values())
    negated = [(s, t) for s, t in pairs.items() if " not " in s]
    assert negated and all(" ne " in f" {t} " for _, t in negated)
    plural_objects = [t for s, t in pairs.items() if s.split()[-1] in ("balls", "boxes")]
    assert plural_objects and all("palojn" in t or "kasujn" in t for t in plural_objects)
    assert not any(" a a" in s or s.startswith("a a") for s in pairs)  # "an apple"


def test_dialogues_copy_slots_and_are_deterministic(tmp_path: Path) -> None:
    from appgen.datasets.dialogues import write_dialogues

    summary = write_dialogues(tmp_path / "a", size=200, seed=1)
    write_dialogues(tmp_path / "b", size=200, seed=1)
    first, again = ((tmp_path / x / "train.txt").read_bytes() for x in "ab")
    assert first == again
    assert get_writer("dialogues") is write_dialogues and "200 templated" in summary
    lines = (tmp_path / "a" / "train.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 180 and len((tmp_path / "a" / "val.txt").read_text().splitlines()) == 20
    assert all(line.startswith("user: ") and " assistant: " in line for line in lines)
    for line in lines:
        for order in re.findall(r"order (\d{4})\?", line):
            assert f"assistant: order {order} " in line  # the reply copies the number
        assert "sunday we are open" not in line


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@pytest.mark.parametrize(("name", "files", "column"), [
    ("reviews", ("train.csv", "val.csv"), "text"),
    ("dialogues", ("train.txt", "val.txt"), None),
    ("phrase_pairs", ("train.tsv", "val.tsv"), "source"),
])
def test_default_samples_share_no_row_between_train_and_val(
        tmp_path: Path, name: str, files: tuple[str, str], column: str | None) -> None:
    # The default sizes: before the fix reviews' val.csv repeated 33 training texts
    # (ignoring case and punctuation) and dialogues' val.txt 41 training lines.
    get_writer(name)(tmp_path / name)

    def rows(file: str) -> list[str]:
        path = tmp_path / name / file
        if column is None:
            return path.read_text(encoding="utf-8").splitlines()
        with path.open(newline="", encoding="utf-8") as handle:
            return [row[column] for row in csv.DictReader(handle, delimiter="\t" if file.endswith(
                ".tsv") else ",")]

    train, val = rows(files[0]), rows(files[1])
    assert len(val) >= 300 and len(train) >= 2000
    shared = {_normalised(t) for t in train} & {_normalised(v) for v in val}
    assert not shared, f"{len(shared)} validation rows repeat training rows: {sorted(shared)[:3]}"


def test_split_distinct_refuses_a_sample_its_templates_cannot_fill() -> None:
    from appgen.datasets.distinct import split_distinct

    with pytest.raises(ValueError, match="fewer"):
        split_distinct(lambda: "Same, text!", 20, 4, str)
