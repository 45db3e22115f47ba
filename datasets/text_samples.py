"""Templated movie reviews for the ``nlp`` template, written as ``train.csv`` / ``val.csv``.

- ``reviews``: short reviews labelled ``positive`` or ``negative``. The label is set
  by negation ("was not dull") and by word order ("dull at first, but great" vs
  "great at first, but dull"): both clauses' words appear either way, so a bag of
  words cannot tell those reviews apart and a model has to read the sequence.

Nothing is downloaded; only the standard library and numpy are used.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .distinct import split_distinct
from .staging import staged_dir

ASPECTS = ["the acting", "the plot", "the script", "the soundtrack", "the cinematography",
           "the pacing", "the ending", "the cast", "the dialogue", "the direction",
           "the story", "the camera work", "this film", "the movie", "the lead performance",
           "the humour", "the second half", "the final act", "the score", "the editing"]
POSITIVE = ["great", "wonderful", "brilliant", "moving", "clever", "gripping", "charming",
            "superb", "delightful", "stunning", "memorable", "funny", "beautiful", "sharp",
            "touching", "fresh", "excellent", "engaging"]
NEGATIVE = ["boring", "dull", "awful", "clumsy", "bland", "tedious", "weak", "predictable",
            "messy", "forgettable", "lifeless", "painful", "flat", "silly", "slow", "terrible",
            "uneven", "shallow"]
VERBS = ["was", "is", "felt", "seemed"]
NEGATED = {"was": ["was not", "wasn't", "was never", "was hardly"],
           "is": ["is not", "isn't", "is never", "is hardly"],
           "felt": ["never felt", "did not feel", "didn't feel"],
           "seemed": ["never seemed", "did not seem", "didn't seem"]}
INTENSIFIERS = ["", "", "", "really ", "truly ", "quite ", "very ", "rather "]
OPENERS = ["", "", "", "honestly, ", "overall, ", "to be fair, ", "i thought ", "in short, "]
TURNS = [("{a} at first, but {b}", 1), ("{a}, but {b}", 1), ("although {a}, {b}", 1),
         ("{a}, even though {b}", 0), ("{a}; still, {b}", 1), ("{a}, and yet {b}", 1)]
RECOMMEND = {True: ["i would recommend it.", "do not miss it.", "see it if you can.",
                    "worth every minute."],
             False: ["i would not recommend it.", "skip it.", "not worth the ticket.",
                     "do not bother."]}


def write_reviews(out: Path, *, size: int | None = None, seed: int = 0, **_: object) -> str:
    """Write ``out/train.csv`` and ``out/val.csv`` (columns ``text``, ``label``).

    ``size`` is the total number of reviews (default 3000); a fifth goes to val.csv.
    """
    total = 3000 if size is None else int(size)
    if total < 10:
        raise ValueError(f"size must be at least 10 reviews, got {total}")
    rng = np.random.default_rng(seed)
    val_count = max(2, total // 5)
    train, val = split_distinct(lambda: review(rng), total, val_count, lambda row: row[0])
    rows = val + train
    files = {"train.csv": train, "val.csv": val}
    _write_atomically(Path(out), files)
    positive = sum(label == "positive" for _, label in rows)
    return (f"{total} templated movie reviews ({positive} positive, {total - positive} "
            f"negative; negation and clause order decide the label) in {out}/"
            "{train,val}.csv")


def review(rng: np.random.Generator) -> tuple[str, str]:
    """One review and its label; both labels are equally likely."""
    want = bool(rng.integers(2))
    kind = rng.choice(4, p=[0.35, 0.4, 0.1, 0.15])
    if kind == 0:  # one clause, maybe negated
        text, _ = clause(rng, want)
    elif kind == 1:  # two clauses of opposite polarity: order decides
        template, decisive = TURNS[rng.integers(len(TURNS))]
        first, _ = clause(rng, want if decisive == 0 else not want)
        second, _ = clause(rng, want if decisive == 1 else not want)
        parts = {"a": first, "b": second}
        text = template.format(**parts)
    elif kind == 2:  # expectation set up, then confirmed or denied
        adjective = _pick(rng, POSITIVE if rng.integers(2) else NEGATIVE)
        polarity = adjective in POSITIVE
        if polarity == want:
            text = f"i expected it to be {adjective} and it was"
        else:
            text = f"i expected it to be {adjective}, but it was not"
    else:  # a clause, then a recommendation of the same polarity
        text, _ = clause(rng, want)
        text = f"{text}. {_pick(rng, RECOMMEND[want])}"
    text = _pick(rng, OPENERS) + text
    if not text.endswith("."):
        text += _pick(rng, [".", ".", "!", ""])
    text = text[0].upper() + text[1:]
    return text, "positive" if want else "negative"


def clause(rng: np.random.Generator, positive: bool) -> tuple[str, bool]:
    """'<aspect> <verb> [not] <adjective>' whose meaning is ``positive``."""
    negate = bool(rng.random() < 0.4)
    adjective_positive = positive != negate
    adjective = _pick(rng, POSITIVE if adjective_positive else NEGATIVE)
    verb = _pick(rng, VERBS)
    verb_phrase = _pick(rng, NEGATED[verb]) if negate else verb
    return f"{_pick(rng, ASPECTS)} {verb_phrase} {_pick(rng, INTENSIFIERS)}{adjective}", negate


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _write_atomically(out: Path, files: dict[str, list[tuple[str, str]]]) -> None:
    """Write every file into a staging folder, then move it to ``out`` in one rename."""
    with staged_dir(out) as staging:
        for name, rows in files.items():
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
            (staging / name).write_text(buffer.getvalue(), encoding="utf-8")
