"""Token sequences for the generating tasks (translation, causal_lm): markers, ids, words.

Generated text starts after ``[START]`` and stops at ``[END]``; both are vocabulary
entries that no raw text can spell (the tokenizer splits ``[`` off as punctuation),
at ids 2 and 3 after ``[PAD]`` and ``[UNK]``. Rows are padded with ``[PAD]`` (id 0)
to one fixed length, so every compiled step sees the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .tokenizer import PAD, UNK, WordPiece

START, END = "[START]", "[END]"
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
NO_SPACE_BEFORE = set(".,!?;:)]}'%")
NO_SPACE_AFTER = set("([{'$")


class Encoder(Protocol):
    """A tokenizer: the run's WordPiece, or a preset's (``lm_preset.PresetTokenizer``)."""

    def encode(self, text: str) -> list[int]: ...


def with_markers(vocabulary: list[str]) -> list[str]:
    """``vocabulary`` with ``[START]`` and ``[END]`` at ids 2 and 3."""
    rest = [token for token in vocabulary if token not in (PAD, UNK, START, END)]
    return [PAD, UNK, START, END, *rest]


def wordpiece(meta: dict[str, Any], key: str = "vocabulary") -> WordPiece:
    """The tokenizer of a run, from its meta (``key`` names the vocabulary)."""
    return WordPiece(meta[key], lowercase=bool(meta["lowercase"]),
                     strip_accents=bool(meta["strip_accents"]))


def encode_rows(tokenizer: Encoder, texts: Sequence[str], length: int, *,
                markers: bool) -> tuple[np.ndarray, int]:
    """int32 ``(n, length)`` ids (``[START] ids [END]`` with ``markers``); also how many
    texts were cut to fit. A cut row keeps its start and loses its ``[END]``."""
    ids = np.zeros((len(texts), length), dtype=np.int32)
    truncated = 0
    for index, text in enumerate(texts):
        row = tokenizer.encode(text)
        if markers:
            row = [START_ID, *row, END_ID]
        if len(row) > length:
            truncated += 1
            row = row[:length]
        ids[index, :len(row)] = row
    return ids, truncated


def token_lengths(tokenizer: Encoder, texts: Sequence[str]) -> np.ndarray:
    """Number of word pieces of each text."""
    return np.asarray([len(tokenizer.encode(text)) for text in texts])


def words(vocabulary: Sequence[str], ids: Sequence[int]) -> list[str]:
    """The words of generated ids: up to ``[END]``, markers and padding dropped,
    ``##`` pieces joined to the word before."""
    out: list[str] = []
    for token_id in ids:
        token_id = int(token_id)
        if token_id == END_ID:
            break
        if token_id in (PAD_ID, START_ID):
            continue
        token = vocabulary[token_id]
        if token.startswith("##") and out:
            out[-1] += token[2:]
        else:
            out.append(token)
    return out


def detokenize(vocabulary: Sequence[str], ids: Sequence[int]) -> str:
    """Readable text of generated ids: words joined by spaces, punctuation attached."""
    text = ""
    for word in words(vocabulary, ids):
        glue = not text or word[0] in NO_SPACE_BEFORE or text[-1] in NO_SPACE_AFTER
        text += word if glue else " " + word
    return text
