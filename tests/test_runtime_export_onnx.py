"""`export --format onnx`: ONNX Runtime scores real validation samples like the Keras model.

Tolerance: 1e-4 absolute on every output (probabilities or regression values in float32);
the two runtimes order float sums differently, nothing more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from project_runner import generate, hiding, last_line, run_project, train_ok

TOLERANCE = 1e-4

VISION = ("--set", "train.epochs=1", "--set", "data.max_images=30", "--set", "train.batch_size=32")
FRAUD = ("--set", "train.epochs=1", "--set", "train.batch_size=512", "--set", "model.hidden=[32]")
DRIVING = ("--set", "train.epochs=1", "--set", "data.max_images=64", "--set", "train.batch_size=16")

# template, task, backend, overrides for a tiny training run (JAX's converter on one template:
# each export takes about a minute there)
CASES = [
    ("vision", None, "tensorflow", VISION),
    ("fraud", None, "tensorflow", FRAUD),
    ("driving", None, "tensorflow", DRIVING),
    ("fraud", None, "jax", FRAUD),
]


COMPARE = """
import json, sys
from pathlib import Path
import numpy as np, keras, onnxruntime
from {pkg} import data, rundir
from {pkg}.config import get, load_config
run = rundir.open_existing(Path(sys.argv[1]))
config = load_config(run.config)
splits = data.load_splits(config, batch_size=16)
x = splits.val[0][0]
net = rundir.load_model(rundir.model_checkpoint(run))
expected = keras.tree.flatten(net.predict(x, verbose=0))
session = onnxruntime.InferenceSession(sys.argv[2])
flat = dict(x) if isinstance(x, dict) else {{session.get_inputs()[0].name: x}}
feeds = {{i.name: np.asarray(flat[i.name]) for i in session.get_inputs() if i.name in flat}}
got = session.run(None, feeds)
diffs = [float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))
         for a, b in zip(expected, got)]
print(json.dumps({{"samples": int(len(expected[0])), "max_abs_diff": max(diffs),
                  "outputs": len(got)}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("template", "task", "backend", "quick"), CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_onnx_runtime_matches_keras(tmp_path: Path, template: str, task: str | None,
                                    backend: str, quick: tuple[str, ...]) -> None:
    project = generate(tmp_path, f"onnx_{template}", template, task=task)
    run = tmp_path / "run"
    train_ok(project, run, *quick, backend=backend)
    result = run_project(project, "export", "--run-dir", str(run), "--format", "onnx",
                         backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    model = run / "export" / "model.onnx"
    assert model.is_file()
    compare = subprocess.run(
        [sys.executable, "-c", COMPARE.format(pkg=project.name), str(run), str(model)],
        cwd=project, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert compare.returncode == 0, compare.stderr[-3000:]
    report = json.loads(last_line(compare.stdout))
    assert report["samples"] > 0
    assert report["max_abs_diff"] <= TOLERANCE, report


def test_onnx_export_without_converter_is_one_line(tmp_path: Path) -> None:
    """A missing converter names the extra to install, in one line, exit 2."""
    project = generate(tmp_path, "onnx_missing", "fraud")
    run = tmp_path / "run"
    train_ok(project, run, "--set", "train.epochs=1", "--set", "model.hidden=[8]")
    result = subprocess.run(
        [sys.executable, "-m", project.name, "export", "--run-dir", str(run), "--format", "onnx"],
        cwd=project, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **hiding(tmp_path / "hide", "tf2onnx", "onnx"),
             "KERAS_BACKEND": "tensorflow",
             "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "pip install -e .[export]" in last_line(result.stderr)
    assert not (run / "export" / "model.onnx").exists()
