"""Corpus BLEU-4 with sacrebleu (Post, 2018), on detokenized sentences.

sacrebleu's defaults, so scores are comparable with published ones: its ``13a``
tokenizer (the WMT ``mteval-v13a`` rules: punctuation split from words), case kept,
``exp`` smoothing of zero n-gram counts, one reference per sentence. Scores are
returned in 0..1 (sacrebleu's 0..100 divided by 100) like the other metrics here;
``signature`` is sacrebleu's own description of the settings, to quote beside a score.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU

MAX_ORDER = 4


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """BLEU-4 of hypothesis sentences against one reference sentence each.

    Returns ``bleu``, the four precisions ``precision_1..4``, ``brevity_penalty``, the
    length ratio ``hypothesis_length / reference_length`` (13a tokens) and ``signature``.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:  # sacrebleu reads the first sentence to check the types
        return {"bleu": 0.0, **{f"precision_{n}": 0.0 for n in range(1, MAX_ORDER + 1)},
                "brevity_penalty": 0.0, "length_ratio": 0.0, "signature": ""}
    metric = BLEU(max_ngram_order=MAX_ORDER)
    score = metric.corpus_score(list(hypotheses), [list(references)])
    signature = str(metric.get_signature())  # known once the references are counted
    return {"bleu": score.score / 100.0,
            **{f"precision_{n + 1}": p / 100.0 for n, p in enumerate(score.precisions)},
            "brevity_penalty": score.bp, "length_ratio": score.ratio, "signature": signature}
