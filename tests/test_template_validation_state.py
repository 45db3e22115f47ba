"""``evaluate`` rebuilds the validation split with what the run recorded (data.load_validation).

Medical segmentation decides spacing and normalisation from the training volumes; the
validation volumes must be prepared with the recorded decisions, not new ones. (nlp's
recorded vocabulary is tested end to end in tests/test_template_nlp.py.)
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import template_modules
from project_runner import generate

pytestmark = pytest.mark.slow


def test_medical_validation_volumes_use_the_recorded_spacing_and_normalisation(
        tmp_path: Path) -> None:
    project = generate(tmp_path, "scans", "medical")
    data = template_modules.load("medical", "data")
    config_module = template_modules.load("medical", "config")
    config = config_module.load_config(project / "config.toml", [])
    config["data"]["dir"] = str(project / "data")
    splits = data.load_splits(config, batch_size=4)

    # Today the same folder would be prepared differently (coarser spacing, other
    # normalisation): what evaluate scores must still be what training validated on.
    changed = copy.deepcopy(config)
    changed["data"]["max_size"] = 32
    changed["data"]["normalize"] = "zscore" if splits.meta["normalize"] != "zscore" else "ct_window"
    fresh = data.load_splits(changed, batch_size=4).val
    assert fresh.inputs.shape != splits.val.inputs.shape or not np.array_equal(
        fresh.inputs, splits.val.inputs)  # the old evaluate path would score these
    again = data.load_validation(changed, splits.meta, batch_size=4)
    assert np.array_equal(again.inputs, splits.val.inputs)
    assert np.array_equal(again.targets, splits.val.targets)
