"""``python -m PACKAGE export``: the trained model in a format for serving."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from collections.abc import Callable
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
        # the checkpoint already is a complete .keras model
        rundir.write_via(target, lambda tmp: shutil.copyfile(source, tmp))
    elif fmt == "saved_model":
        if keras.backend.backend() != "tensorflow":
            raise ProjectError("SavedModel export needs the TensorFlow backend "
                               "(run with KERAS_BACKEND=tensorflow)")
        target = out or export_dir / "saved_model"
        net = rundir.load_model(source)
        custom = _template_saved_model_writer()
        if custom is None:
            _export_into(target, lambda tmp: net.export(str(tmp), format="tf_saved_model",
                                                        verbose=False))
        else:
            _export_into(target, lambda tmp: custom(net, run, tmp))
    elif fmt == "onnx":
        target = out or export_dir / "model.onnx"
        net = rundir.load_model(source)
        try:
            _export_into(target, lambda tmp: net.export(str(tmp), format="onnx", verbose=False))
        except ImportError as err:
            raise ProjectError(f"ONNX export needs extra packages: {err} "
                               "(pip install onnx tf2onnx)") from None
    else:
        raise ProjectError(f"--format must be one of {', '.join(FORMATS)}")
    print(f"exported {fmt} model to {target}")
    return target


def _template_saved_model_writer() -> Callable[[keras.Model, rundir.RunDir, Path], None] | None:
    """A template's own SavedModel writer (``serving.export_saved_model``), if it has one.

    A template whose model takes encoded inputs uses it to put its preprocessing
    into the SavedModel, so the export scores raw data (fraud does).
    """
    name = f"{__package__}.serving"
    if importlib.util.find_spec(name) is None:
        return None
    module = importlib.import_module(name)
    writer: Callable[[keras.Model, rundir.RunDir, Path], None] = module.export_saved_model
    return writer


def _export_into(target: Path, write: Callable[[Path], None]) -> None:
    """Write next to ``target`` and rename, so a failed export leaves nothing behind
    (``rundir.write_via``: never through a symlink, never outside the folder)."""
    rundir.write_via(target, write)
