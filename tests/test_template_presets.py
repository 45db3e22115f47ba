"""Fine-tuning keras-hub presets (``model.preset``) offline: tiny random presets saved with
``save_to_preset()`` stand in for downloaded ones, and the real project commands run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_presets
from project_runner import generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

FEW = ("--set", "data.max_images=12", "--set", "train.batch_size=40",
       "--set", "train.warmup_epochs=0", "--set", "train.freeze_epochs=1")


@pytest.fixture(scope="session")
def presets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both tiny presets, written by one interpreter (one TensorFlow start-up, not two)."""
    folder = tmp_path_factory.mktemp("presets")
    return tiny_presets.build(tiny_presets.RESNET + tiny_presets.BERT, folder)


@pytest.fixture(scope="session")
def resnet_preset(presets: Path) -> Path:
    return presets / "resnet"


@pytest.fixture(scope="module")
def vision(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("vision"), "preset_demo", "vision")


@pytest.fixture(scope="module")
def phase_one(vision: Path, resnet_preset: Path) -> Path:
    """One epoch of phase 1 only (train.epochs = freeze_epochs = 1)."""
    run = vision / "runs" / "phase1"
    stdout = train_ok(vision, run, *FEW, "--set", f'model.preset="{resnet_preset}"',
                      "--set", "train.epochs=1").stdout
    assert "backbone unfrozen" not in stdout
    return run


