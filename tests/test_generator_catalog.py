"""Template discovery: names, paths, the user directory, extends chains."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_template

from appgen import catalog
from appgen.errors import ManifestError, TemplateNotFoundError


def test_list_shows_public_templates_only(templates_dir: Path) -> None:
    names = [t.name for t in catalog.list_templates()]
    assert "demo" in names and "_testbase" not in names
    assert "_testbase" in [t.name for t in catalog.list_templates(include_private=True)]


def test_find_by_name_and_chain(templates_dir: Path) -> None:
    demo = catalog.find_template("demo")
    assert demo.source == "user" and demo.tasks == ["classify", "segment"]
    assert demo.task_settings == {"segment": {"train.batch_size": 8}}
    assert [t.name for t in demo.chain()] == ["_testbase", "demo"]
    assert demo.effective_task_settings("segment") == {"train.batch_size": 8}
    assert demo.effective_task_settings("classify") == {}


def test_find_by_path(templates_dir: Path, tmp_path: Path) -> None:
    make_template(tmp_path / "elsewhere", "my-template", 'extends = "demo"\n', {})
    template = catalog.find_template("./elsewhere/my-template")
    assert template.name == "my-template" and template.source == "path"
    assert template.effective_tasks() == ["classify", "segment"]  # inherited
    with pytest.raises(TemplateNotFoundError, match="does not exist"):
        catalog.find_template("./nowhere")


def test_private_and_unknown_templates_are_refused(templates_dir: Path) -> None:
    with pytest.raises(TemplateNotFoundError, match="base for other templates"):
        catalog.find_template("_testbase")
    assert catalog.find_template("_testbase", allow_private=True).name == "_testbase"
    with pytest.raises(TemplateNotFoundError, match="unknown template 'nope'.*demo"):
        catalog.find_template("nope")


def test_extends_cycle_and_missing_parent(templates_dir: Path) -> None:
    make_template(templates_dir, "ping", 'extends = "pong"\n', {})
    make_template(templates_dir, "pong", 'extends = "ping"\n', {})
    with pytest.raises(ManifestError, match="cycle"):
        catalog.find_template("ping").chain()
    make_template(templates_dir, "orphan", 'extends = "ghost"\n', {})
    with pytest.raises(ManifestError, match="'ghost'"):
        catalog.find_template("orphan").chain()


@pytest.mark.parametrize(("manifest", "message"), [
    ("descripton = 'typo'\n", "unknown manifest key 'descripton'"),
    ("tasks = 'one'\n", "tasks must be a list"),
    ("tasks = ['a']\n[task_settings.b]\nx = 1\n", "names task 'b'"),
    ("tasks = [\n", "not valid TOML"),
])
def test_bad_manifests(templates_dir: Path, manifest: str, message: str) -> None:
    make_template(templates_dir, "bad", manifest, {})
    with pytest.raises(ManifestError, match=message):
        catalog.find_template("bad")
    assert "bad" not in [t.name for t in catalog.list_templates()]  # list skips it


def test_user_dir_defaults_to_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("APPGEN_TEMPLATES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert catalog.user_templates_dir() == tmp_path / ".config" / "appgen" / "templates"


def test_builtin_dir_in_a_checkout_is_the_repository_templates_folder() -> None:
    builtin = catalog.builtin_templates_dir()
    assert builtin.name == "templates" and builtin.is_dir()
