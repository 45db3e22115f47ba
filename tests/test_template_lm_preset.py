"""nlp causal_lm fine-tunes a keras-hub GPT-2 preset with LoRA (``model.preset``,
``model.lora_rank``), offline: a tiny random GPT-2 saved with ``save_to_preset()``."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_presets
from project_runner import generate, run_project, train_ok

pytestmark = pytest.mark.slow

TINY = ("--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "data.max_rows=48",
        "--set", "train.warmup_epochs=0", "--set", "data.sequence_length=24",
        "--set", "predict.max_new_tokens=6", "--set", "train.learning_rate=0.05")
TARGETS = ("query_dense/vars/0", "value_dense/vars/0")  # LoRA's kernels (enable_lora default)
# keras-hub's enable_lora freezes only the targeted layers' kernels: their biases train too
BIASES = ("query_dense/vars/1", "value_dense/vars/1")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_presets.build(tiny_presets.GPT2, tmp_path_factory.mktemp("presets")) / "gpt2"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("lm"), "lora_demo", "nlp", task="causal_lm")


@pytest.fixture(scope="module")
def lora_run(project: Path, gpt2: Path) -> Path:
    run = project / "runs" / "lora"
    train_ok(project, run, *TINY, "--set", f'model.preset="{gpt2}"', "--set", "model.lora_rank=2")
    return run


def assert_only_adapters_moved(checkpoint: Path, preset: Path, rank: int) -> None:
    """Every preset weight is unchanged in the checkpoint, except the LoRA-targeted
    kernels, which moved by a matrix of rank <= ``rank`` per head (Keras saves the adapters
    merged), and those layers' biases."""
    before, after = tiny_presets.weights(preset), tiny_presets.weights(checkpoint)
    moved = 0
    for name, value in before.items():
        (tuned,) = [v for k, v in after.items()
                    if k == f"layers/preset_lm/backbone/{name}"]
        delta = np.asarray(tuned, dtype=np.float64) - np.asarray(value, dtype=np.float64)
        if name.endswith(TARGETS):
            assert np.abs(delta).max() > 1e-7, name  # the adapters trained
            # EinsumDense LoRA: kernel[..., :] += a[..., :rank] @ b[:rank, :] (per head)
            flat = delta.reshape(-1, delta.shape[-1])  # (hidden x heads, head_dim)
            singular = np.linalg.svd(flat, compute_uv=False)  # float32 rounding: ~1e-8
            assert int((singular > 1e-4 * singular[0]).sum()) <= rank, name
            moved += 1
        elif not name.endswith(BIASES):
            assert np.array_equal(tuned, value), name  # base weights untouched
    assert moved == 4  # query and value of both layers


def test_lora_trains_only_the_adapters(lora_run: Path, gpt2: Path) -> None:
    assert_only_adapters_moved(lora_run / "checkpoints" / "last.keras", gpt2, rank=2)
    meta = json.loads((lora_run / "meta.json").read_text())
    assert meta["preset"] == str(gpt2.resolve()) and meta["lora_rank"] == 2
    final = json.loads((lora_run / "metrics.json").read_text())["final"]
    assert final["perplexity"] > 0 and final["unigram_perplexity"] > 0  # both reported


def test_resume_keeps_training_adapters_only(lora_run: Path, project: Path, gpt2: Path) -> None:
    """The trap: a reloaded checkpoint must have its adapters (else --resume would
    fine-tune every backbone weight)."""
    run = project / "runs" / "resumed"
    shutil.copytree(lora_run, run)
    result = run_project(project, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    before = tiny_presets.weights(lora_run / "checkpoints" / "last.keras")
    after = tiny_presets.weights(run / "checkpoints" / "last.keras")
    target = "layers/preset_lm/backbone/layers/transformer_decoder/_self_attention_layer/"
    assert not np.array_equal(before[target + "value_dense/vars/0"],
                              after[target + "value_dense/vars/0"])  # epoch 2 trained
    assert_only_adapters_moved(run / "checkpoints" / "last.keras", gpt2, rank=4)  # 2 + 2


def test_predict_generates_and_export_loads(lora_run: Path, project: Path) -> None:
    prompts = lora_run.parent / "prompts.txt"
    prompts.write_text("the cat\nthe\n")
    result = run_project(project, "predict", "--run-dir", str(lora_run), str(prompts))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(lora_run / "predictions" / "samples.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["prompt"] for row in rows] == ["the cat", "the"]
    assert all(row["continuation"].strip() for row in rows)  # the tiny model babbles bytes
    result = run_project(project, "export", "--run-dir", str(lora_run),
                         "--format", "saved_model")
    assert result.returncode == 0, result.stderr[-3000:]
    # the SavedModel serves next-token logits over the preset's 266 tokens + 4 markers
    serve = ("import sys, numpy as np, tensorflow as tf\n"
             "m = tf.saved_model.load(sys.argv[1])\n"
             "print(m.serve(np.full((1, 24), 2, np.int32)).shape)")
    shape = subprocess.run([sys.executable, "-c", serve, str(lora_run / "export" / "saved_model")],
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True,
                           text=True, timeout=300, check=False)
    assert shape.stdout.strip().endswith("(1, 24, 270)"), shape.stderr[-3000:]
