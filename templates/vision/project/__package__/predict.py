"""``python -m PACKAGE predict``: top-k classes for images, folders and videos.

Images and folders give one row per image in ``predictions.csv``. A video is
sampled at ``predict.video_fps`` frames per second; each sampled second gets its
top-k tags in ``<video>.tags.csv``, and the frames/s of the whole loop
(decode + resize + predict) is printed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import detection_predict, rundir
from .config import get, load_config
from .data import read_image
from .media import Video, expand_inputs, model_frame, write_csv


def run_prediction(run_path: Path, inputs: list[Path], out: Path | None,
                   overrides: list[str] | None = None) -> Path:
    """Predict every input; return the output folder."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config, overrides or [])  # predict --set KEY=VALUE
    meta = rundir.read_meta(run)
    if meta.get("task") == "detection":  # detections.json (shared with driving)
        return detection_predict.run_prediction(run_path, inputs, out, overrides)
    images, videos = expand_inputs(inputs)
    net = rundir.load_model(rundir.model_checkpoint(run))
    rundir.check_model_outputs(net, meta)
    top_k = min(int(get(config, "predict.top_k")), len(meta["class_names"]))
    out = rundir.output_folder(run, out)
    if images:
        rows = predict_images(net, images, meta, top_k)
        write_csv(out / "predictions.csv", ["file", "class", "probability", "top_k"], rows)
        for row in rows[:10]:
            print(f"{row[0]}: {row[1]} ({float(row[2]):.3f})")
        print(f"{len(rows)} image prediction(s) written to {out / 'predictions.csv'}")
    for video in videos:
        seconds, fps = predict_video(net, video, meta, top_k,
                                     float(get(config, "predict.video_fps")))
        target = out / f"{video.stem}.tags.csv"
        write_csv(target, ["second", "tags"], seconds)
        print(f"{video}: {len(seconds)} second(s) tagged at {fps:.1f} frames/s -> {target}")
    return out


def predict_images(net: keras.Model, files: list[Path], meta: dict[str, Any], top_k: int
                   ) -> list[list[str]]:
    """Rows of (file, top class, its probability, 'class:p;...' for the top k)."""
    height, _, channels = meta["image_shape"]
    mode = "grayscale" if channels == 1 else "rgb"
    batch = np.stack([read_image(path, height, mode) for path in files])
    probabilities = net.predict(batch, batch_size=64, verbose=0)
    return [[str(path), *_top(p, meta["class_names"], top_k)]
            for path, p in zip(files, probabilities, strict=True)]


def predict_video(net: keras.Model, video: Path, meta: dict[str, Any], top_k: int,
                  sample_fps: float) -> tuple[list[list[str]], float]:
    """Top-k tags per second of video (probabilities averaged over its sampled frames)."""
    height, width, channels = meta["image_shape"]
    frames, stamps = [], []
    started = time.perf_counter()
    with Video(video) as clip:
        step = max(1, round(clip.fps / max(sample_fps, 1e-3)))
        for index, frame in clip.frames(step):
            frames.append(model_frame(frame, width, height, channels))
            stamps.append(int(index / clip.fps))
    probabilities = net.predict(np.stack(frames), batch_size=64, verbose=0)
    fps = len(frames) / (time.perf_counter() - started)
    stamps_array = np.asarray(stamps)
    rows = []
    for second in np.unique(stamps_array):
        mean = probabilities[stamps_array == second].mean(axis=0)
        rows.append([str(int(second)), _top(mean, meta["class_names"], top_k)[2]])
    return rows, fps


def _top(probabilities: np.ndarray, class_names: list[str], top_k: int) -> list[str]:
    order = np.argsort(-probabilities)[:top_k]
    tags = ";".join(f"{class_names[i]}:{probabilities[i]:.3f}" for i in order)
    return [class_names[order[0]], f"{probabilities[order[0]]:.4f}", tags]