@pytest.fixture(scope="module")
def resumed(phase_one: Path, vision: Path) -> Path:
    """The phase-1 run resumed with one more epoch: across the boundary into phase 2."""
    run = vision / "runs" / "resumed"
    shutil.copytree(phase_one, run)
    result = run_project(vision, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backbone unfrozen after epoch 1: learning rate x 0.1" in result.stdout
    return run


def test_phase_one_trains_the_head_only(phase_one: Path, resnet_preset: Path) -> None:
    moved = tiny_presets.drift(phase_one / "checkpoints" / "last.keras", resnet_preset)
    assert moved == {"trained": 0.0, "moving": 0.0}
    assert len((phase_one / "history.csv").read_text().splitlines()) == 2


def test_the_run_records_the_preset(phase_one: Path, resnet_preset: Path) -> None:
    meta = json.loads((phase_one / "meta.json").read_text())
    assert meta["pretrained"]["source"] == str(resnet_preset.resolve())
    assert meta["pretrained"]["backbone"] == "ResNetBackbone"
    assert meta["pretrained"]["parameters"] == 76224  # the tiny ResNet's weights, head excluded
    resolved = (phase_one / "config.toml").read_text()
    assert f'preset = "{resnet_preset.resolve()}"' in resolved and "freeze_epochs = 1" in resolved


def test_resume_crosses_into_phase_two(resumed: Path, resnet_preset: Path) -> None:
    moved = tiny_presets.drift(resumed / "checkpoints" / "last.keras", resnet_preset)
    assert moved["trained"] > 1e-6  # the backbone trains in phase 2...
    assert moved["moving"] == 0.0  # ...with batch norm in inference mode
    history = (resumed / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    rates = [float(row.split(",")[-1]) for row in history[1:]]
    assert rates[1] == pytest.approx(rates[0] * 0.1, rel=1e-3)  # x backbone_lr_multiplier
    assert json.loads((resumed / "metrics.json").read_text())["epochs_completed"] == 2


def test_predict_and_export(vision: Path, resumed: Path, tmp_path: Path) -> None:
    image = sorted((vision / "data" / "train" / "3").glob("*.png"))[0]
    result = run_project(vision, "predict", "--run-dir", str(resumed), str(image),
                         "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(str(image))
    result = run_project(vision, "export", "--run-dir", str(resumed), "--format", "saved_model")
    assert result.returncode == 0, result.stderr[-2000:]
    assert any((resumed / "export").iterdir())


def jax_lifecycle(project: Path, preset: Path, few: tuple[str, ...], predict_input: str,
                  tmp_path: Path) -> Path:
    """On JAX: phase 1, ``--resume`` into phase 2, then predict and export the run."""
    run = project / "runs" / "jax"
    train_ok(project, run, *few, "--set", f'model.preset="{preset}"', "--set", "train.epochs=1",
             backend="jax")
    assert tiny_presets.drift(run / "checkpoints" / "last.keras", preset)["trained"] == 0.0
    result = run_project(project, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2", backend="jax")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backbone unfrozen after epoch 1" in result.stdout
    assert len((run / "history.csv").read_text().splitlines()) == 3
    moved = tiny_presets.drift(run / "checkpoints" / "last.keras", preset)
    assert moved["trained"] > 1e-6 and moved["moving"] == 0.0
    out = tmp_path / "predictions"
    result = run_project(project, "predict", "--run-dir", str(run), predict_input,
                         "--out", str(out), backend="jax")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((out / "predictions.csv").read_text().splitlines()) == 2
    result = run_project(project, "export", "--run-dir", str(run), "--format", "keras",
                         backend="jax")
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((run / "export").glob("*.keras"))
    return run


def test_jax_trains_both_phases_resumes_predicts_and_exports(vision: Path, resnet_preset: Path,
                                                             tmp_path: Path) -> None:
    image = sorted((vision / "data" / "train" / "3").glob("*.png"))[0]
    jax_lifecycle(vision, resnet_preset, FEW, str(image), tmp_path)


NLP_FEW = ("--set", "data.max_rows=160", "--set", "data.sequence_length=32",
           "--set", "train.batch_size=64", "--set", "train.warmup_epochs=0",
           "--set", "train.freeze_epochs=1")


@pytest.fixture(scope="session")
def bert_preset(presets: Path) -> Path:
    return presets / "bert"


@pytest.fixture(scope="module")
def nlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("nlp"), "text_preset_demo", "nlp")


def test_nlp_fine_tunes_a_text_preset_across_the_boundary(nlp: Path, bert_preset: Path,
                                                          tmp_path: Path) -> None:
    run = nlp / "runs" / "bert"
    train_ok(nlp, run, *NLP_FEW, "--set", f'model.preset="{bert_preset}"',
             "--set", "train.epochs=1")
    assert tiny_presets.drift(run / "checkpoints" / "last.keras", bert_preset)["trained"] == 0
    meta = json.loads((run / "meta.json").read_text())
    assert meta["preset"] == str(bert_preset.resolve())  # evaluate/predict tokenize with it
    assert meta["pretrained"]["backbone"] == "BertBackbone"

    result = run_project(nlp, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backbone unfrozen after epoch 1" in result.stdout
    assert tiny_presets.drift(run / "checkpoints" / "last.keras", bert_preset)["trained"] > 1e-6
    assert len((run / "history.csv").read_text().splitlines()) == 3

    out = tmp_path / "predictions"
    result = run_project(nlp, "predict", "--run-dir", str(run), "the acting was not bad at all",
                         "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (out / "predictions.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[1] == "the acting was not bad at all"


def test_nlp_preset_on_jax_resumes_predicts_and_exports(nlp: Path, bert_preset: Path,
                                                        tmp_path: Path) -> None:
    run = jax_lifecycle(nlp, bert_preset, NLP_FEW, "a warm and funny film", tmp_path)
    assert json.loads((run / "meta.json").read_text())["pretrained"]["backbone"] == "BertBackbone"


def test_an_uncached_named_preset_offline_fails_in_one_line(nlp: Path, tmp_path: Path) -> None:
    """A named preset that is not in the KaggleHub cache, without the network: one line that
    says how to fetch it. KaggleHub's TEST environment sends its requests to localhost:7777,
    where nothing listens, so the download fails at once (offline it takes ~60 s of retries)."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
           "KAGGLE_API_ENVIRONMENT": "TEST", "KAGGLEHUB_CACHE": str(tmp_path / "cache")}
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", nlp.name, "train", "--run-dir", str(run),
                             "--set", 'model.preset="bert_tiny_en_uncased"'], cwd=nlp, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr[-3000:]
    line = last_line(result.stderr)
    assert "cannot load keras-hub preset 'bert_tiny_en_uncased' (no network)" in line
    assert str(tmp_path / "cache") in line and "set KAGGLEHUB_CACHE to move it" in line
    assert "keras_hub.models.Backbone.from_preset('bert_tiny_en_uncased')" in line
    assert "Traceback" not in result.stderr and not run.exists()
