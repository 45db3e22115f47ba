"""Pretrained U-Net encoders (``model.encoder``) offline: a tiny random four-stage ResNet
saved with ``save_to_preset()`` stands in for resnet_18_imagenet, and the driving and
medical segmentation projects run their real commands with it.

About 140 CPU-seconds in all (measured on the shared 2-core machine): driving on TensorFlow
68 (preset, train, resume, export), medical on JAX 65 (compiling both phases), the 3D
refusal 6. evaluate and predict only load the checkpoint as --resume does, so they are
left to tests/test_runtime_encoder.py's round trip (they were run by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_presets
from appgen.datasets import get_writer
from project_runner import generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

PHASES = ("--set", "train.warmup_epochs=0", "--set", "train.freeze_epochs=1",
          "--set", "train.verbose=0")
DRIVING = ("--set", "train.batch_size=16", *PHASES)
# three phantom volumes coarsened to 32x32 slices (two train, one validation)
MEDICAL = ("--set", "data.max_cases=3", "--set", "data.max_size=32", "--set", "model.width=4",
           "--set", "train.batch_size=16", *PHASES)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("presets")
    return tiny_presets.build(tiny_presets.RESNET_PYRAMID, folder) / "resnet_pyramid"


def uses(preset: Path) -> tuple[str, str]:
    return ("--set", f'model.encoder="{preset}"')


def test_driving_segmentation_with_an_encoder(encoder: Path, tmp_path: Path) -> None:
    project = generate(tmp_path, "road_encoder", "driving", task="segmentation",
                       sample_data=False)
    get_writer("roads")(project / "data", size=32, seed=0)
    run = project / "runs" / "encoder"
    tiny_presets.fine_tunes_across_the_boundary(project, run, "encoder", encoder, *DRIVING)
    # evaluate and predict load the checkpoint as --resume just did (measured by hand);
    # the SavedModel traces the encoder layer once more
    result = run_project(project, "export", "--run-dir", str(run), "--format", "saved_model")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "export" / "saved_model" / "saved_model.pb").is_file()

    # a folder that is not there: one line, before Keras starts
    result = run_project(project, "train", "--run-dir", str(tmp_path / "none"),
                         *uses(tmp_path / "nowhere"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last_line(result.stderr) == (f"error: model.encoder = '{tmp_path / 'nowhere'}' is "
                                        "not a folder (a local preset is a folder written by "
                                        "save_to_preset())")


@pytest.fixture(scope="module")
def medical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("medical"), "scan_encoder", "medical")


def test_medical_2d_segmentation_trains_both_phases_on_jax(medical: Path, encoder: Path) -> None:
    # JAX only: the driving test covers the TensorFlow path of the shared encoder code
    backend = "jax"
    run = medical / "runs" / backend
    stdout = train_ok(medical, run, *MEDICAL, *uses(encoder), "--set", "train.epochs=2",
                      backend=backend).stdout
    assert "backbone unfrozen after epoch 1" in stdout
    moved = tiny_presets.drift(run / "checkpoints" / "last.keras", encoder)
    assert moved["trained"] > 1e-6 and moved["moving"] == 0.0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["multiple"] == 32 and meta["slice_shape"] == [32, 32]  # padded for stride 32
    assert meta["pretrained"]["backbone"] == "ResNetBackbone"
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert 0.0 <= final["dice"] <= 1.0


def test_a_3d_network_refuses_an_encoder_in_one_line(medical: Path, tmp_path: Path) -> None:
    result = run_project(medical, "train", "--run-dir", str(tmp_path / "run"),
                         "--set", "model.dims=3", "--set", 'model.encoder="resnet_18_imagenet"')
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last_line(result.stderr).startswith(
        "error: model.encoder needs model.dims = 2: keras-hub image backbones are 2D networks")
    assert not (tmp_path / "run").exists()
