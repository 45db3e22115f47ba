"""``python -m PACKAGE predict``: steering (or masks) for image folders and videos.

    predict --run-dir RUN frames/ drive.mp4 one.png [--out DIR]

Images: one row per frame in ``DIR/predictions.csv`` and, with ``predict.draw``, an
annotated copy in ``DIR/frames/``. A folder with a ``labels.csv`` (the training layout)
also gets the true steering in the CSV and its MAE printed. Videos (read with OpenCV):
``DIR/<video>.csv`` with one row per frame and ``DIR/<video>.annotated.mp4``.
Annotations: the predicted steering as an arc from the bottom centre plus its value,
or the predicted mask overlaid. The frames/s of the whole loop (decode, resize,
predict, draw, encode) is printed. Detection: ``detections.json`` (``detection_predict``,
shared with vision).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import augment, detection_predict, rundir
from .config import get, load_config
from .data import list_images, read_frame
from .errors import DataError
from .media import Video, chunks, expand_inputs, model_frame, open_image, write_csv
from .report import overlay
from .tables import open_table

_REGISTERED = augment.RandomShadow  # custom layer known before load_model
MIN_DRAW_WIDTH = 600  # tiny frames (PilotNet's 200 px) are upscaled so the text is legible


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Predict every input; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])  # predict --set KEY=VALUE
    meta = rundir.read_meta(run)
    if meta.get("task") == "detection":  # detections.json (shared with vision)
        return detection_predict.run_prediction(run_path, inputs, out, overrides)
    images, videos = expand_inputs(inputs, _images_in)
    net = rundir.load_model(rundir.model_checkpoint(run))
    rundir.check_model_outputs(net, meta, "class_names" if meta["task"] == "segmentation"
                               else "targets")
    predictor = Predictor(net, meta, batch_size=int(get(config, "predict.batch_size")),
                          draw=bool(get(config, "predict.draw")))
    out = rundir.output_folder(run, out)
    if images:
        predictor.images(images, out)
    for video in videos:
        predictor.video(video, out, codec=str(get(config, "predict.video_codec")))
    return out


class Predictor:
    """The model plus how to turn its outputs into CSV rows and annotated frames."""

    def __init__(self, net: keras.Model, meta: dict[str, Any], *, batch_size: int,
                 draw: bool) -> None:
        self.net = net
        self.meta = meta
        self.height, self.width, _ = meta["image_shape"]
        self.batch_size = max(1, batch_size)
        self.draw = draw
        self.segmentation = meta["task"] == "segmentation"
        self.columns = (list(meta["class_names"]) if self.segmentation
                        else list(meta["targets"]))

    def images(self, files: list[Path], out: Path) -> None:
        """predictions.csv (+ frames/ annotated) for image files."""
        # steering labels beside the frames are scored for steering runs only (a mask is no angle)
        truth = {} if self.segmentation else _known_steering(files)
        header = ["file", *self.columns] + (["true_steering"] if truth else [])
        rows, errors = [], []
        started = time.perf_counter()
        for chunk in chunks(files, self.batch_size):
            frames = np.stack([read_frame(path, self.height, self.width) for path in chunk])
            outputs = np.asarray(self.net.predict_on_batch(frames))
            for path, output in zip(chunk, outputs, strict=True):
                row = [str(path), *self._values(output)]
                if truth:
                    true = truth.get(path.resolve())
                    row.append("" if true is None else f"{true:.6f}")
                    if true is not None:
                        errors.append(abs(float(output[0]) - true))
                rows.append(row)
                if self.draw:
                    self._save_annotated(path, output, out / "frames" / f"{path.stem}.png")
        rate = len(files) / (time.perf_counter() - started)
        write_csv(out / "predictions.csv", header, rows)
        for row in rows[:5]:
            print(f"{row[0]}: " + ", ".join(f"{c} {v}" for c, v in zip(self.columns, row[1:],
                                                                         strict=False)))
        print(f"{len(rows)} frame(s) at {rate:.1f} frames/s -> {out / 'predictions.csv'}"
              + (f"; annotated frames in {out / 'frames'}" if self.draw else ""))
        if errors:
            print(f"steering MAE against labels.csv: {np.mean(errors):.4f} "
                  f"over {len(errors)} frame(s)")

    def video(self, video: Path, out: Path, codec: str) -> Path:
        """<stem>.csv (one row per frame) and <stem>.annotated.mp4 for one video file."""
        writer = None
        target = out / f"{video.stem}.annotated.mp4"
        rows: list[list[str]] = []
        started = time.perf_counter()
        with Video(video) as clip, rundir.staged_path(target) as staged:  # renamed at the end
            try:
                for chunk in chunks(clip.frames(), self.batch_size):
                    originals = [frame for _, frame in chunk]
                    frames = np.stack([model_frame(f, self.width, self.height)
                                       for f in originals])
                    outputs = np.asarray(self.net.predict_on_batch(frames))
                    for original, output in zip(originals, outputs, strict=True):
                        rows.append([str(len(rows)), f"{len(rows) / clip.fps:.3f}",
                                     *self._values(output)])
                        if not self.draw:
                            continue
                        picture = self.annotate(original[..., ::-1], output)[..., ::-1]
                        if writer is None:
                            writer = _open_writer(staged, codec, clip.fps, picture.shape,
                                                  shown=target)
                        writer.write(np.ascontiguousarray(picture))
            finally:
                if writer is not None:
                    writer.release()
        rate = len(rows) / (time.perf_counter() - started)
        write_csv(out / f"{video.stem}.csv", ["frame", "time_s", *self.columns], rows)
        print(f"{video}: {len(rows)} frame(s) at {rate:.1f} frames/s -> {out / video.stem}.csv"
              + (f" and {target}" if self.draw else ""))
        return target

    def annotate(self, image: np.ndarray, output: np.ndarray) -> np.ndarray:
        """RGB ``image`` (any size) with the prediction drawn on it."""
        import cv2

        height, width = image.shape[:2]
        scale = max(1, -(-MIN_DRAW_WIDTH // width))
        picture = cv2.resize(image, (width * scale, height * scale),
                             interpolation=cv2.INTER_LINEAR) if scale > 1 else image.copy()
        height, width = picture.shape[:2]
        if self.segmentation:
            classes = np.argmax(output, axis=-1).astype(np.uint8)
            classes = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST)
            picture = overlay(picture, classes)
            shares = np.bincount(classes.ravel(), minlength=len(self.columns)) / classes.size
            label = f"{self.columns[1] if len(self.columns) > 1 else 'class'} {shares[1]:.0%}"
        else:
            steering = float(output[0])
            draw_steering_arc(picture, steering)
            label = f"steer {steering:+.3f}"
        cv2.putText(picture, label, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4,
                    cv2.LINE_AA)
        cv2.putText(picture, label, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2,
                    cv2.LINE_AA)
        return picture

    def _values(self, output: np.ndarray) -> list[str]:
        if self.segmentation:
            classes = np.argmax(output, axis=-1)
            shares = np.bincount(classes.ravel(), minlength=len(self.columns)) / classes.size
            return [f"{share:.4f}" for share in shares]
        return [f"{value:.6f}" for value in output]

    def _save_annotated(self, path: Path, output: np.ndarray, target: Path) -> None:
        from PIL import Image

        with open_image(path) as img:
            original = np.asarray(img.convert("RGB"))
        # compress_level 1: default PNG compression made writing the frames most of the loop
        picture = Image.fromarray(self.annotate(original, output))
        rundir.write_via(target, lambda tmp: picture.save(tmp, compress_level=1))


def draw_steering_arc(picture: np.ndarray, steering: float) -> None:
    """Draw the path a steering command in [-1, 1] would follow, from the bottom centre."""
    import cv2

    height, width = picture.shape[:2]
    t = np.linspace(0.0, 1.0, 24)
    xs = width / 2 + np.clip(steering, -1.5, 1.5) * 0.45 * width * t**2
    ys = height - 1 - 0.6 * height * t
    points = np.stack([xs, ys], axis=1).round().astype(np.int32).reshape(-1, 1, 2)
    colour = (255, int(255 * (1 - min(abs(steering), 1.0))), 0)  # yellow -> red as it grows
    thickness = max(2, width // 150)
    cv2.polylines(picture, [points], False, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.polylines(picture, [points], False, colour, thickness, cv2.LINE_AA)


def _open_writer(target: Path, codec: str, fps: float, shape: tuple[int, ...], *,
                 shown: Path) -> Any:
    """A cv2.VideoWriter on ``target`` (a staged path); errors name ``shown``."""
    import cv2

    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*codec[:4].ljust(4)), fps,
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise DataError(f"cannot write video {shown} with codec {codec!r} "
                        "(set predict.video_codec, e.g. \"mp4v\" or \"MJPG\")")
    return writer



def _known_steering(files: list[Path]) -> dict[Path, float]:
    """True steering of frames listed in a labels.csv next to their images/ folder."""
    truth: dict[Path, float] = {}
    for folder in {path.parent for path in files}:
        for labels in (folder / "labels.csv", folder.parent / "labels.csv"):
            if not labels.is_file():
                continue
            with open_table(labels, delimiter=",") as table:
                if "filename" not in table.header or "steering" not in table.header:
                    break  # no ground truth to show; predict does not need it
                name_at, value_at = table.require(["filename", "steering"])
                for _, fields in table.rows(ragged="keep"):
                    try:
                        value = float(fields[value_at])
                    except (ValueError, IndexError):
                        continue
                    name = fields[name_at].strip() if name_at < len(fields) else ""
                    for base in (labels.parent, labels.parent / "images"):
                        truth[(base / name).resolve()] = value
            break
    return truth


def _images_in(folder: Path) -> list[Path]:
    """A driving folder keeps its frames in images/ (beside labels.csv) or directly."""
    return list_images(folder / "images" if (folder / "images").is_dir() else folder)
