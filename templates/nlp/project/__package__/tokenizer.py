"""WordPiece tokenization in plain Python: the same token ids on every machine.

The vocabulary is learned from the training texts once, by keras-hub's
``compute_word_piece_vocabulary`` when TensorFlow Text is installed and by a
small frequency-based learner here otherwise. Texts are then split the way BERT
and keras-hub's ``WordPieceTokenizer`` split them (lowercase, accents stripped,
punctuation as separate words, greedy longest-match word pieces with ``##``
continuations), in Python, so training on JAX without TensorFlow and predicting
on another machine give identical ids. The vocabulary is saved in RUN/meta.json.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = "[PAD]", "[UNK]"
RESERVED = [PAD, UNK]  # PAD is id 0: the model masks it
MAX_WORD_CHARS = 100  # longer "words" (URLs, base64) become one [UNK], as in BERT


def split_words(text: str, *, lowercase: bool = True, strip_accents: bool = True) -> list[str]:
    """BERT's basic tokenizer: whitespace split, punctuation and CJK characters apart."""
    if lowercase:
        # NFKC case folding, as TensorFlow Text's case_fold_utf8 does ("…" -> "...", "ß" -> "ss").
        text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if strip_accents:
        text = "".join(ch for ch in unicodedata.normalize("NFD", text)
                       if unicodedata.category(ch) != "Mn")
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf"):
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(ch) or _is_cjk(ch):
            if current:
                words.append("".join(current))
                current = []
            words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


class WordPiece:
    """Greedy longest-match-first WordPiece over a fixed vocabulary (pure Python)."""

    def __init__(self, vocabulary: Sequence[str], *, lowercase: bool = True,
                 strip_accents: bool = True) -> None:
        if len(vocabulary) < 3 or vocabulary[0] != PAD or UNK not in vocabulary:
            raise ValueError(f"vocabulary must start with {PAD} and contain {UNK}")
        self.vocabulary = list(vocabulary)
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        self.unk = self.ids[UNK]
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self._cache: dict[str, list[int]] = {}

    def word_ids(self, word: str) -> list[int]:
        """The ids of one word's pieces ([UNK] when it cannot be spelled)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        pieces: list[int] = []
        start = 0
        while start < len(word) and len(word) <= MAX_WORD_CHARS:
            end = len(word)
            found = None
            while end > start and found is None:
                found = self.ids.get(word[start:end] if start == 0 else "##" + word[start:end])
                end -= 1
            if found is None:
                break
            pieces.append(found)
            start = end + 1
        if start < len(word) or not word:
            pieces = [self.unk]  # a word that cannot be spelled is one [UNK], as in BERT
        if len(self._cache) < 500_000:
            self._cache[word] = pieces
        return pieces

    def encode(self, text: str) -> list[int]:
        """Token ids of one text (no padding, no truncation)."""
        ids: list[int] = []
        for word in split_words(text, lowercase=self.lowercase, strip_accents=self.strip_accents):
            ids.extend(self.word_ids(word))
        return ids

    def encode_batch(self, texts: Iterable[str], length: int) -> tuple[np.ndarray, int]:
        """int32 ``(n, length)`` ids, zero-padded; also how many texts were truncated."""
        rows = [self.encode(text) for text in texts]
        ids = np.zeros((len(rows), length), dtype=np.int32)
        truncated = 0
        for index, row in enumerate(rows):
            if len(row) > length:
                truncated += 1
                row = row[:length]
            ids[index, :len(row)] = row
        return ids, truncated


def has_tensorflow_text() -> bool:
    """keras-hub's vocabulary learner needs TensorFlow and TensorFlow Text."""
    return all(importlib.util.find_spec(name) for name in ("tensorflow", "tensorflow_text"))


def learn_vocabulary(texts: Sequence[str], size: int, *, learner: str = "auto",
                     lowercase: bool = True, strip_accents: bool = True) -> tuple[list[str], str]:
    """A WordPiece vocabulary of at most ``size`` tokens; returns it and the learner used."""
    if learner == "auto":
        learner = "keras_hub" if has_tensorflow_text() else "python"
    words = [split_words(t, lowercase=lowercase, strip_accents=strip_accents) for t in texts]
    if learner == "keras_hub":
        return _learn_with_keras_hub(words, size), learner
    return _learn_in_python(words, size), learner


def _learn_with_keras_hub(words: list[list[str]], size: int) -> list[str]:
    import tensorflow as tf
    from keras_hub.tokenizers import compute_word_piece_vocabulary

    # Words are split here, in Python, exactly as ``WordPiece.encode`` splits them; keras-hub
    # only learns the pieces. Joined by spaces they split back into the same words.
    dataset = tf.data.Dataset.from_tensor_slices([" ".join(w) for w in words] or [""])
    vocabulary = compute_word_piece_vocabulary(dataset.batch(1024), size, lowercase=False,
                                               strip_accents=False, reserved_tokens=RESERVED)
    return [str(token) for token in vocabulary]


def _learn_in_python(words: list[list[str]], size: int) -> list[str]:
    """Frequent whole words, every character, then frequent prefixes and ``##`` suffixes.

    Simpler than the WordPiece likelihood learner, with the same output format: rare
    words are spelled from the pieces, never lost to [UNK] unless a character is unseen.
    """
    counts = Counter(word for row in words for word in row)
    vocabulary = list(RESERVED)
    seen = set(vocabulary)

    def add(token: str) -> None:
        if token not in seen and len(vocabulary) < size:
            seen.add(token)
            vocabulary.append(token)

    chars: Counter[str] = Counter()
    for word, count in counts.items():
        for position, ch in enumerate(word):
            chars[ch if position == 0 else "##" + ch] += count
    for token, _ in chars.most_common():
        add(token)
    budget = len(vocabulary) + int(0.8 * max(0, size - len(vocabulary)))
    common = [word for word, _ in counts.most_common()]
    for word in common:
        if len(vocabulary) >= budget:
            break
        add(word)
    pieces: Counter[str] = Counter()
    for word, count in counts.items():
        if word in seen:
            continue
        for end in range(2, min(len(word), 8)):
            pieces[word[:end]] += count
        for start in range(1, len(word) - 1):
            pieces["##" + word[start:start + 6]] += count
            pieces["##" + word[start:]] += count
    for token, count in pieces.most_common():
        if len(vocabulary) >= size or count < 2:
            break
        add(token)
    return vocabulary


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)
