"""Detection scores with the reference implementation (pycocotools COCOeval), and plots.

metrics.json gets ``map_50`` (the headline: mAP at IoU 0.5), ``map`` (mAP@[.5:.95]),
``map_small/medium/large``, ``ap_50_<class>`` and ``chance_map_50``: what a detector
that learned only where boxes usually are scores (each class's mean box, at the
image centre, scored by the class's frequency). Boxes are scored in the original
image pixels, after undoing the letterbox.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import plots

HEADLINE = "map_50"
EVAL_SCORE_THRESHOLD = 0.05  # scoring keeps low-confidence boxes: AP integrates over them


def detect(model: keras.Model, images: np.ndarray, batch_size: int) -> list[dict[str, Any]]:
    """Per image: ``boxes`` (xyxy, model pixels), ``scores``, ``labels`` after NMS.

    keras-hub's NMS needs a static batch size, so the last partial batch is padded
    with blank images and their detections dropped.
    """
    count = len(images)
    padded = -count % batch_size
    if padded:
        images = np.concatenate([images, np.zeros((padded, *images.shape[1:]), images.dtype)])
    scaled = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    out = model.predict(scaled, batch_size=batch_size, verbose=0)
    results: list[dict[str, Any]] = []
    for row in range(count):
        keep = (out["labels"][row] >= 0) & (np.arange(out["labels"].shape[1])
                                            < int(out["num_detections"][row]))
        results.append({"boxes": np.asarray(out["boxes"][row][keep], np.float64),
                        "scores": np.asarray(out["confidence"][row][keep], np.float64),
                        "labels": np.asarray(out["labels"][row][keep]).astype(int)})
    return results


def to_original(detection: dict[str, Any], record: dict[str, Any]) -> np.ndarray:
    """A detection's boxes in the original image's pixels, clipped to it (xyxy)."""
    boxes = detection["boxes"] / record["scale"]
    limits = [record["width"], record["height"], record["width"], record["height"]]
    return np.clip(boxes, 0, limits)


def in_original(detection: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The detection in original pixels, clipped to the image; boxes left with no width or
    height (predicted in the letterbox padding) are dropped with their scores and labels."""
    boxes = to_original(detection, record)
    keep = (boxes[:, 2] - boxes[:, 0] > 0) & (boxes[:, 3] - boxes[:, 1] > 0)
    return {"boxes": boxes[keep], "scores": np.asarray(detection["scores"])[keep],
            "labels": np.asarray(detection["labels"])[keep]}


def coco_results(detections: list[dict[str, Any]], records: list[dict[str, Any]],
                 class_names: list[str], numbered: bool = False) -> list[dict[str, Any]]:
    """COCO results-format entries (category_id = class index + 1, bbox [x, y, w, h]).

    ``numbered``: image ids 1..n in record order (as ``ground_truth`` numbers them),
    else each record's own ``image_id`` (None when the input had no annotations).
    """
    rows = []
    for number, (detection, record) in enumerate(zip(detections, records, strict=True), 1):
        image_id = number if numbered else record.get("image_id")
        kept = in_original(detection, record)
        for box, score, label in zip(kept["boxes"], kept["scores"], kept["labels"], strict=True):
            rows.append({"file_name": record["file_name"], "image_id": image_id,
                         "category": class_names[label], "category_id": int(label) + 1,
                         "bbox": [round(float(v), 2) for v in
                                  (box[0], box[1], box[2] - box[0], box[3] - box[1])],
                         "score": round(float(score), 5)})
    return rows


