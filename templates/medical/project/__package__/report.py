"""Segmentation metrics per volume and class (Dice, IoU, HD95) and slice overlays.

Slices (2D) are put back together into their volumes first, and 3D models predict whole
volumes by the sliding window, so every number is a 3D score of one subject on the
training grid (``meta["spacing"]``), averaged over subjects. A class absent from both
the truth and the prediction of a volume is left out of that volume's averages rather
than counted as perfect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import model as _model  # noqa: F401  registers the custom loss/metric for load_model
from . import plots
from .data import VolumeBatches
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
    volumes = (predicted_volumes_3d(model, batches, meta) if int(meta.get("dims", 2)) == 3
               else predicted_volumes_2d(model, batches))
    names = list(meta["class_names"])
    spacing = tuple(float(s) for s in meta["spacing"])
    overlays(volumes, names, plots_dir / "overlays.png")
    result = volume_scores(volumes, names, spacing)
    # What predicting background everywhere scores, by the same rules: a model that
    # learned nothing gets this, not more.
    empty = [(case, image, truth, np.zeros_like(truth)) for case, image, truth, _ in volumes]
    result["chance_dice"] = volume_scores(empty, names, spacing)["dice"]
    return result


def volume_scores(volumes: list[Scored], names: list[str], spacing: tuple[float, ...]
                  ) -> dict[str, Any]:
    """Dice, IoU and HD95 per foreground class, averaged over volumes, and per volume."""
    scores: dict[str, dict[str, list[float]]] = {n: {"dice": [], "iou": [], "hd95_mm": []}
                                                 for n in names[1:]}
    per_volume = {}
    for case, _, true_volume, pred_volume in volumes:
        dices = []
        for value, name in enumerate(names[1:], start=1):
            result = class_scores(true_volume == value, pred_volume == value, spacing)
            if result is None:
                continue
            for key, number in result.items():
                if number is not None:
                    scores[name][key].append(number)
            if result["dice"] is not None:
                dices.append(result["dice"])
        per_volume[case] = float(np.mean(dices)) if dices else None
    per_class = {name: {key: (float(np.mean(v)) if v else None) for key, v in values.items()}
                 for name, values in scores.items()}
    return {
        "dice": _mean(c["dice"] for c in per_class.values()),
        "iou": _mean(c["iou"] for c in per_class.values()),
        "hd95_mm": _mean(c["hd95_mm"] for c in per_class.values()),
        "per_class": per_class,
        "per_volume_dice": per_volume,
    }


Scored = tuple[str, np.ndarray, np.ndarray, np.ndarray]  # case, image, truth, prediction


def predicted_volumes_2d(model: keras.Model, batches: Batches) -> list[Scored]:
    """Slices predicted, then stacked back into (x, y, z) volumes."""
    predicted = np.argmax(model.predict(batches, verbose=0), axis=-1).astype(np.uint8)
    truth = batches.targets
    ids = np.zeros(len(truth), dtype=int)  # batches of unknown origin: one volume
    cases = ["volume_0"]
    if isinstance(batches, VolumeBatches) and batches.volume_ids is not None:
        ids, cases = batches.volume_ids, batches.cases
    # (z, x, y) stacks -> (x, y, z) volumes so distances use the right spacing
    return [(cases[int(index)], batches.inputs[ids == index, ..., 0].transpose(1, 2, 0),
             truth[ids == index].transpose(1, 2, 0),
             predicted[ids == index].transpose(1, 2, 0)) for index in np.unique(ids)]


def predicted_volumes_3d(model: keras.Model, batches: Batches, meta: dict[str, Any]
                         ) -> list[Scored]:
    """Whole volumes predicted by the sliding window, as ``predict`` does."""
    from .patches import sliding_window

    if not isinstance(batches, VolumeBatches) or batches.volumes is None:
        raise TypeError("3D reports need VolumeBatches with their volumes (data.load_splits)")
    results = []
    for case, (image, label) in zip(batches.cases, batches.volumes, strict=True):
        probabilities = sliding_window(
            lambda x: model.predict(x, verbose=0), image, tuple(meta["patch_3d"]),
            float(meta["overlap"]), str(meta["blend"]), batch_size=batches.batch_size,
            fill=int(image.min()))
        results.append((case, image, label, np.argmax(probabilities, -1).astype(np.uint8)))
    return results


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


def overlays(volumes: list[Scored], names: list[str], out: Path, count: int = 4) -> Path:
    """For up to ``count`` volumes, the slice with most foreground: image, truth, prediction."""
    import matplotlib.pyplot as plt

    shown_volumes = volumes[:count]
    fig, axes = plt.subplots(len(shown_volumes), 3, figsize=(9, 3 * len(shown_volumes)),
                             squeeze=False)
    colours = plt.get_cmap("tab10", max(len(names), 2))
    for row, (case, image, truth, predicted) in zip(axes, shown_volumes, strict=True):
        best = int(np.argmax((truth > 0).sum(axis=(0, 1))))
        # RAS+ (x, y) slice -> radiological view: patient's right on the left, anterior up
        picture = image[:, :, best].astype(np.float32).T[::-1, ::-1]
        for axis, (mask, title) in zip(row, ((None, "image"), (truth[:, :, best], "truth"),
                                             (predicted[:, :, best], "prediction")),
                                       strict=True):
            axis.imshow(picture, cmap="gray")
            if mask is not None:
                shown = mask.T[::-1, ::-1].astype(float)
                axis.imshow(np.ma.masked_where(shown == 0, shown), cmap=colours,
                            vmin=0, vmax=max(len(names) - 1, 1), alpha=0.5,
                            interpolation="nearest")
            axis.set_title(f"{case}: {title}", fontsize=8)
            axis.axis("off")
    return plots.save_figure(fig, out)


def _mean(values: Any) -> float | None:
    """The mean of the defined values; None (undefined, not a perfect or zero score) if none."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None
