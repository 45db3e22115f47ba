"""End to end: generate driving projects, train each task, predict, bad input.

Steering and segmentation train, evaluate and predict on JAX without TensorFlow in
test_runtime_jax_only.py; detection (keras-hub, which needs TensorFlow) trains on both
backends here."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from appgen.datasets import get_writer

from appgen.catalog import find_template
from appgen.render import RenderRequest, render_project

pytestmark = pytest.mark.slow
BACKENDS = ("tensorflow", "jax")


def _generate(tmp_path: Path, task: str, frames: int = 48) -> Path:
    project = tmp_path / f"drv_{task}"
    render_project(RenderRequest(project_name=f"drv_{task}", template=find_template("driving"),
                                 task=task, out_dir=project, sample_data=False))
    provider = "road_objects" if task == "detection" else "roads"
    get_writer(provider)(project / "data", size=frames, seed=0)  # the real simulator, small
    return project


def _run(project: Path, *args: str, backend: str = "tensorflow"
         ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", project.name, *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


def _train(project: Path, run: Path, backend: str, *extra: str) -> dict:
    result = _run(project, "train", "--run-dir", str(run), "--set", "train.epochs=1",
                  "--set", "train.batch_size=16", "--set", "train.verbose=0", *extra,
                  backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run / "metrics.json").read_text())


def test_steering_trains_and_predicts(tmp_path: Path) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    project = _generate(tmp_path, "steering")
    assert 'task = "steering"' in (project / "config.toml").read_text()
    run = tmp_path / "run_tensorflow"
    metrics = _train(project, run, "tensorflow")
    final = metrics["final"]
    assert metrics["epochs_completed"] == 1
    assert final["mae"] > 0 and 0.1 < final["label_std"] < 1.0
    assert final["mae_over_std"] == pytest.approx(final["mae"] / final["label_std"])
    assert (run / "plots" / "steering_sequence.png").is_file()
    assert (run / "checkpoints" / "best.keras").is_file()

    video = tmp_path / "drive.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (200, 66))
    for path in sorted((project / "data" / "images").glob("*.png"))[:20]:
        writer.write(np.asarray(Image.open(path))[..., ::-1].copy())
    writer.release()
    out = tmp_path / "pred"
    result = _run(project, "predict", "--run-dir", str(tmp_path / "run_tensorflow"),
                  str(project / "data"), str(video), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "frames/s" in result.stdout
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 48 and all(-5 < float(r["steering"]) < 5 for r in rows)
    assert len(list((out / "frames").glob("*.png"))) == 48
    with (out / "drive.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 20
    capture = cv2.VideoCapture(str(out / "drive.annotated.mp4"))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    capture.release()

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    result = _run(project, "predict", "--run-dir", str(tmp_path / "run_tensorflow"), str(broken))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot open video")
    assert "broken.mp4" in result.stderr


def test_segmentation_trains(tmp_path: Path) -> None:
    project = _generate(tmp_path, "segmentation", frames=24)
    config = (project / "config.toml").read_text()
    assert 'task = "segmentation"' in config and 'backbone = "unet"' in config
    run = tmp_path / "run_tensorflow"
    final = _train(project, run, "tensorflow", "--set", "model.width=4",
                   "--set", "model.depth=2", "--set", "train.batch_size=8")["final"]
    assert 0.0 < final["mean_iou"] <= 1.0 and 0.0 < final["pixel_accuracy"] <= 1.0
    assert set(final["iou"]) == {"background", "drivable", "lane_marking"}
    assert (run / "plots" / "segmentation_overlays.png").is_file()


def test_detection_trains_on_both_backends_and_predicts_coco_results(tmp_path: Path) -> None:
    """Cars, pedestrians, signs and lights from the simulator: 16 training frames, one epoch
    of two steps on each backend, COCOeval scores, then detections.json that pycocotools
    scores against the val annotations."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    project = _generate(tmp_path, "detection", frames=20)  # 16 train, 4 val
    config = (project / "config.toml").read_text()
    assert 'task = "detection"' in config and "image_size = [96, 192]" in config
    for backend in BACKENDS:
        run = tmp_path / f"run_{backend}"
        metrics = _train(project, run, backend, "--set", "train.batch_size=8")
        final = metrics["final"]
        assert {"map", "map_50", "chance_map_50", "ap_50_car", "ap_50_pedestrian",
                "ap_50_traffic_sign", "ap_50_traffic_light"} <= set(final)
        assert final["images"] == 4 and 0.0 <= final["map_50"] <= 1.0
        meta = json.loads((run / "meta.json").read_text())
        assert meta["task"] == "detection" and meta["image_shape"] == [96, 192, 3]
        assert (run / "plots" / "validation_boxes.png").is_file()

    out = tmp_path / "pred"
    result = _run(project, "predict", "--run-dir", str(tmp_path / "run_tensorflow"),
                  str(project / "data" / "images" / "val"), "--out", str(out),
                  "--set", "predict.score_threshold=0.0")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((out / "detections.json").read_text())
    assert rows and {row["category"] for row in rows} <= {
        "car", "pedestrian", "traffic_sign", "traffic_light"}
    for row in rows:  # ids from the annotations, boxes in the frame's pixels
        x, y, w, h = row["bbox"]
        assert row["image_id"] in (1, 2, 3, 4) and 0 <= x and x + w <= 192.01 and y + h <= 96.01
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(project / "data" / "annotations" / "instances_val.json"))
        evaluator = COCOeval(truth, truth.loadRes(rows), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert 0.0 <= evaluator.stats[1] <= 1.0


def test_missing_frame_in_labels_is_named(tmp_path: Path) -> None:
    project = tmp_path / "drv_bad"
    render_project(RenderRequest(project_name="drv_bad", template=find_template("driving"),
                                 task=None, out_dir=project, sample_data=False))
    get_writer("roads")(project / "data", size=12, seed=0)
    (project / "data" / "images" / "000005.png").unlink()
    result = _run(project, "train", "--run-dir", str(tmp_path / "run"), "--set",
                  "train.epochs=1")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "000005.png" in errors[0] and "line 7" in errors[0]
    assert "Traceback" not in result.stderr
