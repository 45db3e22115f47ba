"""nlp translation fine-tunes a keras-hub encoder-decoder preset with LoRA (``model.preset``,
``model.lora_rank``), offline: a tiny random BART saved with ``save_to_preset()``."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tiny_presets
from project_runner import generate, run_project, train_ok

pytestmark = pytest.mark.slow

TINY = ("--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "data.max_rows=32",
        "--set", "train.warmup_epochs=0", "--set", "data.sequence_length=32",
        "--set", "predict.beam_width=2", "--set", "train.learning_rate=0.05")
KERNELS = 6  # query and value of the encoder's self-attention, the decoder's self- and cross-


@pytest.fixture(scope="module")
def bart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_presets.build(tiny_presets.BART, tmp_path_factory.mktemp("presets")) / "bart"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = generate(tmp_path_factory.mktemp("seq2seq"), "bart_demo", "nlp",
                       task="translation")
    lines = (project / "data" / "val.tsv").read_text(encoding="utf-8").splitlines()
    (project / "data" / "val.tsv").write_text("\n".join(lines[:9]) + "\n", encoding="utf-8")
    return project  # 8 validation pairs: BLEU's beam search stays cheap


@pytest.fixture(scope="module")
def lora_run(project: Path, bart: Path) -> Path:
    run = project / "runs" / "lora"
    train_ok(project, run, *TINY, "--set", f'model.preset="{bart}"', "--set", "model.lora_rank=2")
    return run


def test_lora_trains_only_the_adapters_and_reports_bleu(lora_run: Path, bart: Path) -> None:
    moved = tiny_presets.only_adapters_moved(lora_run / "checkpoints" / "last.keras", bart,
                                             "preset_translator", rank=2)
    assert moved == KERNELS
    meta = json.loads((lora_run / "meta.json").read_text())
    assert meta["preset"] == str(bart.resolve()) and meta["lora_rank"] == 2
    assert "source_vocabulary" not in meta  # the preset's tokenizer encodes both sides
    assert meta["pretrained"]["backbone"] == "BartBackbone"
    assert meta["pretrained"]["parameters"] > 0
    final = json.loads((lora_run / "metrics.json").read_text())["final"]
    assert 0 <= final["bleu"] <= 100 and final["sentences"] == 8
    shown = (lora_run / "plots" / "translations.txt").read_text(encoding="utf-8")
    first = (lora_run.parents[1] / "data" / "val.tsv").read_text().splitlines()[1].split("\t")
    assert shown.startswith(f"{first[0]}\n  -> ")  # the source, decoded by the preset
    assert f"  reference: {first[1]}\n" in shown


def test_resume_evaluate_predict_export(lora_run: Path, project: Path, bart: Path) -> None:
    run = project / "runs" / "resumed"
    shutil.copytree(lora_run, run)
    result = run_project(project, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs_completed"] == 2
    before = tiny_presets.weights(lora_run / "checkpoints" / "last.keras")
    after = tiny_presets.weights(run / "checkpoints" / "last.keras")
    kernel = ("layers/preset_translator/backbone/layers/transformer_decoder/"
              "_cross_attention_layer/value_dense/vars/0")
    assert not np.array_equal(before[kernel], after[kernel])  # epoch 2 trained
    # the reloaded checkpoint had its adapters: still only they moved (rank 2 + 2)
    assert tiny_presets.only_adapters_moved(run / "checkpoints" / "last.keras", bart,
                                            "preset_translator", rank=4) == KERNELS

    result = run_project(project, "evaluate", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bleu" in result.stdout

    result = run_project(project, "predict", "--run-dir", str(run), "the cat saw a dog",
                         "my teacher likes the big ball")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run / "predictions" / "translations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["text"] for row in rows] == ["the cat saw a dog", "my teacher likes the big ball"]
    assert all(row["translation"].strip() for row in rows)  # the tiny model babbles bytes

    result = run_project(project, "export", "--run-dir", str(run), "--format", "keras")
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(run / "export" / "model.keras") as archive:
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
    (layer,) = [layer for layer in layers if layer["class_name"] == "PresetTranslator"]
    assert layer["config"]["lora_rank"] == 2  # a reload rebuilds the adapters

