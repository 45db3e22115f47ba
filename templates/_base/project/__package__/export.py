"""``python -m PACKAGE export``: the trained model in a format for serving."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from . import rundir
from .errors import ProjectError

FORMATS = ("keras", "saved_model", "onnx")


def run_export(run_path: Path, fmt: str, out: Path | None) -> Path:
    """Export the best checkpoint; return the path written."""
    run = rundir.open_existing(run_path)
    source = rundir.model_checkpoint(run)
    if fmt != "keras" and rundir.read_meta(run).get("task") == "detection":
        # Keras exports call(), the raw anchor outputs; keras-hub decodes boxes and runs
        # NMS in predict_step, which neither exporter traces.
        raise ProjectError(f"{fmt} export is not available for detection: keras-hub's box "
                           "decoder and NMS run outside the exported graph; use --format keras")
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
        _check_onnx_support()
        net = for_inference(rundir.load_model(source))
        call_once(net)  # a loaded model has never been called: Keras' ONNX export needs it
        try:
            with warnings.catch_warnings():  # Keras' tf2onnx patch warns about np.object
                warnings.simplefilter("ignore", FutureWarning)
                _export_into(target, lambda tmp: net.export(str(tmp), format="onnx",
                                                            verbose=False))
        except ImportError as err:
            raise ProjectError(f"ONNX export needs the export extra ({err}): "
                               "pip install -e .[export]") from None
    else:
        raise ProjectError(f"--format must be one of {', '.join(FORMATS)}")
    print(f"exported {fmt} model to {target}")
    return target


def onnx_packages_missing() -> list[str]:
    """The packages ``--format onnx`` needs on this backend that are not installed."""
    converter = {"tensorflow": "tf2onnx", "jax": "jax2onnx"}.get(keras.backend.backend())
    names = ["onnx", *([converter] if converter else [])]
    return [name for name in names if not _importable(name)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _check_onnx_support() -> None:
    """ProjectError (one line) when this template's model or this backend cannot give ONNX."""
    from . import model

    reason = getattr(model, "ONNX_UNSUPPORTED", "")
    if reason:
        raise ProjectError(f"ONNX export is not available for this model: {reason}")
    if keras.backend.backend() not in ("tensorflow", "jax"):
        raise ProjectError("ONNX export needs the TensorFlow or JAX backend "
                           "(run with KERAS_BACKEND=tensorflow or jax)")
    missing = onnx_packages_missing()
    if missing:
        raise ProjectError(f"ONNX export needs {', '.join(missing)}: pip install -e .[export]")


def for_inference(net: keras.Model) -> keras.Model:
    """``net`` as the ONNX converter must see it: augmentation off, always ``training=False``.

    Traced as it is, the TensorFlow converter gets batch normalization in training
    mode (batch statistics: outputs depend on the rest of the batch).
    """
    net = without_augmentation(net)
    inputs = keras.tree.map_structure(
        lambda tensor: keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=tensor.name),
        net._inputs_struct)
    return keras.Model(inputs, net(inputs, training=False), name=net.name)


def without_augmentation(net: keras.Model) -> keras.Model:
    """``net`` with its random augmentation layers replaced by Identity, weights shared.

    They are identity at inference anyway, but still draw random numbers, and the
    ONNX converter keeps those ops (ONNX Runtime then refuses the graph). Layers
    named Random* are augmentation by Keras' convention, except RandomCrop, which
    crops at inference too.
    """
    def augmentation(layer: keras.layers.Layer) -> bool:
        kind = type(layer).__name__
        return kind.startswith("Random") and kind != "RandomCrop"

    if not any(augmentation(layer) for layer in net.layers):
        return net

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if augmentation(layer):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(net, clone_function=clone)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(net.get_layer(layer.name).get_weights())
    return copy


def call_once(net: keras.Model) -> None:
    """Call ``net`` on one all-zero sample (free dimensions 32 long) so it counts as called."""
    import numpy as np

    def zeros(tensor: Any) -> Any:
        shape = [1] + [32 if size is None else size for size in tensor.shape[1:]]
        return np.zeros(shape, dtype=tensor.dtype)

    net(keras.tree.map_structure(zeros, net._inputs_struct), training=False)


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
