"""User templates: ``-t ./path``, manifest options, ``extends`` a built-in, ``template new``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner
from conftest import make_template
from project_runner import run_project

from appgen import catalog
from appgen.cli import main
from appgen.errors import InvalidValueError, ManifestError, UnknownKeyError
from appgen.render import RenderRequest, render_project

CUSTOM_MODEL = '''\
"""Vision model with a custom head: a small conv stem and a two-layer MLP classifier."""

from __future__ import annotations

from typing import Any

import keras

from .config import Config, get


def build_model(config: Config, meta: dict[str, Any]) -> keras.Model:
    """uint8 images in, float32 class probabilities out."""
    inputs = keras.Input(tuple(meta["image_shape"]), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    x = keras.layers.Conv2D(int(get(config, "model.width")), 3, activation="relu",
                            name="stem")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(32, activation="relu", name="custom_head_hidden")(x)
    x = keras.layers.Dense(len(meta["class_names"]), name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="custom_head_classifier")


def compile_args(config: Config, meta: dict[str, Any]) -> dict[str, Any]:
    """Labels arrive one-hot, as in the vision template."""
    return {"loss": keras.losses.CategoricalCrossentropy(),
            "metrics": [keras.metrics.CategoricalAccuracy(name="accuracy")]}
'''

CUSTOM_MANIFEST = '''\
name = "my-vision"
description = "Vision with a custom MLP head"
extends = "vision"

[options."model.width"]
default = 8
min = 4
max = 64
help = "stem filters"
'''


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user templates directory; cwd is tmp_path (built-ins stay visible)."""
    folder = tmp_path / "user-templates"
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture
def my_vision(tmp_path: Path) -> Path:
    """A template folder next to the project (used as ``-t ./my-vision``)."""
    return make_template(tmp_path, "my-vision", CUSTOM_MANIFEST,
                         {"__package__/model.py": CUSTOM_MODEL})


def test_path_template_extending_vision_overrides_one_file(
    user_dir: Path, my_vision: Path, tmp_path: Path
) -> None:
    code, out, err = run("new", "shapes", "-t", "./my-vision", "--no-sample-data")
    assert code == 0, err
    project = tmp_path / "shapes"
    assert (project / "shapes" / "model.py").read_text() == CUSTOM_MODEL
    vision = catalog.builtin_templates_dir() / "vision" / "project" / "__package__"
    assert (project / "shapes" / "data.py").read_bytes() == (vision / "data.py").read_bytes()
    assert (project / "shapes" / "strategy.py").is_file()  # from _base, two levels up
    config = tomllib.loads((project / "config.toml").read_text())
    assert config["model"]["width"] == 8  # the manifest's new default
    record = tomllib.loads((project / ".appgen.toml").read_text())
    assert record["template"] == "my-vision" and record["template_origin"] == "path"

    code, out, _ = run("info", "./my-vision")
    assert code == 0 and "extends:     my-vision <- vision <- _base" in out
    assert "model.width" in out and "[min 4; max 64; stem filters]" in out


def test_options_validate_every_value(user_dir: Path, my_vision: Path, tmp_path: Path) -> None:
    template = catalog.find_template("./my-vision")
    with pytest.raises(InvalidValueError, match=r"--set: model\.width must be at most 64; got 99"):
        render_project(RenderRequest("p", template, None, tmp_path / "p",
                                     overrides=["model.width=99"], sample_data=False))
    code, _, err = run("new", "p", "-t", "./my-vision", "--set", "model.width=2")
    assert code == 2 and err == "error: --set: model.width must be at least 4; got 2\n"
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("options", "error", "message"), [
    ('[options."model.nope"]\nmin = 1\n', ManifestError, r"options\.model\.nope is not a key"),
    ('[options."model.width"]\ndefault = "wide"\n', InvalidValueError, "must be an integer"),
    ('[options."model.width"]\nchoices = [16, 64]\n', InvalidValueError,
     r"default of model\.width in .*must be one of 16, 64; got 32"),
    ('[options."model.nope"]\ndefault = 1\n', UnknownKeyError,
     r"options: unknown config key 'model\.nope'"),
    ('[options.model]\nmin = 1\n', ManifestError, "options.model is not a key"),
])
def test_bad_options_are_reported_at_render(
    user_dir: Path, tmp_path: Path, options: str, error: type[Exception], message: str
) -> None:
    make_template(tmp_path, "odd", f'extends = "vision"\n{options}', {})
    template = catalog.find_template("./odd")
    with pytest.raises(error, match=message):
        render_project(RenderRequest("p", template, None, tmp_path / "p", sample_data=False))


