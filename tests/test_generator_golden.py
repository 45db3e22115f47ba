"""Golden-file tests: render a fixture template and compare every byte with tests/golden/.

The fixture templates live in ``tests/golden/templates/`` (``golden`` extends
``_goldbase``, overrides one file, adds one, sets option defaults/choices and a
task setting); the expected projects in ``tests/golden/expected/<case>/``.

After an intended change to rendering, regenerate the expected files and review
the diff before committing:

    APPGEN_REGEN_GOLDEN=1 python -m pytest -q tests/test_generator_golden.py
    git diff tests/golden/
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from appgen import catalog, pristine
from appgen.errors import InvalidValueError
from appgen.render import RenderRequest, render_project

GOLDEN = Path(__file__).parent / "golden"
TEMPLATES = GOLDEN / "templates"
REGENERATE = os.environ.get("APPGEN_REGEN_GOLDEN") == "1"

CASES = {
    "defaults": {"task": None, "backend": "tensorflow", "overrides": []},
    "score-jax": {"task": "score", "backend": "jax",
                  "overrides": ["model.units=64", "model.head=dense"]},
}


@pytest.fixture(autouse=True)
def golden_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(TEMPLATES))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def rendered_files(project: Path) -> dict[str, bytes]:
    """Every file of the project, the record's machine-specific template path normalised."""
    files = {p.relative_to(project).as_posix(): p.read_bytes()
             for p in sorted(project.rglob("*")) if p.is_file()}
    del files[pristine.STORE_FILE]  # gzip bytes may differ between zlib versions
    record = files[".appgen.toml"].replace(str(TEMPLATES).encode(), b"<golden templates>")
    files[".appgen.toml"] = re.sub(rb'appgen_version = "[^"]*"', b'appgen_version = "<any>"',
                                   record)
    return files


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden_files(case: str, tmp_path: Path) -> None:
    answers = CASES[case]
    project = tmp_path / "golden-proj"
    render_project(RenderRequest(
        project_name="golden-proj", template=catalog.find_template("golden"),
        task=answers["task"], out_dir=project, backend=answers["backend"],
        overrides=list(answers["overrides"]),
    ))
    actual = rendered_files(project)
    expected_dir = GOLDEN / "expected" / case
    if REGENERATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for rel, content in actual.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_bytes(content)
    expected = {p.relative_to(expected_dir).as_posix(): p.read_bytes()
                for p in sorted(expected_dir.rglob("*")) if p.is_file()}
    assert sorted(actual) == sorted(expected), "file set differs (see docstring to regenerate)"
    for rel, content in expected.items():
        assert actual[rel].decode() == content.decode(), f"{rel} differs from the golden file"

    with tarfile.open(project / pristine.STORE_FILE) as archive:
        members = {m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
                   for m in archive.getmembers()}
    assert members == {rel: content for rel, content in actual.items()
                       if rel != ".appgen.toml"}


def test_golden_options_are_enforced(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match=r"--set: model\.head must be one of"):
        render_project(RenderRequest(
            project_name="p", template=catalog.find_template("golden"), task=None,
            out_dir=tmp_path / "p", overrides=["model.head=conv"]))
    with pytest.raises(InvalidValueError, match=r"train\.epochs must be at most 100; got 500"):
        render_project(RenderRequest(
            project_name="p", template=catalog.find_template("golden"), task=None,
            out_dir=tmp_path / "p", overrides=["train.epochs=500"]))
    assert not (tmp_path / "p").exists()
