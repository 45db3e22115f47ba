"""train.py's named steps, each on its own: resume, XLA probe, stop signals, summary."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import runtime

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

train = runtime.load("train")
errors = runtime.load("errors")


def _run(tmp_path: Path, metrics: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(path=tmp_path / "run", checkpoints=tmp_path / "run/checkpoints",
                           last_checkpoint=tmp_path / "run/checkpoints/last.keras",
                           read_metrics=lambda: metrics or {})


def test_resume_starts_after_the_last_completed_epoch(tmp_path: Path) -> None:
    run = _run(tmp_path, {"epochs_completed": 3})
    assert train.resume_epoch(run, resume=True) == 3
    assert train.resume_epoch(run, resume=False) == 0
    assert train.resume_epoch(_run(tmp_path), resume=True) == 0


def test_xla_probe_only_on_tensorflow(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    probed: list[Any] = []

    def failure(net: Any, sample: Any) -> str:
        probed.append(sample)
        return "layer 'odd' (RandomThing)"

    monkeypatch.setattr(train.strategy, "xla_failure", failure)
    assert train.probe_xla(object(), SimpleNamespace(jit_compile=True, backend="jax"), 1)
    assert not train.probe_xla(object(), SimpleNamespace(jit_compile=False,
                                                         backend="tensorflow"), 2)
    assert probed == []
    assert not train.probe_xla(object(), SimpleNamespace(jit_compile=True,
                                                         backend="tensorflow"), 3)
    assert probed == [3]
    assert "XLA cannot compile layer 'odd' (RandomThing); training without XLA" \
        in capsys.readouterr().out


def test_xla_kept_unless_keras_switched_it_off(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(train.strategy, "describe_non_xla_layers", lambda net: "aug (Flip)")
    assert train.xla_kept(SimpleNamespace(jit_compile=True), True)
    assert not train.xla_kept(SimpleNamespace(jit_compile=False), False)
    assert capsys.readouterr().out == ""
    assert not train.xla_kept(SimpleNamespace(jit_compile=False), True)
    assert "warning: XLA is off: aug (Flip)" in capsys.readouterr().out


def test_a_signal_stop_says_how_to_resume(tmp_path: Path) -> None:
    run = _run(tmp_path)
    recorder = SimpleNamespace(stopped_at=(2, 5), stop_reason="Ctrl-C", nan_epoch=None)
    with pytest.raises(errors.TrainingInterrupted) as caught:
        train.raise_if_stopped(recorder, run)
    assert caught.value.exit_code == 130
    assert str(caught.value) == (f"stopped by Ctrl-C in epoch 2 after step 5; checkpoint saved "
                                 f"in {run.checkpoints}; continue with: train --resume "
                                 f"--run-dir {run.path}")
    recorder = SimpleNamespace(stopped_at=(3, 0), stop_reason="SIGTERM", nan_epoch=None)
    with pytest.raises(errors.TrainingInterrupted, match="by SIGTERM after epoch 3;") as caught:
        train.raise_if_stopped(recorder, run)
    assert caught.value.exit_code == 143


def test_a_nan_loss_says_what_was_kept(tmp_path: Path) -> None:
    run = _run(tmp_path)
    recorder = SimpleNamespace(stopped_at=None, stop_reason="", nan_epoch=4)
    with pytest.raises(errors.TrainingStopped, match="epoch 4; training stopped and no "
                                                     "checkpoint had been written yet"):
        train.raise_if_stopped(recorder, run)
    run.last_checkpoint.parent.mkdir(parents=True)
    run.last_checkpoint.write_bytes(b"x")
    with pytest.raises(errors.TrainingStopped, match="the last good checkpoint is kept"):
        train.raise_if_stopped(recorder, run)
    train.raise_if_stopped(SimpleNamespace(stopped_at=None, nan_epoch=None), run)  # finished


def test_summary_names_validation_numbers_and_the_test_score() -> None:
    final = {"accuracy": 0.91, "chance_accuracy": 0.1}
    text = train.summary("accuracy", final, None, best_epoch=3, epochs=4, seconds=12.3,
                         test_key="data.test_dir")
    assert text.splitlines() == [
        "", "validation accuracy: 0.9100 (best epoch 3 of 4, 12 s)",
        "chance level: 0.1000 (what a model that learned nothing scores)",
        "these are validation numbers: the same rows chose the best checkpoint; set "
        "data.test_dir for a score on data training never saw"]
    test = {"accuracy": None, "chance_accuracy": 0.5, "samples": 7, "data": "t"}
    text = train.summary("accuracy", {"accuracy": 0.5}, test, best_epoch="?", epochs=1,
                         seconds=1, test_key=None)
    assert text.splitlines()[1:] == [
        "validation accuracy: 0.5000 (best epoch ? of 1, 1 s)",
        "test accuracy: undefined on 7 samples of t (scored once, after training)",
        "test chance level: 0.5000"]
