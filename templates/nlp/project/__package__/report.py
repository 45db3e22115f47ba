"""Validation metrics per task: accuracy and F1, BLEU, or perplexity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from .baseline import batches_digest
from .classification import classification_scores
from .pipeline import Batches

HEADLINE = "accuracy"  # classification's; headline() names each task's
HEADLINES = {"classification": "accuracy", "translation": "bleu", "causal_lm": "perplexity"}


def headline(meta: dict[str, Any]) -> str:
    """The metric train prints at the end for this run's task."""
    return HEADLINES[str(meta.get("task", "classification"))]


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """The task's metrics on ``batches`` (plots and samples go to ``plots_dir``)."""
    task = meta.get("task", "classification")
    if task == "translation":
        from .seq_report import translation_report

        return translation_report(model, batches, meta, plots_dir)
    if task == "causal_lm":
        from .seq_report import language_model_report

        return language_model_report(model, batches, meta, plots_dir)
    # Classification: accuracy, macro F1 and per-class recall / F1; the confusion matrix.
    probabilities = model.predict(batches, verbose=0)
    true = np.argmax(batches.targets, axis=1)
    predicted = np.argmax(probabilities, axis=1)
    results = classification_scores(true, predicted, list(meta["class_names"]), plots_dir)
    baseline = meta.get("baseline") or {}
    if baseline.get("validation_digest") == batches_digest(batches.inputs, batches.targets):
        # measured when the data was loaded, on exactly these samples
        results["tfidf_lr_accuracy"] = baseline["tfidf_lr_accuracy"]
        print(f"accuracy {results['accuracy']:.4f} (TF-IDF + logistic-regression baseline "
              f"{results['tfidf_lr_accuracy']:.4f}, fitted on the training texts)", flush=True)
    return results
