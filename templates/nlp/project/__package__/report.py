"""Text classification metrics and plots on a set of labelled batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from .classification import classification_scores
from .pipeline import Batches

HEADLINE = "accuracy"  # the number train prints at the end


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall / F1; writes the confusion matrix."""
    probabilities = model.predict(batches, verbose=0)
    true = np.argmax(batches.targets, axis=1)
    predicted = np.argmax(probabilities, axis=1)
    return classification_scores(true, predicted, list(meta["class_names"]), plots_dir)
