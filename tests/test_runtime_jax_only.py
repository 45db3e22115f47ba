"""A JAX-only install (``pip install -e .[jax]``, no TensorFlow) runs every template.

TensorFlow, TensorBoard and tf2onnx are hidden from the generated project's
Python by a ``sitecustomize.py`` (``project_runner.jax_only_env``): ``import tensorflow``
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
from project_runner import JAX_ONLY, generate, jax_only_env, run_project

from appgen.catalog import find_template
from appgen.render import RenderRequest, render_project

pytestmark = pytest.mark.slow

# name: (template, task, training overrides, predict inputs relative to the project).
# The commands, train to predict, where the template's own tests do not run them without
# TensorFlow: fraud and medical (both tasks) train and predict on backend "jax-only" in
# test_template_fraud.py and test_template_medical.py; nlp's translation and causal_lm train
# on JAX in test_template_nlp.py (with TensorFlow installed: keras-hub needs it).
CASES: dict[str, tuple[str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "vision": ("vision", None, ("data.max_images=30", "train.batch_size=32"),
               ("data/train/7",)),
    "driving": ("driving", "steering", ("train.batch_size=16",), ("data",)),
    "driving-segmentation": ("driving", "segmentation",
                             ("model.width=4", "model.depth=2", "train.batch_size=8"),
                             ("data",)),  # predict on frames with steering labels once crashed
    "nlp": ("nlp", None, ("data.max_rows=600", "train.batch_size=32"),
            ("the acting was not bad at all",)),
}


def _project(tmp_path: Path, template: str, task: str | None) -> Path:
    if template != "driving":
        return generate(tmp_path, f"jax_{template}", template, task=task)
    project = tmp_path / f"jax_driving_{task}"  # the real simulator, few frames (fast)
    render_project(RenderRequest(project_name=project.name, template=find_template("driving"),
                                 task=task, out_dir=project, sample_data=False))
    get_writer("roads")(project / "data", size=24, seed=0)
    return project


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_project(project, *args, backend=JAX_ONLY, timeout=900)
    assert result.returncode == 0, (args[0], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_generate_train_evaluate_predict_without_tensorflow(tmp_path: Path, case: str) -> None:
    template, task, overrides, inputs = CASES[case]
    project = _project(tmp_path, template, task)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"],
                           env={**os.environ, **jax_only_env(project.parent)},
                           capture_output=True, text=True, check=False)
    assert probe.returncode != 0, "TensorFlow is not hidden: the test would prove nothing"

    run = tmp_path / "run"
    sets = [part for item in ("train.epochs=1", "train.verbose=0", *overrides)
            for part in ("--set", item)]
    trained = _run(project, "train", "--run-dir", str(run), *sets)
    assert "backend jax" in trained.stdout
    assert (run / "checkpoints" / "best.keras").is_file()
    _run(project, "evaluate", "--run-dir", str(run))
    assert (run / "evaluation.json").is_file()
    if template == "nlp":  # keras-hub's learner needs tensorflow-text: the fallback is named
        assert json.loads((run / "meta.json").read_text())["vocabulary_learner"] == "python"

    out = tmp_path / "predictions"
    _run(project, "predict", "--run-dir", str(run), *inputs, "--out", str(out))
    assert any(path.is_file() for path in out.rglob("*")), "predict wrote nothing"