@pytest.mark.parametrize(("options", "message"), [
    ('[options."a.b"]\nmaximum = 1\n', "unknown field 'maximum'"),
    ('[options."a.b"]\nchoices = []\n', "choices must be a non-empty list"),
    ('[options."a.b"]\nmin = "1"\n', "min must be a number"),
    ('[options]\n"a.b" = 3\n', "must be a table"),
])
def test_bad_option_manifests(user_dir: Path, tmp_path: Path, options: str, message: str) -> None:
    make_template(tmp_path, "odd", f'extends = "vision"\n{options}', {})
    with pytest.raises(ManifestError, match=message):
        catalog.find_template("./odd")


def test_template_new_from_vision_renders_like_vision(user_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("template", "new", "mytpl", "--from", "vision")
    assert code == 0, err
    folder = user_dir / "mytpl"
    assert "appgen new my_project -t mytpl" in out
    manifest = tomllib.loads((folder / "template.toml").read_text())
    assert manifest["name"] == "mytpl" and manifest["extends"] == "_base"
    assert manifest["description"].endswith("(from vision)")
    assert not list(folder.rglob("__pycache__"))

    code, out, _ = run("list")
    line = next(line for line in out.splitlines() if line.startswith("mytpl"))
    assert "(user)" in line and "classification" in line

    assert run("new", "zq_mine", "-t", "mytpl", "--no-sample-data")[0] == 0
    assert run("new", "zq_ref", "-t", "vision", "--no-sample-data")[0] == 0
    mine, ref = tmp_path / "zq_mine", tmp_path / "zq_ref"
    for path in sorted(ref.rglob("*")):
        rel = path.relative_to(ref).as_posix().replace("zq_ref", "zq_mine")
        if path.is_file() and not rel.startswith(".appgen"):
            theirs = path.read_text().replace("zq_ref", "zq_mine").replace("zq-ref", "zq-mine")
            ours = (mine / rel).read_text().replace("mytpl project", "vision project")
            assert ours == theirs, rel
    # The generated package imports (its config module needs no Keras; the slow test below
    # runs the project's own suite, which trains).
    completed = subprocess.run([sys.executable, "-c", "import zq_mine.config, zq_mine.errors"],
                               cwd=mine, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_template_new_extends_and_output_folder(user_dir: Path, tmp_path: Path) -> None:
    code, out, err = run("template", "new", "thin", "--extends", "vision", "-o", "tpl/thin")
    assert code == 0, err
    folder = tmp_path / "tpl" / "thin"
    assert "appgen new my_project -t ./tpl/thin" in out
    assert sorted(p.name for p in folder.iterdir()) == ["project", "template.toml"]
    assert not any((folder / "project").iterdir())
    template = catalog.find_template("./tpl/thin")
    assert [t.name for t in template.chain()] == ["_base", "vision", "thin"]
    assert run("new", "thinproj", "-t", "./tpl/thin", "--no-sample-data")[0] == 0
    assert (tmp_path / "thinproj" / "thinproj" / "model.py").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["vision", "--from", "vision"], "'vision' is a built-in template"),
    (["9lives", "--from", "vision"], "invalid template name '9lives'"),
    (["x", "--from", "vision", "--extends", "vision"], "exactly one of --from"),
    (["x", "--from", "nope"], "unknown template 'nope'"),
])
def test_template_new_refusals(user_dir: Path, args: list[str], message: str) -> None:
    code, _, err = run("template", "new", *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (user_dir / "x").exists()


def test_template_new_never_overwrites(user_dir: Path) -> None:
    assert run("template", "new", "mytpl", "--extends", "vision")[0] == 0
    code, _, err = run("template", "new", "mytpl", "--from", "vision")
    assert code == 2 and "already exists" in err
    assert not (user_dir / "mytpl" / "project" / "config.toml.jinja").exists()


@pytest.mark.slow
def test_template_extending_vision_trains_for_a_step(
    user_dir: Path, my_vision: Path, tmp_path: Path
) -> None:
    assert run("new", "shapes", "-t", "./my-vision")[0] == 0
    project = tmp_path / "shapes"
    run_dir = project / "runs" / "one"
    result = run_project(project, "train", "--run-dir", str(run_dir), "--set", "train.epochs=1",
                         "--set", "data.max_images=10", "--set", "train.batch_size=16")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1
    with zipfile.ZipFile(run_dir / "checkpoints" / "last.keras") as saved:
        model_config = saved.read("config.json").decode()
    assert "custom_head_hidden" in model_config and "custom_head_classifier" in model_config


@pytest.mark.slow
def test_copied_template_passes_its_generated_projects_tests(
    user_dir: Path, tmp_path: Path
) -> None:
    assert run("template", "new", "mytpl", "--from", "vision")[0] == 0
    assert run("new", "mine", "-t", "mytpl", "--no-sample-data")[0] == 0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests"]
    completed = subprocess.run(command, cwd=tmp_path / "mine", env=env, capture_output=True,
                               text=True, timeout=900)
    assert completed.returncode == 0, textwrap.shorten(completed.stdout[-3000:], 3000)
