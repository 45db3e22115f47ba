"""The shared fine-tuning pieces (finetune.py) on a small Keras model with a backbone
layer, without keras-hub presets (tests/test_template_presets.py runs those end to end)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import runtime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

finetune = runtime.load("finetune")
errors = runtime.load("errors")


def _model(backbone_name: str = "preset_backbone"):  # type: ignore[no-untyped-def]
    import keras

    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                                 keras.layers.BatchNormalization()], name=backbone_name)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(backbone(inputs))
    net = keras.Model(inputs, outputs)
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    return net


def test_phases_freeze_the_backbone_then_train_it_with_batch_norm_in_inference() -> None:
    net = _model()
    config = {"train": {"freeze_epochs": 3}}
    assert finetune.freeze_epochs(config, net) == 3
    finetune.set_phase(net, frozen=True)
    assert finetune.is_frozen(net) and len(net.trainable_weights) == 2  # the head alone
    finetune.set_phase(net, frozen=False)
    assert not finetune.is_frozen(net)
    names = sorted(v.path.split("/")[-1] for v in net.trainable_weights)
    assert names == ["bias", "bias", "kernel", "kernel"]  # no gamma/beta: batch norm is off


def test_a_model_without_a_backbone_trains_in_one_phase() -> None:
    net = _model("features")
    assert finetune.freeze_epochs({"train": {"freeze_epochs": 3}}, net) == 0
    assert finetune.freeze_epochs({"train": {}}, _model()) == 0  # a template without the key
    finetune.set_phase(net, frozen=True)
    assert len(net.trainable_weights) == 6


def test_reload_optimizer_restores_the_saved_state(tmp_path: Path) -> None:
    import keras

    net = _model()
    finetune.set_phase(net, frozen=True)
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    net.fit(np.ones((8, 4)), np.eye(2)[np.arange(8) % 2], batch_size=4, epochs=1, verbose=0)
    net.save(tmp_path / "last.keras")
    loaded = keras.models.load_model(tmp_path / "last.keras")
    finetune.set_phase(loaded, frozen=finetune.is_frozen(loaded))
    finetune.reload_optimizer(loaded, tmp_path / "last.keras")
    assert int(loaded.optimizer.iterations) == 2
    assert len(loaded.optimizer.variables) == len(net.optimizer.variables)


def test_a_missing_local_preset_is_one_line_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="is not a folder"):
        finetune.check_preset({"model": {"preset": str(tmp_path / "nowhere")}})
    finetune.check_preset({"model": {"preset": "resnet_18_imagenet"}})  # a name: fetched later
    finetune.check_preset({"model": {"preset": ""}})
    assert finetune.source(str(tmp_path)) == str(tmp_path.resolve())
    assert finetune.source("hf://keras/bert") == "hf://keras/bert"


def test_a_folder_that_is_no_preset_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError) as raised:
        finetune.load_preset("models.Backbone", str(tmp_path))
    assert "cannot load Backbone from preset folder" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_kagglehub_cache_follows_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLEHUB_CACHE", "/data/hub")
    assert finetune.kagglehub_cache() == "/data/hub"
    monkeypatch.delenv("KAGGLEHUB_CACHE")
    assert finetune.kagglehub_cache().endswith(".cache/kagglehub")
