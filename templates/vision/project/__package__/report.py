"""Vision metrics and plots on a set of labelled batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import plots
from .pipeline import Batches

HEADLINE = "accuracy"  # the number train prints at the end


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Accuracy, top-3 accuracy, macro F1 and per-class recall; writes the confusion matrix."""
    probabilities = model.predict(batches, verbose=0)
    true = np.argmax(batches.targets, axis=1)
    predicted = np.argmax(probabilities, axis=1)
    class_names = list(meta["class_names"])
    top_k = min(3, len(class_names))
    top = np.argsort(-probabilities, axis=1)[:, :top_k]
    recall, f1 = per_class_scores(true, predicted, len(class_names))
    plots.confusion_matrix(true, predicted, class_names, plots_dir / "confusion_matrix.png")
    prediction_grid(batches.inputs, true, predicted, class_names,
                    plots_dir / "validation_predictions.png")
    return {
        "accuracy": float(np.mean(true == predicted)),
        f"top_{top_k}_accuracy": float(np.mean((top == true[:, None]).any(axis=1))),
        "macro_f1": float(np.mean(f1)),
        "per_class_recall": {name: float(r) for name, r in zip(class_names, recall, strict=True)},
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


def prediction_grid(images: np.ndarray, true: np.ndarray, predicted: np.ndarray,
                    class_names: list[str], out: Path, count: int = 24) -> Path:
    """A grid of validation images titled 'predicted (true)', mistakes in red."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    picked = rng.choice(len(images), size=min(count, len(images)), replace=False)
    columns = 8
    rows = -(-len(picked) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.4, rows * 1.6))
    for axis in np.ravel(axes):
        axis.axis("off")
    for axis, index in zip(np.ravel(axes), picked, strict=False):
        image = images[index]
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        ok = predicted[index] == true[index]
        axis.set_title(f"{class_names[predicted[index]]}\n({class_names[true[index]]})",
                       fontsize=7, color="black" if ok else "red")
    return plots.save_figure(fig, out)
