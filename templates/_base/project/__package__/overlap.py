"""Warn when validation samples also sit in the training data.

A validation sample equal to a training sample scores memory, not generalisation.
``warn_overlap`` counts validation samples whose fingerprint a training sample
shares (exact duplicates after normalising: text lower-cased with punctuation and
whitespace collapsed; arrays by shape, dtype and bytes; rows by their values) and
prints ONE warning line with the count and an example. Constant arrays (blank
images or slices) are not counted: they carry nothing to memorise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise_text(text: str) -> str:
    """``text`` lower-cased, punctuation dropped and whitespace collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def fingerprint(sample: Any) -> bytes | None:
    """A digest equal for duplicate samples; None for a constant array (never counted).

    ``sample``: a string (normalised), a numpy array (shape, dtype and bytes), or a
    tuple / list / dict of those (a table row, a sentence pair).
    """
    digest = hashlib.sha1(usedforsecurity=False)
    if not _update(digest, sample):
        return None
    return digest.digest()


def _update(digest: Any, sample: Any) -> bool:
    if isinstance(sample, str):
        digest.update(b"s" + normalise_text(sample).encode())
        return True
    if isinstance(sample, dict):
        return _update(digest, [sample[key] for key in sorted(sample)])
    if isinstance(sample, (tuple, list)):
        informative = False
        for part in sample:
            informative = _update(digest, part) or informative
            digest.update(b"\0")
        return informative
    array = np.asarray(sample)
    digest.update(f"a{array.shape}{array.dtype}".encode() + np.ascontiguousarray(array).tobytes())
    flat = array.ravel()
    if flat.size == 0:
        return False
    return flat.size == 1 or bool((flat != flat[0]).any())  # constant: nothing to memorise


def count_overlap(train: Iterable[Any], val: Sequence[Any] | np.ndarray) -> list[int]:
    """Indices of the validation samples that duplicate a training sample."""
    seen = {key for key in map(fingerprint, train) if key is not None}
    return [i for i, sample in enumerate(val)
            if (key := fingerprint(sample)) is not None and key in seen]


def warn_overlap(train: Iterable[Any], val: Sequence[Any] | np.ndarray, *, what: str,
                 names: Sequence[str] | None = None) -> int:
    """Print one warning line when validation samples duplicate training ones; the count.

    ``what`` names the samples ("texts", "images"); ``names`` labels each validation
    sample for the example (a file name), else a text is quoted or its index given.
    """
    shared = count_overlap(train, val)
    if shared:
        first = shared[0]
        if names is not None:
            example = str(names[first])
        elif isinstance(val[first], str):
            text = " ".join(val[first].split())
            example = repr(text if len(text) <= 60 else text[:57] + "...")
        else:
            example = f"validation sample {first}"
        print(f"warning: {len(shared)} of {len(val)} validation {what} also appear in the "
              f"training data (exact duplicates, e.g. {example}); their scores measure "
              "memory, not generalisation: remove them from one side", flush=True)
    return len(shared)
