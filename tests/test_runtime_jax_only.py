"""A JAX-only install (``pip install -e .[jax]``, no TensorFlow) runs every template.

TensorFlow, TensorBoard and tf2onnx are hidden from the generated project's
Python by a ``sitecustomize.py`` (``project_runner.hiding``): ``import tensorflow``
fails and ``importlib.util.find_spec`` finds nothing, as on a machine where it was
never installed. A second virtual environment would prove the same thing, but
needs the network (or a wheel cache) and minutes of pip per run; this needs
neither. Generation itself never imports a backend (appgen's own rule).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from appgen.datasets import get_writer
from project_runner import generate, hiding

from appgen.catalog import find_template
from appgen.render import RenderRequest, render_project

pytestmark = pytest.mark.slow

HIDDEN = ("tensorflow", "tensorboard", "tf2onnx", "tf_keras")

# name: (template, task, training overrides, predict inputs relative to the project).
# Every template once, plus medical classification (its exact per-epoch AUC) and driving
# segmentation; nlp's translation and causal_lm train on JAX in test_template_nlp.py (with
# TensorFlow installed), to keep CI within its time budget.
CASES: dict[str, tuple[str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "vision": ("vision", None, ("data.max_images=30", "train.batch_size=32"),
               ("data/train/7",)),
    "fraud": ("fraud", None, ("model.hidden=[8]", "train.batch_size=512"),
              ("data/transactions.csv",)),
    "driving": ("driving", "steering", ("train.batch_size=16",), ("data",)),
    "driving-segmentation": ("driving", "segmentation",
                             ("model.width=4", "model.depth=2", "train.batch_size=8"),
                             ("data",)),  # predict on frames with steering labels once crashed
    "medical": ("medical", None, ("data.max_cases=3", "data.max_size=32", "model.width=4",
                                  "model.depth=2", "train.batch_size=8"), ("@val_case",)),
    "medical-classification": ("medical", "classification",
                               ("data.image_size=32", "model.width=4", "model.depth=2",
                                "train.batch_size=16"), ("data/lesion",)),
    "nlp": ("nlp", None, ("data.max_rows=600", "train.batch_size=32"),
            ("the acting was not bad at all",)),
}

# per-epoch metric and final-report metric that must be one number (issue 15, item 14)
AGREE = {"fraud": ("val_pr_auc", "pr_auc"), "medical-classification": ("val_auc", "auc")}


def _project(tmp_path: Path, template: str, task: str | None) -> Path:
    if template != "driving":
        return generate(tmp_path, f"jax_{template}", template, task=task)
    project = tmp_path / f"jax_driving_{task}"  # the real simulator, few frames (fast)
    render_project(RenderRequest(project_name=project.name, template=find_template("driving"),
                                 task=task, out_dir=project, sample_data=False))
    get_writer("roads")(project / "data", size=24, seed=0)
    return project


def _run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", project.name, *args], cwd=project, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, (args[0], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_generate_train_evaluate_predict_without_tensorflow(tmp_path: Path, case: str) -> None:
    template, task, overrides, inputs = CASES[case]
    project = _project(tmp_path, template, task)
    env = {**os.environ, **hiding(tmp_path / "hide", *HIDDEN), "KERAS_BACKEND": "jax",
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env,
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0, "TensorFlow is not hidden: the test would prove nothing"

    run = tmp_path / "run"
    sets = [part for item in ("train.epochs=1", "train.verbose=0", *overrides)
            for part in ("--set", item)]
    trained = _run(project, env, "train", "--run-dir", str(run), *sets)
    assert "backend jax" in trained.stdout
    assert (run / "checkpoints" / "best.keras").is_file()
    _run(project, env, "evaluate", "--run-dir", str(run))
    assert (run / "evaluation.json").is_file()

    if case in AGREE:  # the epoch's exact metric is the report's (one epoch: the best)
        logged, reported = AGREE[case]
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["best"][logged] == pytest.approx(metrics["final"][reported], abs=1e-9)

    if inputs == ("@val_case",):
        case_id = json.loads((run / "meta.json").read_text())["val_cases"][0]
        inputs = (f"data/imagesTr/{case_id}.nii.gz",)
    out = tmp_path / "predictions"
    _run(project, env, "predict", "--run-dir", str(run), *inputs, "--out", str(out))
    assert any(path.is_file() for path in out.rglob("*")), "predict wrote nothing"
