"""The generator CLI as a newcomer meets it: one-line refusals, hints, tidy output (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

from appgen import catalog, settings
from appgen.cli import main
from appgen.render import preview_config


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    return err


def test_backend_torch_is_refused_by_new_and_update(templates_dir: Path, tmp_path: Path) -> None:
    err = one_line_error(*run("new", "cats", "-t", "demo", "--backend", "torch"))
    assert "torch is not supported" in err and "tensorflow or jax" in err
    assert not (tmp_path / "cats").exists()

    code, _, err = run("new", "cats", "-t", "demo")
    assert code == 0, err
    err = one_line_error(*run("update", "cats", "--backend", "torch", "--force"))
    assert "torch is not supported" in err


def test_help_offers_only_the_supported_backends() -> None:
    code, out, _ = run("new", "--help")
    assert code == 0 and "[tensorflow|jax]" in out and "torch" not in out


@pytest.mark.parametrize(("template", "value", "task"), [
    ("nlp", "translation", "translation"),
    ("nlp", "causal_lm", "causal_lm"),
    ("medical", "classification", "classification"),
    ("driving", "segmentation", "segmentation"),
])
def test_set_of_the_task_key_points_to_task(tmp_path: Path, template: str, value: str,
                                            task: str) -> None:
    out_dir = tmp_path / "p"
    err = one_line_error(*run("new", "p", "-t", template, "-o", str(out_dir),
                              "--set", f"data.task={value}", "--no-sample-data"))
    assert f"use --task {task}" in err
    assert not out_dir.exists()


def test_set_of_the_task_key_to_an_unknown_task_lists_the_tasks(tmp_path: Path) -> None:
    err = one_line_error(*run("new", "p", "-t", "nlp", "-o", str(tmp_path / "p"),
                              "--set", "data.task=summarise", "--no-sample-data"))
    assert "classification, translation, causal_lm" in err and "--task" in err


def test_set_of_the_task_key_that_agrees_with_task_is_accepted(tmp_path: Path) -> None:
    code, out, err = run("new", "p", "-t", "nlp", "--task", "translation", "-o",
                         str(tmp_path / "p"), "--set", "data.task=translation",
                         "--no-sample-data", "--dry-run")
    assert code == 0, err


def test_task_keys_are_found_in_every_builtin_template_with_tasks() -> None:
    keys = {t.name: t.task_keys() for t in catalog.list_templates()}
    assert keys["nlp"] == {"data.task"}
    assert keys["medical"] == {"data.task"}
    assert keys["driving"] == {"data.task"}
    assert keys["fraud"] == set()  # its task settings are ordinary values


def test_mistyped_template_name_gets_did_you_mean(tmp_path: Path) -> None:
    err = one_line_error(*run("new", "p", "-t", "visoin", "-o", str(tmp_path / "p")))
    assert "did you mean vision?" in err
    err = one_line_error(*run("info", "medicla"))
    assert "did you mean medical?" in err


def test_unknown_dataset_is_reported_once(tmp_path: Path) -> None:
    err = one_line_error(*run("data", "mnist", "--out", str(tmp_path / "d")))
    assert err.count("unknown dataset") == 1 and '"' not in err
    err = one_line_error(*run("data", "road", "--out", str(tmp_path / "d")))
    assert "did you mean roads?" in err


def test_list_columns_line_up() -> None:
    code, out, _ = run("list")
    assert code == 0
    columns = set()
    for line, template in zip(out.splitlines(), catalog.list_templates(), strict=True):
        columns.add(line.index(template.description))
    assert len(columns) == 1, out


def test_info_keeps_multi_line_comments_whole() -> None:
    code, out, _ = run("info", "driving")
    assert code == 0
    line = next(line for line in out.splitlines() if line.strip().startswith("model.width "))
    assert line.endswith("4x cheaper than 16 on a CPU"), line


def test_continued_trailing_comment_is_joined() -> None:
    text = ('[a]\nx = 1   # first part,\n        # second part\n# leading comment of y\n'
            'y = 2\nz = 3  # own comment\n')
    found = {a.key: a.comment for a in settings.describe_keys(text)}
    assert found == {"a.x": "first part, second part", "a.y": "leading comment of y",
                     "a.z": "own comment"}
    # The rewrite keeps every line, continuation comments included.
    assert settings.apply_overrides(text, {"a.x": 5, "a.y": 6}).splitlines()[1:3] == [
        "x = 5   # first part,", "        # second part"]


def test_info_names_the_task_shown_and_how_to_see_the_others() -> None:
    code, out, _ = run("info", "nlp")
    assert code == 0
    assert "options of task classification" in out and "--task translation" in out
    code, out, _ = run("info", "nlp", "--task", "causal_lm")
    assert code == 0
    assert "options of task causal_lm" in out and 'data.task' in out
    assert '"causal_lm"' in next(line for line in out.splitlines() if "data.task " in line)
    one_line_error(*run("info", "nlp", "--task", "chat"))


def test_output_into_a_closed_pipe_is_quiet(templates_dir: Path, tmp_path: Path) -> None:
    """`appgen new ... | head -1`: no `error: Broken pipe`, no traceback."""
    env = {**os.environ, "APPGEN_TEMPLATES_DIR": str(templates_dir)}
    for args in (["new", "cats", "-t", "demo"], ["list"], ["info", "demo"], ["--help"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "appgen", *args], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the first line is written
        err = process.stderr.read().decode()
        process.wait(timeout=60)
        assert "Broken pipe" not in err and "Traceback" not in err, err
        assert "Exception ignored" not in err, err
    assert (tmp_path / "cats" / "config.toml").is_file()  # the work itself was done


def test_doctor_plans_each_template_with_its_own_learning_rate() -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run([sys.executable, "-m", "appgen", "doctor"], env=env,
                               capture_output=True, text=True, timeout=300, check=True)
    lines = completed.stdout.splitlines()
    assert not any("torch" in line for line in lines)
    for template in catalog.list_templates():
        for task in template.effective_tasks():
            text = preview_config(template, task)
            assert text is not None
            rate = tomllib.loads(text)["train"]["learning_rate"]
            line = next(line for line in lines
                        if line.strip().startswith(f"{template.name} {task}:"))
            assert f"learning rate {rate:g}," in line, (line, rate)
