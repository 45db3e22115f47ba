"""Segmentation metrics per volume and class (Dice, IoU, HD95) and slice overlays.

Slices are put back together into their volumes first, so every number is a 3D
score of one subject on the training grid (``meta["spacing"]``), averaged over
subjects. A class absent from both the truth and the prediction of a volume is
left out of that volume's averages rather than counted as perfect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import model as _model  # noqa: F401  registers the custom loss/metric for load_model
from . import plots
from .pipeline import Batches

HEADLINE = "dice"  # mean foreground Dice over validation volumes


def headline(meta: dict[str, Any]) -> str:
    """The number train prints at the end: Dice (segmentation) or mean ROC-AUC (classification)."""
    return "auc" if meta.get("task") == "classification" else HEADLINE


def report(model: keras.Model, batches: Batches, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """Mean and per-class Dice, IoU and 95th-percentile Hausdorff distance (mm); overlays."""
    if meta.get("task") == "classification":
        from . import classify_report

        return classify_report.report(model, batches, meta, plots_dir)
    predicted = np.argmax(model.predict(batches, verbose=0), axis=-1).astype(np.uint8)
    truth = batches.targets
    ids = getattr(batches, "volume_ids", np.zeros(len(truth), dtype=int))
    cases = list(getattr(batches, "cases", [f"volume_{i}" for i in np.unique(ids)]))
    names = list(meta["class_names"])
    spacing = tuple(float(s) for s in meta["spacing"])
    scores: dict[str, dict[str, list[float]]] = {n: {"dice": [], "iou": [], "hd95_mm": []}
                                                 for n in names[1:]}
    per_volume = {}
    for index in np.unique(ids):
        # (z, x, y) stacks -> (x, y, z) volumes so distances use the right spacing
        true_volume = truth[ids == index].transpose(1, 2, 0)
        pred_volume = predicted[ids == index].transpose(1, 2, 0)
        dices = []
        for value, name in enumerate(names[1:], start=1):
            result = class_scores(true_volume == value, pred_volume == value, spacing)
            if result is None:
                continue
            for key, number in result.items():
                if number is not None:
                    scores[name][key].append(number)
            dices.append(result["dice"])
        per_volume[cases[int(index)]] = float(np.mean(dices)) if dices else None
    per_class = {name: {key: (float(np.mean(v)) if v else None) for key, v in values.items()}
                 for name, values in scores.items()}
    overlays(batches.inputs, truth, predicted, ids, cases, names, plots_dir / "overlays.png")
    return {
        "dice": _mean(c["dice"] for c in per_class.values()),
        "iou": _mean(c["iou"] for c in per_class.values()),
        "hd95_mm": _mean(c["hd95_mm"] for c in per_class.values()),
        "per_class": per_class,
        "per_volume_dice": per_volume,
    }


def class_scores(true: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]
                 ) -> dict[str, float | None] | None:
    """Dice, IoU and HD95 of one binary structure; None when it is in neither mask."""
    true_count, pred_count = int(true.sum()), int(pred.sum())
    if true_count == 0 and pred_count == 0:
        return None
    overlap = int(np.logical_and(true, pred).sum())
    union = true_count + pred_count - overlap
    hd95 = hausdorff95(true, pred, spacing) if true_count and pred_count else None
    return {"dice": 2.0 * overlap / (true_count + pred_count), "iou": overlap / union,
            "hd95_mm": hd95}


def hausdorff95(true: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Symmetric 95th-percentile surface distance in mm (the larger directed one)."""
    from scipy import ndimage

    def surface(mask: np.ndarray) -> np.ndarray:
        return mask & ~ndimage.binary_erosion(mask, border_value=0)

    true_surface, pred_surface = surface(true), surface(pred)
    to_true = ndimage.distance_transform_edt(~true_surface, sampling=spacing)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)
    return float(max(np.percentile(to_true[pred_surface], 95),
                     np.percentile(to_pred[true_surface], 95)))


def overlays(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, ids: np.ndarray,
             cases: list[str], names: list[str], out: Path, count: int = 4) -> Path:
    """For up to ``count`` volumes, the slice with most foreground: image, truth, prediction."""
    import matplotlib.pyplot as plt

    volumes = list(np.unique(ids))[:count]
    fig, axes = plt.subplots(len(volumes), 3, figsize=(9, 3 * len(volumes)), squeeze=False)
    colours = plt.get_cmap("tab10", max(len(names), 2))
    for row, index in zip(axes, volumes, strict=True):
        members = np.flatnonzero(ids == index)
        best = members[np.argmax((truth[members] > 0).reshape(len(members), -1).sum(axis=1))]
        # RAS+ (x, y) slice -> radiological view: patient's right on the left, anterior up
        image = images[best, ..., 0].astype(np.float32).T[::-1, ::-1]
        for axis, (mask, title) in zip(row, ((None, "image"), (truth[best], "truth"),
                                             (predicted[best], "prediction")), strict=True):
            axis.imshow(image, cmap="gray")
            if mask is not None:
                shown = mask.T[::-1, ::-1].astype(float)
                axis.imshow(np.ma.masked_where(shown == 0, shown), cmap=colours,
                            vmin=0, vmax=max(len(names) - 1, 1), alpha=0.5,
                            interpolation="nearest")
            axis.set_title(f"{cases[int(index)]}: {title}", fontsize=8)
            axis.axis("off")
    return plots.save_figure(fig, out)


def _mean(values: Any) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else 0.0