def ground_truth(records: list[dict[str, Any]], class_names: list[str]) -> dict[str, Any]:
    """The records as a COCO dataset (image ids renumbered 1..n in record order)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for number, record in enumerate(records, 1):
        images.append({"id": number, "file_name": record["file_name"],
                       "width": record["width"], "height": record["height"]})
        for box, label in zip(record["boxes"], record["labels"], strict=True):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": number,
                                "category_id": int(label) + 1, "iscrowd": 0, "area": w * h,
                                "bbox": [float(box[0]), float(box[1]), w, h]})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]}


def coco_scores(gt: dict[str, Any], results: list[dict[str, Any]], class_names: list[str]
                ) -> tuple[dict[str, Any], Any]:
    """COCOeval's summary numbers and per-class AP@.5; also the evaluator (for PR curves)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        found = truth.loadRes(results) if results else COCO()
        if not results:
            found.dataset = {"images": gt["images"], "categories": gt["categories"],
                             "annotations": []}
            found.createIndex()
        evaluator = COCOeval(truth, found, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [None if v < 0 else round(float(v), 4) for v in evaluator.stats]
    scores: dict[str, Any] = {"map": stats[0], "map_50": stats[1], "map_75": stats[2],
                              "map_small": stats[3], "map_medium": stats[4],
                              "map_large": stats[5]}
    precision = evaluator.eval["precision"]  # (iou, recall, class, area, max_dets)
    for index, name in enumerate(class_names):
        values = precision[0, :, index, 0, -1]
        values = values[values > -1]
        scores[f"ap_50_{name}"] = round(float(values.mean()), 4) if values.size else None
    return scores, evaluator


def chance_results(records: list[dict[str, Any]], class_names: list[str]
                   ) -> list[dict[str, Any]]:
    """The trivial baseline: per class, its mean relative box size, centred, scored by frequency."""
    sizes: dict[int, list[np.ndarray]] = {}
    for record in records:
        extent = np.array([record["width"], record["height"]], np.float64)
        for box, label in zip(record["boxes"], record["labels"], strict=True):
            sizes.setdefault(int(label), []).append((box[2:] - box[:2]) / extent)
    total = sum(len(v) for v in sizes.values()) or 1
    rows = []
    for number, record in enumerate(records, 1):
        extent = np.array([record["width"], record["height"]], np.float64)
        for label, relative in sizes.items():
            w, h = np.mean(relative, axis=0) * extent
            rows.append({"image_id": number, "category_id": label + 1, "score":
                         len(relative) / total, "bbox": [float(extent[0] - w) / 2,
                                                         float(extent[1] - h) / 2,
                                                         float(w), float(h)]})
    return rows


def report(model: keras.Model, batches: Any, meta: dict[str, Any], plots_dir: Path
           ) -> dict[str, Any]:
    """COCOeval mAPs and per-class AP, the chance level; PR curves and a box grid in plots/."""
    from .detection_model import set_thresholds

    class_names = list(meta["class_names"])
    records = batches.records
    set_thresholds(model, EVAL_SCORE_THRESHOLD, 0.5, 100)
    detections = detect(model, batches.inputs, batches.batch_size)
    results = coco_results(detections, records, class_names, numbered=True)
    gt = ground_truth(records, class_names)
    scores, evaluator = coco_scores(gt, [{k: r[k] for k in ("image_id", "category_id", "bbox",
                                                            "score")} for r in results],
                                    class_names)
    chance, _ = coco_scores(gt, chance_results(records, class_names), class_names)
    plots_dir.mkdir(parents=True, exist_ok=True)
    pr_curves(evaluator, class_names, plots_dir / "precision_recall.png")
    box_grid(batches.inputs, records, detections, class_names, plots_dir / "validation_boxes.png")
    return {**scores, "chance_map_50": chance["map_50"], "images": len(records),
            "boxes": int(sum(len(r["labels"]) for r in records))}


def pr_curves(evaluator: Any, class_names: list[str], out: Path) -> Path:
    """Precision-recall at IoU 0.5, one panel per class."""
    import matplotlib.pyplot as plt

    recall = evaluator.params.recThrs
    columns = min(4, len(class_names))
    rows = -(-len(class_names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for index, (axis, name) in enumerate(zip(axes.ravel(), class_names, strict=False)):
        precision = evaluator.eval["precision"][0, :, index, 0, -1]
        axis.axis("on")
        axis.plot(recall, np.where(precision < 0, np.nan, precision))
        ap = precision[precision > -1].mean() if (precision > -1).any() else float("nan")
        axis.set(title=f"{name} (AP@.5 {ap:.3f})", xlabel="recall", ylabel="precision",
                 xlim=(0, 1), ylim=(0, 1.02))
    fig.tight_layout()
    return plots.save_figure(fig, out)


def box_grid(images: np.ndarray, records: list[dict[str, Any]],
             detections: list[dict[str, Any]], class_names: list[str], out: Path,
             count: int = 12, min_score: float = 0.3) -> Path:
    """Validation images with true boxes (green) and predictions (red, with scores)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    columns = 4
    shown = min(count, len(images))
    rows = -(-shown // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, index in zip(axes.ravel(), range(shown), strict=False):
        record, found = records[index], in_original(detections[index], records[index])
        axis.imshow(images[index])
        for box in record["boxes"] * record["scale"]:
            axis.add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), fill=False,
                                     edgecolor="lime", linewidth=1.5))
        for box, score, label in zip(found["boxes"] * record["scale"], found["scores"],
                                     found["labels"], strict=True):
            if score < min_score:
                continue
            axis.add_patch(Rectangle(box[:2], *(box[2:] - box[:2]), fill=False,
                                     edgecolor="red", linewidth=1, linestyle="--"))
            # the label sits inside the image: over the box, or under it at the top edge, and
            # leftwards from its right side in the right half; clipped like the image
            left = box[0] < images[index].shape[1] / 2
            above = box[1] > 0.1 * images[index].shape[0]
            axis.text(box[0] if left else box[2], box[1] if above else box[3],
                      f"{class_names[label]} {score:.2f}", color="red", fontsize=6,
                      ha="left" if left else "right", va="bottom" if above else "top",
                      clip_on=True)
        axis.set_title(Path(record["file_name"]).name, fontsize=7)
    fig.suptitle("green: true boxes, red: predicted", fontsize=9)
    return plots.save_figure(fig, out)
