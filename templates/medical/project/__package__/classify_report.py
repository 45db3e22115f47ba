"""Slice classification scores: accuracy, F1, and ROC-AUC per class (one vs rest); ROC plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import plots
from .classification import classification_scores, roc_auc
from .pipeline import Batches


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Accuracy, macro F1, per-class recall/F1 and AUC; confusion matrix and ROC curves."""
    probabilities = np.asarray(model.predict(batches, verbose=0), dtype=np.float64)
    true = np.asarray(batches.targets).astype(int)
    names = list(meta["class_names"])
    scores = classification_scores(true, probabilities.argmax(axis=1), names, plots_dir)
    aucs = per_class_auc(true, probabilities, names)
    roc_plot(true, probabilities, names, plots_dir / "roc.png")
    # A constant score ranks nothing: its AUC, by the same rules, is what a model that
    # learned nothing reaches.
    constant = [roc_auc(true == index, np.zeros(len(true))) for index in range(len(names))]
    defined = [value for value in constant if value is not None]
    return {"auc": mean_auc(true, probabilities) if defined else None, **scores,
            "per_class_auc": aucs,
            "chance_auc": float(np.mean(defined)) if defined else None}


def per_class_auc(true: np.ndarray, probabilities: np.ndarray, names: list[str]
                  ) -> dict[str, float | None]:
    """ROC-AUC of each class against the rest (None for a class absent or alone)."""
    return {name: roc_auc(true == index, probabilities[:, index])
            for index, name in enumerate(names)}


def mean_auc(true: np.ndarray, probabilities: np.ndarray) -> float:
    """The headline ``auc``: mean one-vs-rest ROC-AUC over the classes it is defined for.

    The same number after each epoch (``val_auc``, via model.epoch_metrics) and in the
    final report.
    """
    true = np.asarray(true).reshape(-1).astype(int)
    names = [str(index) for index in range(probabilities.shape[1])]
    present = [v for v in per_class_auc(true, probabilities, names).values() if v is not None]
    return float(np.mean(present)) if present else 0.0


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct threshold."""
    order = np.argsort(-np.asarray(score), kind="mergesort")
    hits = np.asarray(positive, dtype=bool)[order]
    distinct = np.r_[np.flatnonzero(np.diff(np.asarray(score)[order]) != 0), len(hits) - 1]
    tpr = np.r_[0.0, np.cumsum(hits)[distinct] / max(hits.sum(), 1)]
    fpr = np.r_[0.0, np.cumsum(~hits)[distinct] / max((~hits).sum(), 1)]
    return fpr, tpr


def roc_plot(true: np.ndarray, probabilities: np.ndarray, names: list[str], out: Path
             ) -> Path:
    """One ROC curve per class (one vs rest), with its AUC in the legend."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5, 5))
    for index, name in enumerate(names):
        area = roc_auc(true == index, probabilities[:, index])
        if area is None:
            continue
        fpr, tpr = roc_curve(true == index, probabilities[:, index])
        axis.plot(fpr, tpr, label=f"{name} (AUC {area:.3f})")
        if len(names) == 2:  # the other class's curve is the mirror image
            break
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("ROC, one class vs the rest")
    axis.legend(loc="lower right", fontsize=8)
    return plots.save_figure(fig, out)
