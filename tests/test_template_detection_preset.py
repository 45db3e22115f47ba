"""A pretrained backbone under the detector (``model.preset``), offline: a tiny random
four-stage ResNet saved with ``save_to_preset()`` stands in for resnet_18_imagenet, and a
vision detection project runs its real commands with it: phase 1 (backbone frozen), then
--resume across the boundary into phase 2, predict and export on TensorFlow; both phases
in one run on JAX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_presets
from project_runner import generate, run_project, train_ok

pytestmark = pytest.mark.slow

FEW = ("--set", "data.max_images=16", "--set", "data.image_size=64", "--set",
       "train.batch_size=16", "--set", "model.width=32", "--set", "train.warmup_epochs=0",
       "--set", "train.freeze_epochs=1", "--set", "train.verbose=0")


@pytest.fixture(scope="module")
def preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("presets")
    return tiny_presets.build(tiny_presets.RESNET_PYRAMID, folder) / "resnet_pyramid"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("detection"), "boxes_preset", "vision",
                    task="detection")


def uses(preset: Path) -> tuple[str, str]:
    return ("--set", f'model.preset="{preset}"')


def test_a_preset_detector_fine_tunes_across_the_boundary(project: Path, preset: Path,
                                                          tmp_path: Path) -> None:
    run = project / "runs" / "preset"
    tiny_presets.fine_tunes_across_the_boundary(project, run, "preset", preset, *FEW)
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert 0.0 <= final["map_50"] <= 1.0 and final["images"] == 160

    out = tmp_path / "out"
    result = run_project(project, "predict", "--run-dir", str(run),
                         str(project / "data" / "images" / "val" / "00000.png"),
                         "--out", str(out), "--set", "predict.score_threshold=0.0")
    assert result.returncode == 0, result.stderr[-2000:]
    # two tiny epochs from a random preset need not propose a box yet: predict loading the
    # fine-tuned model and writing COCO results is what is checked here (the from-scratch
    # detector's boxes are scored in test_template_detection.py)
    assert "detection(s) in 1 image(s) written to" in result.stdout
    found = json.loads((out / "detections.json").read_text())
    assert isinstance(found, list) and {row["file_name"] for row in found} <= {"00000.png"}
    result = run_project(project, "export", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "export" / "model.keras").stat().st_size > 100_000


def test_a_preset_detector_trains_both_phases_on_jax(project: Path, preset: Path) -> None:
    run = project / "runs" / "jax"
    stdout = train_ok(project, run, *FEW, *uses(preset), "--set", "train.epochs=2",
                      backend="jax").stdout
    assert "backbone unfrozen after epoch 1" in stdout
    moved = tiny_presets.drift(run / "checkpoints" / "last.keras", preset)
    assert moved["trained"] > 1e-6 and moved["moving"] == 0.0
    assert json.loads((run / "meta.json").read_text())["pretrained"]["backbone"] == \
        "ResNetBackbone"
