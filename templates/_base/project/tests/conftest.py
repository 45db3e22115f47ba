"""Shared fixtures: the project's config, with the backend chosen before Keras loads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "KERAS_BACKEND" not in os.environ:
    import tomllib

    with (PROJECT / "config.toml").open("rb") as handle:
        os.environ["KERAS_BACKEND"] = tomllib.load(handle)["runtime"]["backend"]


@pytest.fixture()
def project_dir() -> Path:
    return PROJECT


@pytest.fixture()
def config_path(project_dir: Path) -> Path:
    return project_dir / "config.toml"
