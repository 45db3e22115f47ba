"""nlp causal_lm fine-tunes a keras-hub GPT-2 preset with LoRA (``model.preset``,
``model.lora_rank``), offline: a tiny random GPT-2 saved with ``save_to_preset()``."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import tiny_presets
from project_runner import generate, run_project, train_ok

pytestmark = pytest.mark.slow

TINY = ("--set", "train.epochs=1", "--set", "train.batch_size=16", "--set", "data.max_rows=48",
        "--set", "train.warmup_epochs=0", "--set", "data.sequence_length=24",
        "--set", "predict.max_new_tokens=6", "--set", "train.learning_rate=0.05")


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
    assert tiny_presets.only_adapters_moved(checkpoint, preset, "preset_lm", rank) == 4
    # query and value of both layers


def test_lora_trains_only_the_adapters(lora_run: Path, gpt2: Path) -> None:
    assert_only_adapters_moved(lora_run / "checkpoints" / "last.keras", gpt2, rank=2)
    meta = json.loads((lora_run / "meta.json").read_text())
    assert meta["preset"] == str(gpt2.resolve()) and meta["lora_rank"] == 2
    assert meta["pretrained"]["backbone"] == "GPT2Backbone"
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


def test_lora_on_jax_trains_adapters_and_chats(project: Path, gpt2: Path, tmp_path: Path) -> None:
    """The same LoRA fine-tuning on JAX; then ``predict`` in chat mode, where the preset's
    tokenizer encodes the turns and its end token (or a new turn marker) ends a reply."""
    run = project / "runs" / "jax"
    result = train_ok(project, run, *TINY, "--set", f'model.preset="{gpt2}"',
                      "--set", "model.lora_rank=2", backend="jax")
    assert "backend jax" in result.stdout
    assert_only_adapters_moved(run / "checkpoints" / "last.keras", gpt2, rank=2)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    chat = subprocess.run([sys.executable, "-m", project.name, "predict", "--run-dir", str(run),
                           "-", "--out", str(tmp_path / "chat"), "--set", 'predict.mode="chat"'],
                          cwd=project, env=env, input="hi there\n\nwhere is my order?\n",
                          capture_output=True, text=True, timeout=600, check=False)
    assert chat.returncode == 0, chat.stderr[-3000:]
    transcript = (tmp_path / "chat" / "chat.txt").read_text(encoding="utf-8").splitlines()
    assert transcript[0] == "user: hi there" and transcript[2] == "user: where is my order?"
    assert len(transcript) == 4 and all(line.startswith("assistant:")
                                        and "user:" not in line for line in transcript[1::2])
    assert "2 turn(s)" in chat.stdout


def test_chat_finds_turn_markers_in_text_not_ids() -> None:
    """A byte-level BPE spells " user:" inside a reply with other ids than "user:" alone
    (GPT-2: a leading-space token), so the reply is cut where its text shows the marker."""
    import template_modules

    chat_module = template_modules.load("nlp", "chat")
    tokens: dict[str, int] = {}

    class SpaceWords:  # one id per word with its leading space, like GPT-2's "Ġuser:"
        def encode(self, text: str) -> list[int]:
            return [tokens.setdefault(w, 4 + len(tokens)) for w in re.findall(r"\s?\S+", text)]

    def decode(ids: Sequence[int]) -> str:
        spelled = {i: w for w, i in tokens.items()}
        return "".join(spelled[i] for i in ids if i >= 4)

    words = SpaceWords()
    chat = chat_module.Conversation(words, decode, 40, user="user:", assistant="assistant:",
                                    reply_budget=8)
    prompt = chat.prompt("hi")
    assert prompt[1:] == words.encode("user: hi assistant:")
    reply = words.encode(" hello there user:")
    assert words.encode("user:")[0] not in reply  # the ids differ, the text does not
    assert not chat.ends_reply(reply[:2]) and chat.ends_reply(reply)
    assert chat.add("hi", reply) == "hello there"
    assert chat.prompt("bye")[1:] == words.encode("user: hi assistant: hello there user: bye "
                                                  "assistant:")
    assert chat.add("again", words.encode(" two\nlines")) == "two lines"  # one turn a line
