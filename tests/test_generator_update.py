"""``appgen update`` and ``appgen diff`` on small templates built in tmp_path.

Each test generates a project from the ``demo`` fixture template, edits it as a
user would, changes the template (as a new appgen release would) or an answer,
and checks what ``update`` wrote, listed and left alone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner
from conftest import write

from appgen import catalog, pristine
from appgen.cli import main
from appgen.errors import PristineStoreError
from appgen.merge import merge3
from appgen.render import RenderRequest, render_project
from appgen.update import UpdateOptions, diff_project, update_project

HAS_GIT = shutil.which("git") is not None
needs_git = pytest.mark.skipif(not HAS_GIT, reason="git is not installed")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def generate(tmp_path: Path, *overrides: str, template: str = "demo") -> Path:
    target = tmp_path / "proj"
    render_project(RenderRequest(project_name="proj", template=catalog.find_template(template),
                                 task=None, out_dir=target, overrides=list(overrides)))
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".git" not in p.parts}


def git(project: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=project, capture_output=True, text=True, check=True)
    return completed.stdout


def commit_all(project: Path) -> None:
    if not (project / ".git").exists():
        git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "snapshot", "--allow-empty")


def test_update_keeps_edits_applies_new_answer_and_template_changes(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path, "train.epochs=3")
    util = project / "proj" / "util.py"
    util.write_text("ORIGIN = 'demo'\n\n\ndef mine() -> int:\n    return 1\n")  # user edit
    # A new release of the template: util.py gains a header line, the README changes,
    # a file is added, .gitignore is dropped.
    write(templates_dir / "demo" / "project" / "__package__" / "util.py",
          '"""Helpers."""\nORIGIN = \'demo\'\n')
    readme = templates_dir / "_testbase" / "project" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nSee config.toml.\n")
    write(templates_dir / "demo" / "project" / "NOTES.md", "new in v2\n")
    (templates_dir / "_testbase" / "project" / ".gitignore").unlink()

    code, out, err = run("update", str(project), "--set", "train.epochs=7")
    assert code == 0, err
    assert util.read_text() == '"""Helpers."""\nORIGIN = \'demo\'\n\n\ndef mine() -> int:\n' \
                               "    return 1\n"  # edit survived, template change merged in
    config = tomllib.loads((project / "config.toml").read_text())
    assert config["train"]["epochs"] == 7
    assert (project / "README.md").read_text().endswith("epochs 7\n\nSee config.toml.\n")
    assert (project / "NOTES.md").read_text() == "new in v2\n"
    assert not (project / ".gitignore").exists()
    for line in ("add       NOTES.md", "update    README.md", "update    config.toml",
                 "merge     proj/util.py", "remove    .gitignore"):
        assert line in out, out

    record = tomllib.loads((project / ".appgen.toml").read_text())
    assert record["overrides"] == ["train.epochs=7"]
    assert "NOTES.md" in record["files"] and ".gitignore" not in record["files"]
    # The new pristine copy is the new render: a second update has nothing to do.
    code, out, _ = run("update", str(project))
    assert code == 0 and out == "proj: up to date with template 'demo'\n"
    assert "def mine" in diff_project(project)


def test_new_answer_takes_effect_next_to_a_user_edited_line(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path)
    config_path = project / "config.toml"
    config_path.write_text(config_path.read_text().replace(
        "epochs = 10            # passes over the data", "epochs = 12  # mine"))
    code, out, err = run("update", str(project), "--set", "train.learning_rate=0.01")
    assert code == 0, err
    text = config_path.read_text()
    assert "epochs = 12  # mine" in text and "learning_rate = 0.01  # step size" in text
    assert "<<<<<<<" not in text and "merge     config.toml" in out


@pytest.mark.parametrize("use_git", [pytest.param(True, marks=needs_git), False])
def test_conflict_is_marked_and_listed(
    templates_dir: Path, tmp_path: Path, use_git: bool
) -> None:
    project = generate(tmp_path)
    util = project / "proj" / "util.py"
    util.write_text("ORIGIN = 'mine'\n")
    write(templates_dir / "demo" / "project" / "__package__" / "util.py", "ORIGIN = 'demo v2'\n")

    plan = update_project(UpdateOptions(project=project, use_git=use_git))
    assert [change.path for change in plan.conflicts] == ["proj/util.py"]
    assert util.read_text() == (
        "<<<<<<< yours\nORIGIN = 'mine'\n=======\nORIGIN = 'demo v2'\n>>>>>>> template\n"
    )


def test_cli_lists_conflicts_and_exits_1(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    (project / "proj" / "util.py").write_text("ORIGIN = 'mine'\n")
    write(templates_dir / "demo" / "project" / "__package__" / "util.py", "ORIGIN = 'v2'\n")
    code, out, err = run("update", str(project))
    assert code == 1
    assert "conflict  proj/util.py" in out
    assert "1 file(s) have conflicts to resolve" in err and "proj/util.py" in err
    # Unresolved markers block the next update until the user resolves them.
    code, _, err = run("update", str(project))
    assert code == 2 and "still holds conflict markers" in err
    (project / "proj" / "util.py").write_text("ORIGIN = 'mine'\n")
    assert run("update", str(project))[0] == 0


@needs_git
def test_uncommitted_changes_are_refused_unless_force(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    commit_all(project)
    (project / "proj" / "util.py").write_text("ORIGIN = 'mine'\n")
    before = snapshot(project)
    code, _, err = run("update", str(project), "--set", "train.epochs=2")
    assert code == 2 and "uncommitted changes" in err and "--force" in err
    assert err.count("\n") == 1
    assert snapshot(project) == before

    code, _, err = run("update", str(project), "--set", "train.epochs=2", "--force")
    assert code == 0, err
    assert tomllib.loads((project / "config.toml").read_text())["train"]["epochs"] == 2
    assert (project / "proj" / "util.py").read_text() == "ORIGIN = 'mine'\n"

    commit_all(project)
    assert run("update", str(project), "--set", "train.epochs=3")[0] == 0  # clean tree


def test_dry_run_lists_changes_and_writes_nothing(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    (project / "proj" / "util.py").write_text("ORIGIN = 'mine'\n")
    write(templates_dir / "demo" / "project" / "__package__" / "util.py", "ORIGIN = 'v2'\n")
    before = snapshot(project)
    code, out, _ = run("update", str(project), "--dry-run", "--set", "train.epochs=2")
    assert code == 0
    assert "would change 3 file(s)" in out and "update    config.toml" in out
    assert "1 file(s) would have conflicts: proj/util.py" in out
    assert snapshot(project) == before


def test_diff_shows_edits_against_the_pristine_render(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    assert run("diff", str(project)) == (0, "", "")
    (project / "proj" / "util.py").write_text("ORIGIN = 'mine'\n")
    (project / ".gitignore").unlink()
    code, out, _ = run("diff", str(project))
    assert code == 0
    assert "--- a/proj/util.py\n+++ b/proj/util.py\n" in out
    assert "-ORIGIN = 'demo'\n+ORIGIN = 'mine'\n" in out
    assert "--- a/.gitignore\n+++ /dev/null\n" in out and "-runs/\n" in out


def test_removed_edited_file_is_kept_and_deleted_file_stays_deleted(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path)
    (project / ".gitignore").write_text("runs/\nmine/\n")  # edited, then dropped upstream
    (templates_dir / "_testbase" / "project" / ".gitignore").unlink()
    (project / "launch" / "run.sh").unlink()  # deleted by the user, changed upstream
    write(templates_dir / "demo" / "project" / "launch" / "run.sh", "#!/bin/sh\necho v2\n")
    code, out, err = run("update", str(project))
    assert code == 0, err
    assert (project / ".gitignore").read_text() == "runs/\nmine/\n"
    assert "keep      .gitignore" in out and "skip      launch/run.sh" in out
    assert not (project / "launch" / "run.sh").exists()
    assert ".gitignore" not in tomllib.loads((project / ".appgen.toml").read_text())["files"]


def test_bad_answer_exits_2_and_writes_nothing(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    before = snapshot(project)
    code, _, err = run("update", str(project), "--set", "train.epoch=2")
    assert code == 2 and err.startswith("error: --set: unknown config key 'train.epoch'")
    assert snapshot(project) == before
    code, _, err = run("update", str(tmp_path))
    assert code == 2 and "has no .appgen.toml" in err


def test_sample_data_is_never_touched(
    templates_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appgen.datasets

    def fake_writer(out: Path, *, size: int | None, seed: int) -> str:
        write(out / "train" / "a" / "0.png", "png")
        return "1 image"

    monkeypatch.setattr(appgen.datasets, "get_writer", lambda name: fake_writer)
    write(templates_dir / "withdata" / "template.toml", 'extends = "demo"\nsample_data = "x"\n')
    (templates_dir / "withdata" / "project").mkdir()
    project = generate(tmp_path, template="withdata")
    (project / "data" / "train" / "a" / "0.png").write_text("my own image")
    assert run("update", str(project), "--set", "train.epochs=1")[0] == 0
    assert (project / "data" / "train" / "a" / "0.png").read_text() == "my own image"
    with pytest.raises(KeyError):
        tomllib.loads((project / ".appgen.toml").read_text())["files"]["data/train/a/0.png"]


def test_pristine_store_is_reproducible_and_checked(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    first = (project / pristine.STORE_FILE).read_bytes()
    assert run("update", str(project), "--force")[0] == 0
    assert (project / pristine.STORE_FILE).read_bytes() == first  # same files, same bytes

    record = tomllib.loads((project / ".appgen.toml").read_text())
    record["files"]["proj/util.py"] = "0" * 64
    with pytest.raises(PristineStoreError, match="proj/util.py does not match"):
        pristine.read_store(project, record["files"])
    (project / pristine.STORE_FILE).write_bytes(b"not a tarball")
    code, _, err = run("diff", str(project))
    assert code == 2 and "cannot be read" in err


def test_unsafe_paths_in_the_record_are_refused(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    victim = write(tmp_path / "victim.txt", "keep me")
    record = (project / ".appgen.toml").read_text()
    (project / ".appgen.toml").write_text(record + '"../victim.txt" = "' + "0" * 64 + '"\n')
    code, _, err = run("update", str(project), "--force")
    assert code == 2 and "outside the project" in err
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("use_git", [pytest.param(True, marks=needs_git), False])
@pytest.mark.parametrize(("ours", "base", "theirs", "merged", "conflicts"), [
    ("a\nB\nc\n", "a\nb\nc\n", "a\nb\nc\nd\n", "a\nB\nc\nd\n", 0),
    ("A\nb\nc\n", "a\nb\nc\n", "a\nb\nC\n", "A\nb\nC\n", 0),
    ("x\n", "a\n", "a\n", "x\n", 0),
    ("same\n", "a\n", "same\n", "same\n", 0),
    ("x", "a", "y", "<<<<<<< yours\nx\n=======\ny\n>>>>>>> template\n", 1),
])
def test_merge3_git_and_pure_python_agree(
    ours: str, base: str, theirs: str, merged: str, conflicts: int, use_git: bool
) -> None:
    result = merge3(ours.encode(), base.encode(), theirs.encode(), use_git=use_git)
    assert result.conflicts == conflicts
    if conflicts and use_git:  # git marks a missing final newline its own way
        assert result.content.startswith(b"<<<<<<< yours\nx\n=======\ny")
    else:
        assert result.content.decode() == merged


def test_update_on_the_real_vision_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(tmp_path / "no-user-templates"))
    project = tmp_path / "cats"
    code, _, err = run("new", "cats", "-o", str(project), "-t", "vision", "--no-sample-data")
    assert code == 0, err
    model = project / "cats" / "model.py"
    model.write_text(model.read_text() + "\n\nMY_HEAD_UNITS = 128  # my edit\n")
    code, out, err = run("update", str(project), "--set", "train.epochs=2",
                         "--set", "model.width=16")
    assert code == 0, err
    assert model.read_text().endswith("MY_HEAD_UNITS = 128  # my edit\n")
    config = tomllib.loads((project / "config.toml").read_text())
    assert config["train"]["epochs"] == 2 and config["model"]["width"] == 16
    assert out.count("\n") == 2 and "update    config.toml" in out  # nothing else changed
    assert "+MY_HEAD_UNITS = 128  # my edit" in diff_project(project)
    assert not (project / "data").exists()


@pytest.mark.parametrize("name", ["vision", "nlp", "driving", "medical", "fraud"])
def test_every_builtin_template_round_trips(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (catalog.builtin_templates_dir() / name / "template.toml").is_file():
        pytest.skip(f"built-in template {name!r} is not in this checkout")
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(tmp_path / "no-user-templates"))
    project = tmp_path / "proj"
    code, _, err = run("new", "proj", "-o", str(project), "-t", name, "--no-sample-data")
    assert code == 0, err
    code, out, _ = run("update", str(project))
    assert code == 0 and out.endswith(f"up to date with template '{name}'\n")
    init = project / "proj" / "__init__.py"  # from _base: every template has it
    init.write_text(init.read_text() + "# My notes.\n")
    code, out, err = run("update", str(project), "--set", "train.epochs=1")
    assert code == 0, err
    assert init.read_text().endswith("\n# My notes.\n")
    assert tomllib.loads((project / "config.toml").read_text())["train"]["epochs"] == 1
    assert run("diff", str(project))[1].endswith("+# My notes.\n")
