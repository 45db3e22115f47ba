"""Driving metrics and plots on a set of labelled batches.

Steering: MAE and RMSE per target, the label standard deviation and MAE / std (below
about 0.25 the model clearly reads the road; predicting the mean scores about 0.8),
predicted vs true steering over the sequence (frames sorted by filename) and a scatter.
Segmentation: IoU per class, mean IoU, pixel accuracy and overlays of predicted masks.
Detection: COCOeval's mAPs and plots (``detection_report``, shared with vision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import augment, detection_report, plots
from .pipeline import Batches

# Loading a checkpoint needs the custom augmentation layers registered; rundir.load_model
# imports model.py, which imports augment.
_REGISTERED = augment.RandomShadow
CLASS_COLOURS = np.array([[0, 0, 0], [40, 200, 80], [250, 220, 40], [230, 60, 60],
                          [60, 120, 240], [200, 80, 220]], dtype=np.uint8)


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Domain metrics of ``model`` on ``batches``; writes plots into ``plots_dir``."""
    if meta["task"] == "detection":
        return detection_report.report(model, batches, meta, plots_dir)
    if meta["task"] == "segmentation":
        return segmentation_report(model, batches, meta, plots_dir)
    return steering_report(model, batches, meta, plots_dir)


def headline(meta: dict[str, Any]) -> str:
    """The number train prints at the end, by task."""
    if meta["task"] == "detection":
        return detection_report.HEADLINE
    return "mean_iou" if meta["task"] == "segmentation" else "mae"


def steering_report(model: keras.Model, batches: Batches, meta: dict[str, Any],
                    plots_dir: Path) -> dict[str, Any]:
    predicted = np.asarray(model.predict(batches, verbose=0), dtype=np.float64)
    true = np.asarray(batches.targets, dtype=np.float64)
    names = list(meta["targets"])
    errors = predicted - true
    mae = np.abs(errors).mean(axis=0)
    rmse = np.sqrt((errors**2).mean(axis=0))
    std = true.std(axis=0)
    steering_plots(true[:, 0], predicted[:, 0], names[0], plots_dir)
    result: dict[str, Any] = {
        "mae": float(mae[0]), "rmse": float(rmse[0]), "label_std": float(std[0]),
        # Constant labels leave the ratio undefined: None, never a perfect 0.0.
        "mae_over_std": float(mae[0] / std[0]) if std[0] > 0 else None,
        "chance_mae": float(np.abs(true[:, 0] - np.median(true[:, 0])).mean()),
        "max_abs_error": float(np.abs(errors[:, 0]).max()),
    }
    if len(names) > 1:
        result["per_target"] = {
            name: {"mae": float(m), "rmse": float(r), "label_std": float(s)}
            for name, m, r, s in zip(names, mae, rmse, std, strict=True)}
    return result


def steering_plots(true: np.ndarray, predicted: np.ndarray, name: str, plots_dir: Path) -> None:
    """Predicted vs true over the (filename-sorted) sequence, and a scatter with y = x."""
    import matplotlib.pyplot as plt

    shown = slice(0, min(len(true), 400))
    fig, axis = plt.subplots(figsize=(10, 3.2))
    axis.plot(true[shown], label="true", linewidth=1.2)
    axis.plot(predicted[shown], label="predicted", linewidth=1.0, alpha=0.8)
    axis.set_xlabel("frame (sorted by filename)")
    axis.set_ylabel(name)
    axis.set_title(f"{name}: predicted vs true over the sequence")
    axis.legend()
    plots.save_figure(fig, plots_dir / "steering_sequence.png")

    fig, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(true, predicted, s=6, alpha=0.5)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    axis.plot([low, high], [low, high], color="black", linewidth=0.8)
    axis.set_xlabel(f"true {name}")
    axis.set_ylabel(f"predicted {name}")
    axis.set_title("predicted vs true")
    plots.save_figure(fig, plots_dir / "steering_scatter.png")


def segmentation_report(model: keras.Model, batches: Batches, meta: dict[str, Any],
                        plots_dir: Path) -> dict[str, Any]:
    class_names = list(meta["class_names"])
    size = len(class_names)
    counts = np.zeros((size, size), dtype=np.int64)
    first: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for index in range(len(batches)):
        images, masks = batches[index]
        predicted = np.argmax(np.asarray(model.predict_on_batch(images)), axis=-1)
        counts += confusion(masks, predicted, size)
        if first is None:
            first = (images, masks, predicted)
    result = segmentation_scores(counts, class_names)
    # Every pixel called background (class 0), scored by the same rules: a model that
    # learned nothing gets this, not more.
    background = np.zeros_like(counts)
    background[:, 0] = counts.sum(axis=1)
    result["chance_mean_iou"] = segmentation_scores(background, class_names)["mean_iou"]
    if first is not None:
        overlay_grid(*first, plots_dir / "segmentation_overlays.png")
    return result


def confusion(masks: np.ndarray, predicted: np.ndarray, size: int) -> np.ndarray:
    """(true class, predicted class) pixel counts."""
    return np.bincount(masks.astype(np.int64).ravel() * size + predicted.ravel(),
                       minlength=size * size).reshape(size, size)


def segmentation_scores(counts: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Mean and per-class IoU, pixel accuracy and drivable-area IoU from a confusion matrix."""
    intersection = np.diag(counts).astype(np.float64)
    union = counts.sum(axis=0) + counts.sum(axis=1) - intersection
    present = union > 0
    iou = np.where(present, intersection / np.maximum(union, 1), 0.0)
    result: dict[str, Any] = {
        "mean_iou": float(iou[present].mean()) if present.any() else None,
        "pixel_accuracy": float(intersection.sum() / max(counts.sum(), 1)),
        "iou": {name: float(v) for name, v in zip(class_names, iou, strict=True)},
    }
    if "drivable" in class_names:
        # Drivable area = everything the car may drive on, lane markings included.
        road = [i for i, n in enumerate(class_names) if n in ("drivable", "lane_marking")]
        both = counts[np.ix_(road, road)].sum()
        result["drivable_iou"] = float(both / max(counts[road].sum() + counts[:, road].sum()
                                                  - both, 1))
    return result


def overlay(image: np.ndarray, classes: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """``image`` with every non-background pixel tinted by its class colour."""
    colours = CLASS_COLOURS[np.clip(classes, 0, len(CLASS_COLOURS) - 1)]
    tinted = image.astype(np.float32) * (1 - alpha) + colours.astype(np.float32) * alpha
    return np.where((classes > 0)[..., None], tinted, image).astype(np.uint8)


def overlay_grid(images: np.ndarray, true: np.ndarray, predicted: np.ndarray, out: Path,
                 count: int = 6) -> Path:
    """Rows of (frame, true mask overlay, predicted mask overlay)."""
    import matplotlib.pyplot as plt

    count = min(count, len(images))
    fig, axes = plt.subplots(count, 3, figsize=(9, 1.2 * count + 0.4), squeeze=False)
    for row in range(count):
        for col, (title, picture) in enumerate((
                ("frame", images[row]), ("true", overlay(images[row], true[row])),
                ("predicted", overlay(images[row], predicted[row])))):
            axes[row, col].imshow(picture)
            axes[row, col].axis("off")
            if row == 0:
                axes[row, col].set_title(title, fontsize=9)
    return plots.save_figure(fig, out)
