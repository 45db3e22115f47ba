"""Every generated project's own test suite passes, for each template and task.

(nlp's translation and causal_lm suites run in test_template_nlp.py, which
reuses their trained projects.) A user's first `python -m pytest` in a fresh
project must be green, so CI runs exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from project_runner import generate

pytestmark = pytest.mark.slow

# detection: vision's suite stands for driving's (both render _base/detection_tests.py.inc)
CASES = [("vision", None), ("vision", "detection"), ("fraud", None), ("driving", None),
         ("driving", "segmentation"), ("nlp", "classification"), ("medical", "segmentation"),
         ("medical", "classification")]


@pytest.mark.parametrize(("template", "task"), CASES,
                         ids=[f"{t}-{task or 'default'}" for t, task in CASES])
def test_generated_project_tests_pass(tmp_path: Path, template: str, task: str | None) -> None:
    project = generate(tmp_path, f"own_{template}", template, task=task)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=project, env=env, capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
