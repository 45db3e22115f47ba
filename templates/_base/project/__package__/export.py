"""``python -m PACKAGE export``: the trained model in a format for serving."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras

from . import rundir
from .errors import ProjectError

FORMATS = ("keras", "saved_model", "onnx")


def run_export(run_path: Path, fmt: str, out: Path | None) -> Path:
    """Export the best checkpoint; return the path written."""
    run = rundir.open_existing(run_path)
    source = rundir.model_checkpoint(run)
    export_dir = run.path / "export"
    if fmt == "keras":
        target = out or export_dir / "model.keras"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # the checkpoint already is a complete .keras model
    elif fmt == "saved_model":
        if keras.backend.backend() != "tensorflow":
            raise ProjectError("SavedModel export needs the TensorFlow backend "
                               "(run with KERAS_BACKEND=tensorflow)")
        target = out or export_dir / "saved_model"
        _export_into(rundir.load_model(source), target, "tf_saved_model")
    elif fmt == "onnx":
        target = out or export_dir / "model.onnx"
        try:
            _export_into(rundir.load_model(source), target, "onnx")
        except ImportError as err:
            raise ProjectError(f"ONNX export needs extra packages: {err} "
                               "(pip install onnx tf2onnx)") from None
    else:
        raise ProjectError(f"--format must be one of {', '.join(FORMATS)}")
    print(f"exported {fmt} model to {target}")
    return target


def _export_into(net: keras.Model, target: Path, fmt: str) -> None:
    """Export next to ``target`` and rename, so a failed export leaves nothing behind."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        net.export(str(tmp), format=fmt, verbose=False)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
