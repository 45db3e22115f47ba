"""Vision metrics and plots on a set of labelled batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import detection_report, plots
from .classification import classification_scores
from .pipeline import Batches


def headline(meta: dict[str, Any]) -> str:
    """The number train prints at the end, by task."""
    return detection_report.HEADLINE if meta.get("task") == "detection" else "accuracy"


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Accuracy, top-3 accuracy, macro F1 and per-class recall; writes the confusion matrix.

    Detection: COCOeval's mAPs (``detection_report``).
    """
    if meta.get("task") == "detection":
        return detection_report.report(model, batches, meta, plots_dir)
    probabilities = model.predict(batches, verbose=0)
    true = np.argmax(batches.targets, axis=1)
    predicted = np.argmax(probabilities, axis=1)
    class_names = list(meta["class_names"])
    top_k = min(3, len(class_names))
    top = np.argsort(-probabilities, axis=1)[:, :top_k]
    prediction_grid(batches.inputs, true, predicted, class_names,
                    plots_dir / "validation_predictions.png")
    return {**classification_scores(true, predicted, class_names, plots_dir),
            f"top_{top_k}_accuracy": float(np.mean((top == true[:, None]).any(axis=1)))}


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
