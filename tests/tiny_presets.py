"""Tiny, randomly initialised keras-hub presets saved with ``save_to_preset()``.

They stand in for downloaded presets (``resnet_50_imagenet``, ``bert_base_en``, ...):
the projects load them through the same ``from_preset`` calls, with no network.
Each builder runs in a fresh interpreter (``build``) so the test process never
imports Keras and the preset does not depend on the test's backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESNET = '''
import sys
import keras_hub
folder = sys.argv[1] + "/resnet"
backbone = keras_hub.models.ResNetBackbone(
    input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
    stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
    image_shape=(None, None, 3))
backbone.save_to_preset(folder)
# scale and offset like the ImageNet ResNets: [0, 255] in, standardised out
keras_hub.layers.ResNetImageConverter(
    image_size=(32, 32), scale=[1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)],
    offset=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]).save_to_preset(folder)
'''

def save_resnet_pyramid(folder: Path) -> Path:
    """Save a four-stage ResNet (P2..P5 at strides 4..32, like resnet_18_imagenet's pyramid)
    with an ImageNet-style converter into ``folder``, in this process: the U-Net encoders
    (model.encoder) and the detector's backbone (model.preset) take it. keras-hub requires
    64 filters in the stem and first stage."""
    import keras_hub

    keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16, 16, 32], stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        image_shape=(None, None, 3)).save_to_preset(folder)
    keras_hub.layers.ResNetImageConverter(
        image_size=(64, 64), scale=[1 / (255 * 0.229), 1 / (255 * 0.224), 1 / (255 * 0.225)],
        offset=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]).save_to_preset(folder)
    return folder


# save_resnet_pyramid in a fresh interpreter, for tests that never import Keras themselves
RESNET_PYRAMID = f'''
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import tiny_presets
tiny_presets.save_resnet_pyramid(sys.argv[1] + "/resnet_pyramid")
'''


def build(script: str, folder: Path) -> Path:
    """Run ``script`` (builders above, concatenated) to write presets into ``folder``
    (``folder/resnet``, ``folder/bert``)."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(folder)], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder

def drift(checkpoint: Path, preset: Path) -> dict[str, float]:
    """How far a checkpoint's backbone moved from the preset it started from: the largest
    change of a trained weight, and of a batch-norm moving statistic (read with h5py from
    both weight files, without Keras)."""
    import numpy as np

    reference, tuned = weights(preset), weights(checkpoint)
    moved = {"trained": 0.0, "moving": 0.0}
    for name, before in reference.items():  # layers/<layer>/vars/<i>, inside the model's
        # backbone layer: layers/res_net_backbone/..., a U-Net's layers/pyramid_encoder/
        # backbone/..., or a detector's layers/pyramid/layers/functional/layers/functional/...
        # (the checkpoint names layers by class)
        (after,) = [value for key, value in tuned.items() if key.endswith("/" + name) and (
            key.startswith("layers/pyramid/layers/functional/") or key.count("/layers/") == 1
            and ("backbone" in key.split("/")[1] or key.split("/")[1] == "pyramid_encoder"))]
        # batch norm's vars are gamma, beta, moving mean, moving variance
        kind = "moving" if "normalization" in name and name[-1] in "23" else "trained"
        moved[kind] = max(moved[kind], float(np.max(np.abs(after - before))))
    return moved

# A 2-layer BERT with a WordPiece vocabulary of the sample reviews' commonest words, plus
# every letter, digit and punctuation mark so any English text tokenizes.
BERT = '''
import string, sys
import keras_hub
folder = sys.argv[1] + "/bert"
words = ("the a and of to is it this was in for movie film good bad great not but very "
         "with plot acting story boring fun loved hated").split()
pieces = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
vocabulary = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + pieces
                                + ["##" + piece for piece in pieces]))
tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
backbone = keras_hub.models.BertBackbone(
    vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
    intermediate_dim=32, max_sequence_length=64)
backbone.save_to_preset(folder)
tokenizer.save_to_preset(folder)
'''

# A byte-level BPE vocabulary: the 256 byte symbols (so any text tokenizes) and a few merges
# of common English pairs, after the model's special tokens (``specials``).
BPE = '''
def byte_level_bpe(specials):
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]  # GPT-2's byte symbols
    symbols = [chr(b) for b in printable] + [chr(256 + n) for n in range(256 - len(printable))]
    merges = ["\\u0120 t", "h e", "\\u0120t he", "\\u0120 a", "i n", "o n", "e r", "\\u0120 s",
              "r e"]
    vocabulary = {token: index for index, token in enumerate(specials)}
    for token in symbols + [merge.replace(" ", "") for merge in merges]:
        vocabulary.setdefault(token, len(vocabulary))
    return vocabulary, merges
'''

# A 2-layer GPT-2 with <|endoftext|> at id 0.
GPT2 = BPE + '''
import sys
import keras_hub
folder = sys.argv[1] + "/gpt2"
vocabulary, merges = byte_level_bpe(["<|endoftext|>"])
keras_hub.models.GPT2Backbone(
    vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
    intermediate_dim=32, max_sequence_length=64).save_to_preset(folder)
keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges).save_to_preset(folder)
'''

# A BART (one encoder and one decoder layer) with <s> <pad> </s> <mask> at ids 0..3, as
# in bart_base_en.
BART = BPE + '''
import sys
import keras_hub
folder = sys.argv[1] + "/bart"
vocabulary, merges = byte_level_bpe(["<s>", "<pad>", "</s>", "<mask>"])
keras_hub.models.BartBackbone(
    vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
    intermediate_dim=32, max_sequence_length=64).save_to_preset(folder)
keras_hub.models.BartTokenizer(vocabulary=vocabulary, merges=merges).save_to_preset(folder)
'''

def weights(path: Path) -> dict[str, Any]:
    """Every array of a preset's ``model.weights.h5`` or a ``.keras`` checkpoint's weights,
    by its path inside the file (read with h5py, without Keras)."""
    import io
    import zipfile

    import h5py

    found: dict[str, Any] = {}
    source: Any = path / "model.weights.h5"
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            source = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(source, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return found


LORA_KERNELS = ("query_dense/vars/0", "value_dense/vars/0")  # enable_lora's default targets
# keras-hub's enable_lora freezes only the targeted layers' kernels: their biases train too
LORA_BIASES = ("query_dense/vars/1", "value_dense/vars/1")


def only_adapters_moved(checkpoint: Path, preset: Path, layer: str, rank: int) -> int:
    """Assert that every preset weight is unchanged in the checkpoint (inside the model's
    ``layer``), except the LoRA-targeted kernels, which moved by a matrix of rank <=
    ``rank`` per head (Keras saves the adapters merged), and those layers' biases; return
    how many kernels moved."""
    import numpy as np

    before, after = weights(preset), weights(checkpoint)
    moved = 0
    for name, value in before.items():
        tuned = after[f"layers/{layer}/backbone/{name}"]
        delta = np.asarray(tuned, dtype=np.float64) - np.asarray(value, dtype=np.float64)
        if name.endswith(LORA_KERNELS):
            assert np.abs(delta).max() > 1e-7, name  # the adapters trained
            # EinsumDense LoRA: kernel[..., :] += a[..., :rank] @ b[:rank, :] (per head)
            flat = delta.reshape(-1, delta.shape[-1])  # (hidden x heads, head_dim)
            singular = np.linalg.svd(flat, compute_uv=False)  # float32 rounding: ~1e-8
            assert int((singular > 1e-4 * singular[0]).sum()) <= rank, name
            moved += 1
        elif not name.endswith(LORA_BIASES):
            assert np.array_equal(tuned, value), name  # base weights untouched
    return moved


def fine_tunes_across_the_boundary(project: Path, run: Path, key: str, preset: Path,
                                   *settings: str) -> None:
    """Train with ``model.<key> = preset`` for one epoch of phase 1 (backbone frozen), then
    --resume into phase 2 for one more, and check both phases' weights, meta.json,
    config.toml and the one history across the boundary."""
    import json

    import pytest
    from project_runner import run_project, train_ok

    uses = ("--set", f'model.{key}="{preset}"')
    train_ok(project, run, *settings, *uses, "--set", "train.epochs=1")
    moved = drift(run / "checkpoints" / "last.keras", preset)
    assert moved == {"trained": 0.0, "moving": 0.0}
    meta = json.loads((run / "meta.json").read_text())
    assert meta["pretrained"] == {"source": str(preset.resolve()), "backbone": "ResNetBackbone",
                                  "parameters": 108736}
    assert f'{key} = "{preset.resolve()}"' in (run / "config.toml").read_text()

    result = run_project(project, "train", "--resume", "--run-dir", str(run),
                         "--set", "train.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backbone unfrozen after epoch 1: learning rate x 0.1" in result.stdout
    moved = drift(run / "checkpoints" / "last.keras", preset)
    assert moved["trained"] > 1e-6 and moved["moving"] == 0.0  # batch norm: inference mode
    rows = (run / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["1", "2"]
    rates = [float(row.split(",")[-1]) for row in rows]
    assert rates[1] == pytest.approx(rates[0] * 0.1, rel=1e-3)
