"""Shared fixtures for the hostile-input tests (tests/security/).

Runtime tests share one tiny trained vision run (``trained_vision_run``); a test that
changes a run works on its own copy (``run_copy``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from project_runner import generate, train_ok

TINY_VISION = ("--set", "train.epochs=1", "--set", "data.max_images=6",
               "--set", "train.batch_size=16", "--set", "data.image_size=32")


@pytest.fixture(scope="session")
def vision_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated vision project (sample digits data included)."""
    return generate(tmp_path_factory.mktemp("sec_vision"), "sec_vision", "vision")


@pytest.fixture(scope="session")
def trained_vision_run(vision_project: Path) -> Path:
    """One finished, tiny training run of ``vision_project``; do not modify it."""
    run = vision_project / "runs" / "shared"
    train_ok(vision_project, run, *TINY_VISION)
    return run


@pytest.fixture
def run_copy(trained_vision_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run, for tests that plant files in it."""
    return Path(shutil.copytree(trained_vision_run, tmp_path / "run", symlinks=True))
