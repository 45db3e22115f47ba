"""Validation reports of the generating tasks: BLEU for translation, perplexity for the LM."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .bleu import corpus_bleu
from .decoding import translate
from .pipeline import Batches
from .rundir import atomic_write_text
from .seq_text import PAD_ID
from .translation_data import text_of

SHOWN = 20  # example translations written beside the plots


def translation_report(model: keras.Model, batches: Batches, meta: dict[str, Any],
                       plots_dir: Path) -> dict[str, Any]:
    """Corpus BLEU-4 (sacrebleu, on the detokenized sentences) of the decoded validation
    sources against their references."""
    settings = meta["decoding"]
    source_ids = batches.inputs["encoder_ids"]
    decoded = translate(model, source_ids, decoding=settings["decoding"],
                        beam_width=int(settings["beam_width"]),
                        length_penalty=float(settings["length_penalty"]),
                        batch_size=int(settings["batch_size"]))
    target_text, source_text = text_of(meta, "target"), text_of(meta, "source")
    hypotheses = [target_text(ids) for ids in decoded]
    references = [target_text(ids) for ids in batches.targets]
    scores = corpus_bleu(hypotheses, references)
    exact = float(np.mean([h == r for h, r in zip(hypotheses, references, strict=True)]))
    lines = [f"{source_text(s)}\n  -> {h}\n  reference: {r}"
             for s, h, r in zip(source_ids[:SHOWN], hypotheses, references, strict=False)]
    plots_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plots_dir / "translations.txt", "\n".join(lines) + "\n")
    return {"bleu": round(float(scores["bleu"]), 4), "exact_match": round(exact, 4),
            "decoding": settings["decoding"], "sentences": len(hypotheses),
            **{key: value if isinstance(value, str) else round(value, 4)
               for key, value in scores.items() if key != "bleu"}}


def language_model_report(model: keras.Model, batches: Batches, meta: dict[str, Any],
                          plots_dir: Path) -> dict[str, Any]:
    """Perplexity of the validation tokens, beside a unigram model's (the baseline)."""
    nll = 0.0
    hits = 0
    count = 0
    for index in range(len(batches)):
        inputs, targets = batches[index]
        logits = np.asarray(model.predict_on_batch(inputs), dtype=np.float64)
        peak = logits.max(axis=-1, keepdims=True)
        log_norm = peak[..., 0] + np.log(np.exp(logits - peak).sum(axis=-1))
        picked = np.take_along_axis(logits, targets[..., None].astype(np.int64), axis=-1)[..., 0]
        mask = targets != PAD_ID
        nll += float(((log_norm - picked) * mask).sum())
        hits += int(((logits.argmax(axis=-1) == targets) & mask).sum())
        count += int(mask.sum())
    # Unigram baseline: token frequencies of the training set, add-one smoothed.
    frequencies = np.asarray(meta["unigram_counts"], dtype=np.float64) + 1.0
    log_unigram = np.log(frequencies / frequencies.sum())
    targets = batches.targets[batches.targets != PAD_ID]
    unigram = math.exp(-float(log_unigram[targets].mean())) if targets.size else float("nan")
    perplexity = math.exp(nll / max(count, 1))
    return {"perplexity": round(perplexity, 3), "unigram_perplexity": round(unigram, 3),
            "token_accuracy": round(hits / max(count, 1), 4), "tokens": count}
