"""Corpus BLEU-4 (Papineni et al., 2002) on word lists, with the brevity penalty.

    BLEU = BP * exp(mean over n = 1..4 of log p_n)
    p_n  = sum of clipped n-gram matches / sum of hypothesis n-grams (whole corpus)
    BP   = 1 if c > r else exp(1 - r / c)   (c, r: total hypothesis / reference words)

One reference per sentence. Scores are in 0..1 (multiply by 100 for the usual
scale). No smoothing: a corpus with no matching 4-gram scores 0, as in sacrebleu
with smoothing "none".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

MAX_ORDER = 4


def ngrams(words: Sequence[str], order: int) -> Counter[tuple[str, ...]]:
    """Counts of the ``order``-grams of ``words``."""
    return Counter(tuple(words[i:i + order]) for i in range(len(words) - order + 1))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]
                ) -> dict[str, float]:
    """BLEU-4 of tokenized hypotheses against one tokenized reference each.

    Returns ``bleu``, the four precisions ``precision_1..4``, ``brevity_penalty`` and
    the length ratio ``hypothesis_length / reference_length``.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matches = [0] * MAX_ORDER
    totals = [0] * MAX_ORDER
    hypothesis_length = reference_length = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hypothesis_length += len(hypothesis)
        reference_length += len(reference)
        for order in range(1, MAX_ORDER + 1):
            found, wanted = ngrams(hypothesis, order), ngrams(reference, order)
            matches[order - 1] += sum(min(count, wanted[gram]) for gram, count in found.items())
            totals[order - 1] += max(0, len(hypothesis) - order + 1)
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals, strict=True)]
    if hypothesis_length == 0:
        penalty = 0.0
    elif hypothesis_length > reference_length:
        penalty = 1.0
    else:
        penalty = math.exp(1.0 - reference_length / hypothesis_length)
    if min(precisions) == 0.0:
        bleu = 0.0
    else:
        bleu = penalty * math.exp(sum(math.log(p) for p in precisions) / MAX_ORDER)
    return {"bleu": bleu, **{f"precision_{n + 1}": p for n, p in enumerate(precisions)},
            "brevity_penalty": penalty,
            "length_ratio": hypothesis_length / reference_length if reference_length else 0.0}
