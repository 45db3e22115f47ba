"""``python -m PACKAGE predict`` for detection: ``detections.json`` in COCO results format.

Each entry: ``file_name``, ``image_id`` (when the input folder is an annotated
COCO / YOLO / VOC split, its id; else null), ``category``, ``category_id`` (class
index + 1, as in the sample's annotations), ``bbox`` [x, y, w, h] in the original
image's pixels, ``score``. Thresholds come from ``[predict]``. With
``predict.draw = true`` a copy of each image with its boxes drawn goes to ``annotated/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import rundir
from .config import get, load_config
from .detection_data import letterbox
from .detection_formats import load_coco_json
from .detection_model import set_thresholds
from .detection_report import coco_results, detect, to_original
from .errors import DataError
from .media import UNREADABLE, expand_inputs, first_line, open_image


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Detect objects in every input image; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])
    meta = rundir.read_meta(run)
    images, videos = expand_inputs(inputs)
    if videos:
        raise DataError(f"{videos[0]}: detection predicts on images and folders of images; "
                        "extract the video's frames first")
    net = rundir.load_model(rundir.model_checkpoint(run))
    set_thresholds(net, float(get(config, "predict.score_threshold")),
                   float(get(config, "predict.iou_threshold")),
                   int(get(config, "predict.max_detections")))
    class_names = list(meta["class_names"])
    size = (int(meta["image_shape"][0]), int(meta["image_shape"][1]))
    pixels, records = [], []
    for path in images:
        try:
            with open_image(path) as img:
                width, height = img.size
                image, scale = letterbox(img.convert("RGB"), size)
        except UNREADABLE as err:
            raise DataError(f"cannot read image {path}: {first_line(err)}") from None
        pixels.append(image)
        records.append({"file": str(path), "file_name": path.name, "image_id": None,
                        "width": width, "height": height, "scale": scale})
    _known_ids(inputs, records)
    detections = detect(net, np.stack(pixels), int(get(config, "predict.batch_size")))
    rows = coco_results(detections, records, class_names)
    out = rundir.output_folder(run, out)
    rundir.atomic_write_text(out / "detections.json", json.dumps(rows, indent=1))
    if bool(get(config, "predict.draw")):
        for detection, record in zip(detections, records, strict=True):
            _draw(record, to_original(detection, record), detection, class_names,
                  out / "annotated" / f"{Path(record['file']).stem}.png")
    print(f"{len(rows)} detection(s) in {len(records)} image(s) written to "
          f"{out / 'detections.json'}")
    return out


def _known_ids(inputs: list[Path], records: list[dict[str, Any]]) -> None:
    """Fill ``image_id`` from COCO annotations when an input folder is a COCO split."""
    by_name: dict[str, int] = {}
    for folder in inputs:
        if not folder.is_dir():
            continue
        name = f"instances_{folder.name}.json"
        for listing in (folder.parent.parent / "annotations" / name,
                        folder.parent / "annotations" / name):
            if listing.is_file():
                try:
                    coco = load_coco_json(listing)
                    by_name.update({str(i["file_name"]): int(i["id"]) for i in coco["images"]})
                except (DataError, ValueError, KeyError, TypeError):
                    continue  # not annotations after all: ids stay unknown
    for record in records:
        record["image_id"] = by_name.get(record["file_name"])


def _draw(record: dict[str, Any], boxes: np.ndarray, detection: dict[str, Any],
          class_names: list[str], target: Path) -> None:
    from PIL import ImageDraw

    with open_image(Path(record["file"])) as img:
        image = img.convert("RGB")
    pen = ImageDraw.Draw(image)
    for box, score, label in zip(boxes, detection["scores"], detection["labels"], strict=True):
        pen.rectangle([float(v) for v in box], outline=(255, 0, 0), width=2)
        pen.text((float(box[0]), float(box[1]) - 10), f"{class_names[label]} {score:.2f}",
                 fill=(255, 0, 0))
    rundir.write_via(target, lambda path: image.save(path, format="PNG"))
