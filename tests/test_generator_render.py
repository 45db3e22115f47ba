"""Rendering a template chain into a project: layout, config, safety, atomicity."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import tomllib
from conftest import make_template, write

from appgen import catalog
from appgen.errors import (
    InvalidProjectNameError,
    InvalidValueError,
    ManifestError,
    RenderError,
    TargetNotEmptyError,
    UnknownKeyError,
    UnsafePathError,
)
from appgen.render import RenderRequest, package_name, render_project, safe_relative_path


def request(target: Path, template: str = "demo", **changes: object) -> RenderRequest:
    fields: dict[str, object] = {
        "project_name": "my-proj", "template": catalog.find_template(template),
        "task": None, "out_dir": target,
    }
    fields.update(changes)
    return RenderRequest(**fields)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".appgen-"))


def test_renders_chain_with_child_overrides(templates_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "my-proj"
    result = render_project(request(target, backend="jax"))

    assert result.target == target and result.package == "my_proj" and result.task == "classify"
    assert (target / "my_proj" / "__init__.py").read_text() == '"""Generated package."""\n'
    assert (target / "my_proj" / "util.py").read_text() == "ORIGIN = 'demo'\n"  # child wins
    assert (target / ".gitignore").read_text() == "runs/\n"  # dotfiles are copied
    assert not (target / "runtime.toml.inc").exists()  # partials are include-only
    assert not (target / "config.toml.jinja").exists()
    assert (target / "README.md").read_text() == (
        "# my-proj\n\npackage my_proj, task classify, epochs 10\n"
    )
    assert os.stat(target / "launch" / "run.sh").st_mode & stat.S_IXUSR
    assert stat.S_IMODE(target.stat().st_mode) != 0o700  # not mkdtemp's private mode

    config = tomllib.loads((target / "config.toml").read_text())
    assert config["name"] == "my-proj"
    assert config["runtime"]["backend"] == "jax"  # from the {% include %} partial + --backend
    assert config["train"]["batch_size"] == 32
    assert sorted(result.files) == sorted(
        p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()
    )
    assert leftovers(target.parent) == []


def test_record_holds_answers_and_hashes_of_every_rendered_file(
    templates_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "proj"
    result = render_project(request(target, overrides=["train.epochs=3"], task="segment"))
    record = tomllib.loads((target / ".appgen.toml").read_text())

    assert record["template"] == "demo" and record["task"] == "segment"
    assert record["backend"] == "tensorflow" and record["overrides"] == ["train.epochs=3"]
    assert record["appgen_version"] == "0.1.0"
    assert Path(record["template_source"]) == templates_dir / "demo"
    assert set(record["files"]) == set(result.files) - {".appgen.toml", ".appgen/pristine.tar.gz"}
    for rel, digest in record["files"].items():
        assert hashlib.sha256((target / rel).read_bytes()).hexdigest() == digest


def test_task_settings_then_user_overrides_rewrite_config_in_place(
    templates_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "proj"
    render_project(request(target, task="segment",
                           overrides=["train.epochs=5", "train.learning_rate=1", "train.tags=[]"]))
    text = (target / "config.toml").read_text()
    assert "epochs = 5            # passes over the data" in text
    assert "batch_size = 8" in text  # task_settings.segment
    assert "# Passes over the training data." in text
    assert "# step size" in text and "# free-form labels" in text
    config = tomllib.loads(text)
    assert config["train"] == {"epochs": 5, "learning_rate": 1.0, "batch_size": 8, "tags": []}
    assert "epochs 5" in (target / "README.md").read_text()  # `config` reaches other files


def test_bad_overrides_name_the_key_and_leave_nothing(templates_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "proj"
    with pytest.raises(UnknownKeyError, match=r"'train\.epoch'.*train\.epochs"):
        render_project(request(target, overrides=["train.epoch=5"]))
    with pytest.raises(InvalidValueError, match=r"train\.epochs must be an integer.*got \"five\""):
        render_project(request(target, overrides=["train.epochs=five"]))
    with pytest.raises(InvalidValueError, match="--backend"):
        render_project(request(target, overrides=["runtime.backend=jax"]))
    assert not target.exists() and leftovers(tmp_path) == []


def test_unknown_task_and_backend(templates_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="no task 'detect'; choose from: classify, segment"):
        render_project(request(tmp_path / "p", task="detect"))
    with pytest.raises(InvalidValueError, match="backend"):
        render_project(request(tmp_path / "p", backend="mxnet"))


@pytest.mark.parametrize(("name", "reason"), [
    ("class", "Python keyword"),
    ("os", "standard-library"),
    ("json", "standard-library"),
    ("1model", "cannot start with a digit"),
    ("my proj", "ASCII letters"),
    ("a/b", "ASCII letters"),
    ("numpy", "shadow a package"),
    ("Keras", "shadow a package"),
    ("tests", "shadow a package"),
    ("data", "shadow a package"),
    ("", "empty"),
])
def test_invalid_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidProjectNameError, match=reason):
        package_name(name)


def test_valid_names_become_packages() -> None:
    assert package_name("My-Proj") == "my_proj"
    assert package_name("cats_vs_dogs2") == "cats_vs_dogs2"


def test_occupied_target_is_refused_before_rendering(templates_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "proj"
    write(target / "notes.txt", "mine")
    with pytest.raises(TargetNotEmptyError, match="--force"):
        render_project(request(target))
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []
    write(tmp_path / "afile", "x")
    with pytest.raises(TargetNotEmptyError, match="not a directory"):
        render_project(request(tmp_path / "afile"))


def test_empty_existing_target_is_filled(templates_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    render_project(request(target))
    assert (target / "my_proj" / "util.py").is_file()
    assert leftovers(tmp_path) == []


def test_force_overwrites_rendered_files_and_keeps_user_files(
    templates_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "proj"
    write(target / "notes.txt", "mine")
    write(target / "my_proj" / "extra.py", "x = 1\n")
    write(target / "README.md", "old readme")
    render_project(request(target, force=True))
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "my_proj" / "extra.py").read_text() == "x = 1\n"
    assert (target / "README.md").read_text().startswith("# my-proj")
    assert (target / "my_proj" / "util.py").is_file()
    assert leftovers(tmp_path) == []


def test_force_refuses_a_folder_where_a_file_goes_without_writing(
    templates_dir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "proj"
    (target / "README.md").mkdir(parents=True)
    with pytest.raises(TargetNotEmptyError, match="README.md is a folder"):
        render_project(request(target, force=True))
    assert [p.name for p in target.iterdir()] == ["README.md"]


def test_failure_mid_render_leaves_no_target_and_no_staging(
    templates_dir: Path, tmp_path: Path
) -> None:
    make_template(templates_dir, "broken", 'extends = "demo"\n', {
        "zzz_late.txt.jinja": "{{ not_defined }}\n",  # sorts last: earlier files are staged
    })
    target = tmp_path / "a" / "b" / "proj"  # parents do not exist yet either
    with pytest.raises(RenderError, match="zzz_late.txt.jinja.*not_defined"):
        render_project(request(target, template="broken"))
    assert not (tmp_path / "a").exists()
    assert leftovers(tmp_path) == []


def test_failing_sample_data_leaves_nothing(
    templates_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appgen.datasets

    make_template(templates_dir, "withdata", 'extends = "demo"\nsample_data = "fake"\n', {})
    calls: list[tuple[Path, object, int]] = []

    def fake_writer(out: Path, *, size: int | None, seed: int) -> str:
        calls.append((out, size, seed))
        write(out / "train" / "a" / "0.png", "png")
        return f"1 image in {out}"

    monkeypatch.setattr(appgen.datasets, "get_writer", lambda name: fake_writer)
    target = tmp_path / "proj"
    result = render_project(request(target, template="withdata"))
    assert result.data_summary == f"1 image in {target / 'data'}"
    assert calls[0][1:] == (None, 0)
    assert (target / "data" / "train" / "a" / "0.png").is_file()
    assert "data/train/a/0.png" not in tomllib.loads((target / ".appgen.toml").read_text())["files"]

    def broken_writer(out: Path, *, size: int | None, seed: int) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(appgen.datasets, "get_writer", lambda name: broken_writer)
    with pytest.raises(RenderError, match="disk full"):
        render_project(request(tmp_path / "proj2", template="withdata"))
    assert not (tmp_path / "proj2").exists() and leftovers(tmp_path) == []

    result = render_project(request(tmp_path / "proj3", template="withdata", sample_data=False))
    assert result.data_summary is None and not (tmp_path / "proj3" / "data").exists()


def test_each_task_gets_its_own_sample_data(
    templates_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appgen.datasets

    make_template(templates_dir, "tasks", 'extends = "demo"\ntasks = ["a", "b"]\n'
                  'sample_data = "for_a"\n[task_sample_data]\nb = "for_b"\n', {})
    asked: list[str] = []

    def get_writer(name: str):  # type: ignore[no-untyped-def]
        asked.append(name)
        return lambda out, *, size, seed: f"{name} in {out}"

    monkeypatch.setattr(appgen.datasets, "get_writer", get_writer)
    render_project(request(tmp_path / "pa", template="tasks", task="a"))
    render_project(request(tmp_path / "pb", template="tasks", task="b"))
    render_project(request(tmp_path / "pd", template="tasks"))
    assert asked == ["for_a", "for_b", "for_a"]


def test_task_sample_data_must_name_a_task(templates_dir: Path) -> None:
    make_template(templates_dir, "typo", 'extends = "demo"\ntasks = ["a"]\n'
                  '[task_sample_data]\nc = "x"\n', {})
    with pytest.raises(ManifestError, match="task_sample_data names task 'c'"):
        catalog.find_template("typo")


def test_unknown_sample_data_provider_is_a_render_error(
    templates_dir: Path, tmp_path: Path
) -> None:
    make_template(templates_dir, "nodata", 'extends = "demo"\nsample_data = "no-such"\n', {})
    with pytest.raises(RenderError, match="no-such.*--no-sample-data"):
        render_project(request(tmp_path / "proj", template="nodata"))
    assert not (tmp_path / "proj").exists()


def test_dry_run_writes_nothing(templates_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "new" / "proj"
    result = render_project(request(target, dry_run=True))
    assert result.dry_run and "my_proj/util.py" in result.files and ".appgen.toml" in result.files
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("expression", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ project_name.__class__.__base__ }}",
    "{{ '{0.__class__}'.format(1) }}",
])
def test_sandbox_refuses_escapes(templates_dir: Path, tmp_path: Path, expression: str) -> None:
    make_template(templates_dir, "evil", 'extends = "demo"\n', {"x.txt.jinja": expression})
    with pytest.raises(RenderError, match="x.txt.jinja: refused by the Jinja sandbox"):
        render_project(request(tmp_path / "proj", template="evil"))
    assert not (tmp_path / "proj").exists()


def test_traversal_in_file_name_is_refused(templates_dir: Path, tmp_path: Path) -> None:
    make_template(templates_dir, "escape", 'extends = "demo"\n', {"..\\escape.txt": "x"})
    with pytest.raises(UnsafePathError, match="outside the project"):
        render_project(request(tmp_path / "proj", template="escape"))
    assert not (tmp_path / "proj").exists() and not (tmp_path / "escape.txt").exists()


def test_symlink_out_of_template_is_refused(templates_dir: Path, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", "secret")
    folder = make_template(templates_dir, "linky", 'extends = "demo"\n', {})
    (folder / "project" / "leak.txt").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="outside the template"):
        render_project(request(tmp_path / "proj", template="linky"))


def test_include_cannot_climb_out(templates_dir: Path, tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", "secret")
    make_template(templates_dir, "climb", 'extends = "demo"\n', {
        "x.txt.jinja": '{% include "../../../secret.txt" %}',
    })
    with pytest.raises(RenderError, match="TemplateNotFound"):
        render_project(request(tmp_path / "proj", template="climb"))


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../x", "a\\..\\x", "C:/x", "C:x"])
def test_safe_relative_path_refuses(rel: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative_path(rel)


def test_child_include_addresses_parent_by_name(templates_dir: Path, tmp_path: Path) -> None:
    make_template(templates_dir, "wrap", 'extends = "demo"\n', {
        "README.md.jinja": "wrapped: {% include '_testbase/README.md.jinja' %}",
    })
    render_project(request(tmp_path / "proj", template="wrap"))
    assert (tmp_path / "proj" / "README.md").read_text().startswith("wrapped: # my-proj")
