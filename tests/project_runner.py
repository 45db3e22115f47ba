"""Generate a project with appgen's library and run its commands as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appgen.catalog import find_template
from appgen.render import RenderRequest, render_project


def generate(tmp_path: Path, name: str, template: str, *overrides: str,
             task: str | None = None, sample_data: bool = True) -> Path:
    """Render ``template`` into ``tmp_path/name`` and return the project folder."""
    target = tmp_path / name
    render_project(RenderRequest(project_name=name, template=find_template(template), task=task,
                                 out_dir=target, overrides=list(overrides),
                                 sample_data=sample_data))
    return target


# what a JAX-only install (pip install -e .[jax]) lacks
TENSORFLOW_MODULES = ("tensorflow", "tensorboard", "tf2onnx", "tf_keras")
JAX_ONLY = "jax-only"  # a backend for run_project: KERAS_BACKEND=jax, TensorFlow hidden


def run_project(project: Path, *args: str, backend: str = "tensorflow",
                timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """``python -m PACKAGE args...`` inside the project with KERAS_BACKEND set.

    ``backend="jax-only"`` runs JAX as installed without TensorFlow: TensorFlow and its
    companions cannot be imported (``hiding``), so the run proves the project needs none.
    """
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONUNBUFFERED": "1"}
    if backend == JAX_ONLY:
        env.update(jax_only_env(project.parent))
    return subprocess.run([sys.executable, "-m", project.name, *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def jax_only_env(folder: Path) -> dict[str, str]:
    """Environment variables of a JAX-only install: KERAS_BACKEND=jax, TensorFlow hidden
    (its sitecustomize.py goes in ``folder/.hide_tensorflow``)."""
    return {"KERAS_BACKEND": "jax", **hiding(folder / ".hide_tensorflow", *TENSORFLOW_MODULES)}


def train_ok(project: Path, run: Path, *args: str, backend: str = "tensorflow"
             ) -> subprocess.CompletedProcess[str]:
    """``train --run-dir RUN args...``, asserting it succeeded and named the run directory."""
    result = run_project(project, "train", "--run-dir", str(run), *args, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(run) in result.stdout
    return result


def last_line(text: str) -> str:
    """The last non-empty line (where one-line errors end up)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# sitecustomize.py hiding top-level modules from every import finder, as if they were not
# installed: importlib.util.find_spec returns None and `import NAME` raises
# ModuleNotFoundError. Cheaper and as honest as a second virtual environment without them.
_HIDE_MODULES = """
import sys

HIDDEN = {hidden!r}


class _Hide:
    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find = getattr(self._finder, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attribute):
        return getattr(self._finder, attribute)


sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
"""


def hiding(folder: Path, *modules: str) -> dict[str, str]:
    """Environment variables under which Python cannot import ``modules`` (see _HIDE_MODULES).

    Writes ``folder/sitecustomize.py``; the variables put it first on PYTHONPATH.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_HIDE_MODULES.format(hidden=set(modules)))
    paths = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def beats_chance(final: dict, metric: str, margin: float) -> bool:
    """Whether ``final[metric]`` beats its ``chance_<metric>`` by ``margin`` (higher is better).

    ``chance_<metric>`` is what the template's report says a model that learned nothing
    scores on the same data (majority class, a constant score, an empty mask).
    """
    return final[metric] >= final[f"chance_{metric}"] + margin
