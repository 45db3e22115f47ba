"""The click CLI: output, exit codes, and that the generator never imports a backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from appgen.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_new_creates_project_and_prints_next_steps(templates_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("new", "cats", "-t", "demo", "--set", "train.epochs=2")
    assert code == 0, err
    assert (tmp_path / "cats" / "cats" / "util.py").is_file()
    assert "epochs = 2" in (tmp_path / "cats" / "config.toml").read_text()
    assert "cd cats && python -m cats train" in out


def test_dry_run_lists_files(templates_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run("new", "cats", "-t", "demo", "--dry-run", "-o", "elsewhere")
    assert code == 0 and "cats/util.py" in out and ".appgen.toml" in out
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["new", "cats", "-t", "nope"], "error: unknown template 'nope'"),
    (["new", "class", "-t", "demo"], "error: invalid project name 'class'"),
    (["new", "cats", "-t", "demo", "--set", "train.epoch=2"], "error: --set: unknown config key"),
    (["new", "cats", "-t", "demo", "--set", "train.epochs=x"], "error: train.epochs must be"),
    (["new", "cats", "-t", "demo", "--task", "x"], "error: template 'demo' has no task 'x'"),
    (["new", "cats", "-t", "_testbase"], "error: template '_testbase' is a base"),
    (["info", "nope"], "error: unknown template"),
    (["data", "no-such-dataset", "--out", "d"], "error: unknown dataset 'no-such-dataset'"),
])
def test_errors_are_one_line_and_exit_2(templates_dir: Path, args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in out + err


def test_occupied_target_exits_2_and_writes_nothing(templates_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "mine.txt").write_text("mine")
    code, _, err = run("new", "cats", "-t", "demo")
    assert code == 2 and "is not empty" in err
    assert os.listdir(tmp_path / "cats") == ["mine.txt"]
    code, _, _ = run("new", "cats", "-t", "demo", "--force")
    assert code == 0 and (tmp_path / "cats" / "mine.txt").read_text() == "mine"


def test_usage_errors_keep_clicks_exit_code(templates_dir: Path) -> None:
    code, _, err = run("new", "cats")
    assert code == 2 and "Missing option '-t'" in err
    code, _, _ = run("new", "cats", "-t", "demo", "--backend", "mxnet")
    assert code == 2


def test_list_and_info(templates_dir: Path) -> None:
    code, out, _ = run("list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("demo"))
    assert "classify,segment" in line and "Demo template for tests" in line and "(user)" in line
    assert "_testbase" not in out

    code, out, _ = run("info", "demo")
    assert code == 0
    assert "tasks:       classify, segment (default classify)" in out
    assert "train/<class>/*.png" in out
    assert "train.epochs" in out and "= 10  # passes over the data" in out
    assert "runtime.backend" in out and "# keras backend" in out
    code, out, _ = run("info", "demo", "--task", "segment")
    assert "train.batch_size    = 8" in out


def test_doctor_reports_plan_or_one_line_failure(
    templates_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appgen import catalog

    builtin = tmp_path / "builtin"
    package = builtin / "_base" / "project" / "__package__"
    package.mkdir(parents=True)
    (package / "helpers.py").write_text("def summary(config):\n    return 'cpu only'\n")
    (package / "strategy.py").write_text(textwrap.dedent("""
        from .helpers import summary  # relative imports must work

        def describe_environment(backend):
            return backend

        def choose_plan(config, env):
            return (env, config["train"]["batch_size"], summary(config))

        def format_plan(plan):
            return "backend %s, batch %s, %s" % plan
    """))
    monkeypatch.setattr(catalog, "builtin_templates_dir", lambda: builtin)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    code, out, _ = run("doctor")
    assert code == 0 and "appgen:  0.1.0" in out
    assert "backend jax, batch 32, cpu only" in out  # fallback config, env backend

    (package / "strategy.py").write_text("raise RuntimeError('no devices here')\n")
    code, out, _ = run("doctor")
    assert code == 0 and "plan:    unavailable (RuntimeError: no devices here)" in out


BLOCKER = textwrap.dedent("""
    import sys, time
    BLOCKED = ("tensorflow", "keras", "jax", "jaxlib", "torch")

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"generator imported {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    start = time.perf_counter()
    from appgen.cli import main
    try:
        main(sys.argv[1:], prog_name="appgen")
    except SystemExit as exit:
        code = exit.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(f"elapsed={time.perf_counter() - start:.3f} heavy={heavy}", file=sys.stderr)
    sys.exit(code)
""")


def test_new_imports_no_backend(templates_dir: Path, tmp_path: Path) -> None:
    """`appgen new` never loads TensorFlow, JAX or Keras (its speed is measured by
    scripts/bench_new.py, not by a wall-clock assertion that a loaded CI machine breaks)."""
    env = {**os.environ, "APPGEN_TEMPLATES_DIR": str(templates_dir)}
    completed = subprocess.run(
        [sys.executable, "-c", BLOCKER, "new", "proj", "-t", "demo", "--set", "train.epochs=1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "heavy=[]" in completed.stderr
    assert (tmp_path / "proj" / "proj" / "util.py").is_file()


def test_list_stdout_is_one_line_per_template() -> None:
    """Scripts (contract-check.sh among them) read template names from stdout."""
    import subprocess
    import sys

    from appgen.catalog import list_templates

    result = subprocess.run([sys.executable, "-m", "appgen", "list"], capture_output=True,
                            text=True, check=True)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == [t.name for t in list_templates()]
    assert "user templates:" in result.stderr
