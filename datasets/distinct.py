"""Validation rows that never repeat a training row, for the generated text samples.

Templated generators draw the same sentence more than once; a validation row equal
to a training row (after normalising case, punctuation and whitespace) is scored
on something the model memorised. ``split_distinct`` draws the validation rows
first, as an unbiased sample, then training rows that repeat none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

Row = TypeVar("Row")
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalised(text: str) -> str:
    """``text`` lower-cased, punctuation dropped and whitespace collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def split_distinct(draw: Callable[[], Row], total: int, val_count: int,
                   text: Callable[[Row], str]) -> tuple[list[Row], list[Row]]:
    """``total - val_count`` training and ``val_count`` validation rows from ``draw()``.

    No training row's ``normalised(text(row))`` equals a validation row's.

    Raises:
        ValueError: the generator cannot produce enough training rows that differ
            from the validation rows (a sample too large for its templates).
    """
    val = [draw() for _ in range(val_count)]
    held = {normalised(text(row)) for row in val}
    train: list[Row] = []
    attempts = 0
    while len(train) < total - val_count:
        attempts += 1
        if attempts > 50 * total:
            raise ValueError(f"could not draw {total - val_count} training rows that differ "
                             f"from the {val_count} validation rows; ask for fewer")
        row = draw()
        if normalised(text(row)) not in held:
            train.append(row)
    return train, val
