"""Checkpoints are data: one that holds code (a Lambda layer) is refused, never run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from project_runner import last_line, run_project

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _lambda_model(path: Path, marker: Path) -> None:
    """A .keras file whose Lambda layer writes ``marker`` when it is rebuilt."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    # The marker's path is a constant inside the lambda's code, which Keras serialises.
    function = eval(  # noqa: S307  (the hostile payload under test)
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Lambda(function)(inputs)))
    keras.Model(inputs, outputs).save(path)


@pytest.mark.slow
def test_a_checkpoint_with_a_lambda_layer_is_refused(vision_project: Path, run_copy: Path,
                                                     tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    hostile = tmp_path / "hostile.keras"
    _lambda_model(hostile, marker)
    marker.unlink(missing_ok=True)  # building it in this process ran the lambda once
    for name in ("best.keras", "last.keras"):
        (run_copy / "checkpoints" / name).write_bytes(hostile.read_bytes())
    image = next((vision_project / "data" / "train" / "3").glob("*.png"))
    for command in (["predict", "--run-dir", str(run_copy), str(image)],
                    ["export", "--run-dir", str(run_copy), "--format", "saved_model"]):
        result = run_project(vision_project, *command)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert "Lambda" in last_line(result.stderr) and "safe mode" in last_line(result.stderr)
        assert not marker.exists()
    assert not (run_copy / "predictions").exists() and not (run_copy / "export").exists()


def test_no_template_loads_models_outside_safe_mode() -> None:
    unsafe = re.compile(r"safe_mode\s*=\s*False|enable_unsafe_deserialization")
    found = [f"{path.relative_to(TEMPLATES)}:{number}"
             for path in TEMPLATES.rglob("*") if path.suffix in (".py", ".jinja")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if unsafe.search(line)]
    assert found == []
    loads = [f"{path.relative_to(TEMPLATES)}" for path in TEMPLATES.rglob("__package__/*.py")
             if re.search(r"keras\.(models|saving)\.load_model\(", path.read_text())]
    assert loads == ["_base/project/__package__/rundir.py"]  # every load goes through it
