"""The template contract (contract.py): what a template provides, checked before Keras.

Every built-in template satisfies it; a user template that misses a piece gets one
line naming the piece and exit code 2, not a traceback from deep inside train.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import runtime
import template_modules
from project_runner import last_line

contract = runtime.load("contract")
TEMPLATES = ("vision", "nlp", "driving", "medical", "fraud")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_builtin_template_provides_every_piece(template: str) -> None:
    assert contract.missing(template_modules.package_dir(template)) == []


def _copy(template: str, tmp_path: Path) -> Path:
    folder = tmp_path / "pkg"
    shutil.copytree(template_modules.package_dir(template), folder)
    return folder


@pytest.mark.parametrize(("module", "name", "renamed"), [
    ("data", "load_splits", "load_splits_old"),
    ("data", "load_eval", "load_evaluation"),
    ("model", "build_model", "make_model"),
    ("model", "compile_args", "compile_arguments"),
    ("report", "report", "make_report"),
    ("predict", "run_prediction", "predict_files"),
])
def test_a_renamed_function_is_named(tmp_path: Path, module: str, name: str,
                                     renamed: str) -> None:
    folder = _copy("vision", tmp_path)
    path = folder / f"{module}.py"
    path.write_text(path.read_text().replace(f"def {name}(", f"def {renamed}("))
    with pytest.raises(contract.ContractError) as caught:
        contract.check_sources(folder)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{module}.py has no {name} (it needs def {name}(" in message


def test_headline_may_be_a_constant_or_a_function(tmp_path: Path) -> None:
    folder = _copy("driving", tmp_path)  # driving: headline(meta), no HEADLINE
    report = folder / "report.py"
    source = report.read_text()
    report.write_text(source.replace("def headline(", "def chosen_headline("))
    assert contract.missing(folder) == [
        "the template's report.py has no headline (it needs def headline(meta) -> str, "
        'or HEADLINE = "<metric>")']
    report.write_text(source.replace("def headline(", "def chosen_headline(")
                      + '\nHEADLINE = "mae"\n')
    assert contract.missing(folder) == []


def test_a_missing_module_and_several_pieces(tmp_path: Path) -> None:
    folder = _copy("fraud", tmp_path)
    (folder / "model.py").unlink()
    with pytest.raises(contract.ContractError,
                       match=r"^the template has no model.py \(it needs def build_model"
                             r".*\(and 1 more\)$"):
        contract.check_sources(folder)


def test_names_from_imports_and_guarded_blocks_count() -> None:
    names = contract.defined_names(
        "from .other import load_splits as load_splits\n"
        "try:\n    from .x import load_eval\nexcept ImportError:\n    load_eval = None\n"
        "if True:\n    def build_model(config, meta): ...\n"
        "HEADLINE: str = 'dice'\n")
    assert {"load_splits", "load_eval", "build_model", "HEADLINE"} <= names


def test_bind_resolves_headline_and_optional_pieces() -> None:
    from types import SimpleNamespace

    def noop(*args: object, **kwargs: object) -> None:
        return None

    data = SimpleNamespace(load_splits=noop, load_eval=noop)
    model = SimpleNamespace(build_model=noop, compile_args=noop)
    fixed = contract.bind(data, model, SimpleNamespace(report=noop, HEADLINE="accuracy"))
    assert fixed.headline({"task": "x"}) == "accuracy"
    assert fixed.epoch_metrics is None and fixed.load_validation is None
    per_task = contract.bind(data, SimpleNamespace(build_model=noop, compile_args=noop,
                                                   epoch_metrics=noop),
                             SimpleNamespace(report=noop, HEADLINE="accuracy",
                                             headline=lambda meta: meta["task"]))
    assert per_task.headline({"task": "bleu"}) == "bleu"
    assert per_task.epoch_metrics is noop


def test_user_template_missing_a_piece_is_one_line_before_keras(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """appgen template new x --extends vision; its report.py renames report(): train says so."""
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(tmp_path / "user-templates"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def appgen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appgen", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    made = appgen("template", "new", "x", "--extends", "vision")
    assert made.returncode == 0, made.stderr
    package = tmp_path / "user-templates" / "x" / "project" / "__package__"
    package.mkdir(parents=True, exist_ok=True)
    vision_report = template_modules.TEMPLATES / "vision/project/__package__/report.py"
    (package / "report.py").write_text(
        vision_report.read_text().replace("def report(", "def build_report("))
    made = appgen("new", "xproj", "-t", "x", "--no-sample-data")
    assert made.returncode == 0, made.stderr
    project = tmp_path / "xproj"
    for command in (["train"], ["evaluate", "--run-dir", "runs/none"]):
        result = subprocess.run([sys.executable, "-m", "xproj", *command], cwd=project,
                                env=env, capture_output=True, text=True, timeout=300,
                                check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == last_line(result.stderr)  # one line, no traceback
        assert "report.py has no report (it needs def report(model, batches, meta, " \
            "plots_dir) -> dict)" in result.stderr
        assert "keras" not in result.stderr.lower()
