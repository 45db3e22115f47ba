"""Run directory and config handling of the shared runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime import load

config = load("config")
errors = load("errors")
rundir = load("rundir")

CONFIG = """
[train]
epochs = 10           # passes
learning_rate = 0.001
name = "x"
tags = ["a"]
[runtime]
jit_compile = "auto"
"""


def test_overrides_are_typed_and_unknown_keys_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    loaded = config.load_config(path, ["train.epochs=3", "train.learning_rate=1",
                                       "runtime.jit_compile=false", "train.name=plain words"])
    assert loaded["train"]["epochs"] == 3
    assert loaded["train"]["learning_rate"] == 1.0 and isinstance(loaded["train"]["learning_rate"],
                                                                   float)
    assert loaded["runtime"]["jit_compile"] is False
    assert loaded["train"]["name"] == "plain words"
    with pytest.raises(errors.ConfigError, match="unknown config key 'train.epoch'.*train.epochs"):
        config.load_config(path, ["train.epoch=3"])
    with pytest.raises(errors.ConfigError, match="train.epochs must be an integer"):
        config.load_config(path, ["train.epochs=2.5"])
    with pytest.raises(errors.ConfigError, match="train.learning_rate must be a number"):
        config.load_config(path, ["train.learning_rate=true"])
    with pytest.raises(errors.ConfigError, match="KEY=VALUE"):
        config.load_config(path, ["train.epochs"])


def test_dump_round_trips(tmp_path: Path) -> None:
    import tomllib

    data = {"a": 1, "t": {"x": "q\"uote", "y": [1, 2], "z": 0.5, "b": True, "n": {"k": "v"}}}
    assert tomllib.loads(config.dump_toml(data)) == data


def test_prepare_checks_before_training(tmp_path: Path) -> None:
    run = rundir.prepare(tmp_path / "r", resume=False, min_free_mb=1)
    assert run.checkpoints.is_dir() and run.plots.is_dir() and run.logs.is_dir()
    with pytest.raises(errors.RunDirError, match="MB free"):
        rundir.prepare(tmp_path / "r2", resume=False, min_free_mb=10**12)
    with pytest.raises(errors.RunDirError, match="no checkpoint"):
        rundir.prepare(tmp_path / "r3", resume=True, min_free_mb=1)


def test_run_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.RunDirError, match="cannot write"):
        rundir.prepare(blocker / "run", resume=False, min_free_mb=1)


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    rundir.atomic_write_json(target, {"epochs_completed": 1})

    class Boom:
        def __repr__(self) -> str:
            raise KeyboardInterrupt

    with pytest.raises(TypeError):
        rundir.atomic_write_json(target, {"bad": Boom()})
    assert target.read_text().strip().startswith("{") and "epochs_completed" in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    with pytest.raises(ValueError):
        rundir.atomic_write_json(target, {"nan": float("nan")})
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_nan_batch_never_overwrites_the_last_good_checkpoint(tmp_path: Path) -> None:
    import keras
    import numpy as np

    callbacks = load("callbacks")
    run = rundir.prepare(tmp_path / "run", resume=False, min_free_mb=1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    recorder = callbacks.RunRecorder(run, monitor="val_loss", mode="min", epochs=3)
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model.fit(x, y, validation_data=(x, y), epochs=1, callbacks=[recorder], verbose=0)
    good = run.last_checkpoint.read_bytes()
    recorder.on_epoch_begin(1)
    recorder.on_train_batch_end(0, {"loss": float("nan")})
    recorder.on_epoch_end(1, {"loss": float("nan"), "val_loss": float("nan")})
    assert recorder.nan_epoch == 2 and model.stop_training
    assert run.last_checkpoint.read_bytes() == good
    assert json.loads(run.metrics.read_text())["epochs_completed"] == 1
