"""Scores every classification template reports: accuracy, macro F1, per-class scores, ROC-AUC."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots


def classification_scores(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                          plots_dir: Path) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall and F1; writes the confusion matrix plot.

    ``chance_accuracy`` is what always answering the most frequent true class would
    score on these samples: a model that learned nothing reaches it, not more.
    """
    recall, f1 = per_class_scores(true, predicted, len(class_names))
    plots.confusion_matrix(true, predicted, class_names, plots_dir / "confusion_matrix.png")
    counts = np.bincount(np.asarray(true, dtype=np.int64), minlength=len(class_names))
    return {
        "accuracy": float(np.mean(true == predicted)),
        "chance_accuracy": float(counts.max() / max(counts.sum(), 1)),
        "macro_f1": float(np.mean(f1)),
        "per_class_recall": {name: float(r) for name, r in zip(class_names, recall, strict=True)},
        "per_class_f1": {name: float(s) for name, s in zip(class_names, f1, strict=True)},
    }


def per_class_scores(true: np.ndarray, predicted: np.ndarray, num_classes: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Recall and F1 for every class (0 where a class never occurs)."""
    recall = np.zeros(num_classes)
    f1 = np.zeros(num_classes)
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (true == c))
        actual, claimed = np.sum(true == c), np.sum(predicted == c)
        recall[c] = tp / actual if actual else 0.0
        precision = tp / claimed if claimed else 0.0
        f1[c] = 2 * precision * recall[c] / (precision + recall[c]) if tp else 0.0
    return recall, f1


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve: the probability that a random positive outscores a random
    negative, ties counted half (the Mann-Whitney U statistic).

    None when it is undefined: only positives, or only negatives. Ours rather than
    sklearn.metrics.roc_auc_score, which generated projects do not depend on.
    """
    positive = np.asarray(positive).reshape(-1).astype(bool)
    count_pos, count_neg = int(positive.sum()), int((~positive).sum())
    if count_pos == 0 or count_neg == 0:
        return None
    _, inverse, counts = np.unique(np.asarray(score).reshape(-1), return_inverse=True,
                                   return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.reshape(-1)]  # average rank of ties
    return float((ranks[positive].sum() - count_pos * (count_pos + 1) / 2.0)
                 / (count_pos * count_neg))
