"""Shared fixtures for the generator tests: small templates built in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BASE_CONFIG = '''\
# Project configuration: every knob lives here.
name = "{{ project_name }}"   # shown in logs

[train]
# Passes over the training data.
epochs = 10            # passes over the data
learning_rate = 0.001  # step size
batch_size = 32
tags = [
  "a",  # first tag
  "b",
]  # free-form labels

{% include "_testbase/runtime.toml.inc" %}
'''

RUNTIME_INC = '''\
[runtime]
backend = "{{ backend }}"   # keras backend
precision = "auto"          # auto or a dtype policy
seed = 1
'''


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_template(root: Path, name: str, manifest: str, files: dict[str, str]) -> Path:
    """Create template ``name`` under ``root`` with a manifest and project files."""
    folder = root / name
    write(folder / "template.toml", manifest)
    (folder / "project").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        write(folder / "project" / rel, text)
    return folder


@pytest.fixture
def templates_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user templates directory with a ``_testbase`` parent and a ``demo`` child."""
    root = tmp_path / "user-templates"
    make_template(root, "_testbase", 'description = "test base"\n', {
        "__package__/__init__.py": '"""Generated package."""\n',
        "__package__/util.py": "ORIGIN = 'base'\n",
        "config.toml.jinja": BASE_CONFIG,
        "runtime.toml.inc": RUNTIME_INC,
        "README.md.jinja": "# {{ project_name }}\n\n"
                           "package {{ package }}, task {{ task }}, "
                           "epochs {{ config.train.epochs }}\n",
        ".gitignore": "runs/\n",
    })
    make_template(root, "demo", '''\
description = "Demo template for tests"
extends = "_testbase"
tasks = ["classify", "segment"]
data_format = "train/<class>/*.png"
[task_settings.segment]
"train.batch_size" = 8
''', {
        "__package__/util.py": "ORIGIN = 'demo'\n",
        "launch/run.sh": "#!/bin/sh\necho run\n",
    })
    os.chmod(root / "demo" / "project" / "launch" / "run.sh", 0o755)
    monkeypatch.setenv("APPGEN_TEMPLATES_DIR", str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return root
