"""``python -m PACKAGE predict`` for detection: ``detections.json`` in COCO results format.

Each entry: ``file_name``, ``image_id`` (when the input folder is an annotated
COCO / YOLO / VOC split, its id; else null), ``category``, ``category_id`` (class
index + 1, as in the sample's annotations), ``bbox`` [x, y, w, h] in the original
image's pixels, ``score``. Thresholds come from ``[predict]``. With
``predict.draw = true`` a copy of each image with its boxes drawn goes to ``annotated/``.

A video (mp4, avi, ...; read with OpenCV) gives the entries of every frame, with
``file_name`` the video's name and ``frame`` the frame's index from 0; with
``predict.draw`` its frames, boxes drawn, go to ``annotated/<video stem>.mp4``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from . import rundir
from .config import get, load_config
from .detection_data import letterbox
from .detection_formats import load_coco_json
from .detection_model import set_thresholds
from .detection_report import coco_results, detect, in_original
from .errors import DataError
from .media import UNREADABLE, Video, chunks, expand_inputs, first_line, open_image


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Detect objects in every input image; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])
    meta = rundir.read_meta(run)
    images, videos = expand_inputs(inputs)
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
    batch_size, draw = int(get(config, "predict.batch_size")), bool(get(config, "predict.draw"))
    detections = detect(net, np.stack(pixels), batch_size) if pixels else []
    rows = coco_results(detections, records, class_names)
    out = rundir.output_folder(run, out)
    if draw:
        for detection, record in zip(detections, records, strict=True):
            _draw(record, in_original(detection, record), class_names,
                  out / "annotated" / f"{Path(record['file']).stem}.png")
    for video in videos:
        rows += _predict_video(net, video, size, batch_size, class_names,
                               out / "annotated" / f"{video.stem}.mp4" if draw else None)
    rundir.atomic_write_text(out / "detections.json", json.dumps(rows, indent=1))
    print(f"{len(rows)} detection(s) in {len(records)} image(s)"
          + (f" and {len(videos)} video(s)" if videos else "") + f" written to "
          f"{out / 'detections.json'}")
    return out


def _predict_video(net: Any, video: Path, size: tuple[int, int], batch_size: int,
                   class_names: list[str], annotated: Path | None) -> list[dict[str, Any]]:
    """COCO results rows of every frame (``frame``: its index); boxes drawn into ``annotated``."""
    from PIL import Image

    rows: list[dict[str, Any]] = []
    writer = None
    staging = rundir.staged_path(annotated) if annotated else contextlib.nullcontext(None)
    with Video(video) as clip, staging as staged:  # the video is renamed into place at the end
        try:
            for chunk in chunks(clip.frames(), batch_size):
                frames = [Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])) for _, bgr in chunk]
                boxed = [letterbox(frame, size) for frame in frames]
                found = detect(net, np.stack([image for image, _ in boxed]), batch_size)
                for (index, _), frame, (_, scale), detection in zip(chunk, frames, boxed, found,
                                                                    strict=True):
                    record = {"file_name": video.name, "image_id": None, "width": frame.width,
                              "height": frame.height, "scale": scale}
                    rows += [{**row, "frame": index}
                             for row in coco_results([detection], [record], class_names)]
                    if staged is None:
                        continue
                    picture = np.asarray(_drawn(frame, in_original(detection, record),
                                                class_names))[..., ::-1]  # RGB -> BGR
                    writer = writer or _open_writer(staged, clip.fps, picture.shape, annotated)
                    writer.write(np.ascontiguousarray(picture))
        finally:
            if writer is not None:
                writer.release()
    return rows



def _open_writer(target: Path, fps: float, shape: tuple[int, ...], shown: Path | None) -> Any:
    """An mp4v cv2.VideoWriter on ``target`` (a staged path); errors name ``shown``."""
    import cv2

    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps,
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise DataError(f"cannot write video {shown} (this OpenCV has no mp4v encoder)")
    return writer


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


def _draw(record: dict[str, Any], detection: dict[str, Any], class_names: list[str],
          target: Path) -> None:
    with open_image(Path(record["file"])) as img:
        image = _drawn(img.convert("RGB"), detection, class_names)
    rundir.write_via(target, lambda path: image.save(path, format="PNG"))


def _drawn(image: Any, detection: dict[str, Any], class_names: list[str]) -> Any:
    """The RGB PIL ``image`` with ``detection``'s boxes (original pixels) drawn on it."""
    from PIL import ImageDraw

    pen = ImageDraw.Draw(image)
    for box, score, label in zip(detection["boxes"], detection["scores"], detection["labels"],
                                 strict=True):
        pen.rectangle([float(v) for v in box], outline=(255, 0, 0), width=2)
        pen.text((float(box[0]), float(box[1]) - 10), f"{class_names[label]} {score:.2f}",
                 fill=(255, 0, 0))
    return image
