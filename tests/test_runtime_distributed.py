"""Real multi-process and multi-replica runs on this machine's CPU.

- Two JAX processes joined by keras.distribution.initialize (its KERAS_DISTRIBUTION_*
  variables; gloo CPU collectives) train a generated project: one set of metrics from
  the chief, identical weights.
- TensorFlow's MirroredStrategy over two logical CPU devices trains from the
  runtime's numpy pipeline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from project_runner import generate
from runtime import RUNTIME_DIR

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_jax_processes(project: Path, run: Path, *overrides: str) -> list[tuple[int, str]]:
    port = _free_port()
    procs = []
    for index in range(2):
        env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
               "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
               "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
               "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}"}
        args = [sys.executable, "-m", project.name, "train", "--run-dir", str(run)]
        for item in overrides:
            args += ["--set", item]
        procs.append(subprocess.Popen(args, cwd=project, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        results.append((proc.returncode, out))
    return results


@pytest.mark.parametrize(("template", "overrides"), [
    ("vision", ("train.epochs=2", "data.max_images=24", "train.batch_size=8")),
    ("fraud", ("train.epochs=2", "train.batch_size=256", "train.early_stopping_patience=0")),
])
def test_two_jax_processes_train_one_model(tmp_path: Path, template: str,
                                           overrides: tuple[str, ...]) -> None:
    project = generate(tmp_path, f"mp_{template}", template)
    run = tmp_path / "run"
    (chief_rc, chief_out), (worker_rc, worker_out) = _two_jax_processes(project, run, *overrides)
    assert chief_rc == 0, chief_out[-3000:]
    assert worker_rc == 0, worker_out[-3000:]
    assert "2 replica(s) on 2 host(s)" in chief_out
    assert "run directory" in chief_out and "run directory" not in worker_out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]
    fingerprints = [json.loads((run / "workers" / f"{i}.json").read_text()) for i in (0, 1)]
    assert fingerprints[0]["sha256"] == fingerprints[1]["sha256"]


def test_mirrored_strategy_on_two_cpu_replicas(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import importlib.util, os, sys
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        spec = importlib.util.spec_from_file_location(
            "rt", "{RUNTIME_DIR / '__init__.py'}",
            submodule_search_locations=["{RUNTIME_DIR}"])
        rt = importlib.util.module_from_spec(spec); sys.modules["rt"] = rt
        spec.loader.exec_module(rt)
        from rt.pipeline import Batches
        import keras, numpy as np
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        x = rng.integers(0, 255, (64, 6), dtype=np.uint8)
        y = np.eye(2, dtype="float32")[(x[:, 0] > 127).astype(int)]
        with strategy.scope():
            inputs = keras.Input((6,), dtype="uint8")
            hidden = keras.layers.Rescaling(1 / 255)(inputs)
            outputs = keras.layers.Dense(2, activation="softmax")(hidden)
            model = keras.Model(inputs, outputs)
            model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(Batches(x, y, 16, training=True),
                            validation_data=Batches(x, y, 16, training=False),
                            epochs=3, verbose=0)
        print("replicas", strategy.num_replicas_in_sync, "epochs", len(history.history["loss"]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2 epochs 3" in result.stdout
