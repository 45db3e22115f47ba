"""``appgen presets TEMPLATE`` and the KaggleHub cache line of ``appgen doctor``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from appgen.cli import main


def test_presets_lists_names_sizes_and_inputs() -> None:
    result = CliRunner().invoke(main, ["presets", "vision"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    resnet = next(line for line in lines if line.startswith("resnet_50_imagenet "))
    assert "23.6 M params" in resnet and "~  94 MB" in resnet and "224x224" in resnet
    text = CliRunner().invoke(main, ["presets", "nlp"]).stdout
    assert "bert_tiny_en_uncased" in text and "WordPiece" in text
    gpt2 = next(line for line in text.splitlines() if line.startswith("gpt2_base_en "))
    assert "causal_lm" in gpt2 and "lora_rank" in gpt2
    bart = next(line for line in text.splitlines() if line.startswith("bart_base_en "))
    assert "translation" in bart and "139.4 M params" in bart and "lora_rank" in bart
    assert "resnet" not in text
    detectors = [line for line in lines if " detection " in line]
    assert [line.split()[0] for line in detectors] == ["resnet_18_imagenet", "resnet_50_imagenet"]
    assert "P3..P5 feed RetinaNet's FPN" in detectors[0]
    assert "use: --set model.preset=NAME (classification, detection)" in result.stderr


def test_presets_of_the_u_net_templates_are_encoders() -> None:
    for template in ("driving", "medical"):
        result = CliRunner().invoke(main, ["presets", template])
        assert result.exit_code == 0, result.output
        resnet = next(line for line in result.stdout.splitlines()
                      if line.startswith("resnet_18_imagenet "))
        assert "11.2 M params" in resnet and "multiple of 32" in resnet
        assert "use: --set model.encoder=NAME (segmentation)" in result.stderr
    driving = CliRunner().invoke(main, ["presets", "driving"])
    assert "or model.preset=NAME (detection)" in driving.stderr
    assert "grey repeated to RGB" in CliRunner().invoke(main, ["presets", "medical"]).stdout


def test_presets_of_a_template_without_any_and_an_unknown_one() -> None:
    result = CliRunner().invoke(main, ["presets", "fraud"])
    assert result.exit_code == 0 and "no keras-hub presets listed" in result.stdout
    result = CliRunner().invoke(main, ["presets", "nosuch"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_doctor_and_presets_name_the_kagglehub_cache(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "hub"))
    assert str(tmp_path / "hub") in CliRunner().invoke(main, ["presets", "vision"]).stderr
    monkeypatch.setattr("appgen.catalog.builtin_templates_dir", lambda: tmp_path)  # no plan
    out = CliRunner().invoke(main, ["doctor"]).stdout
    assert f"presets: {tmp_path / 'hub'} (KaggleHub cache" in out
    monkeypatch.delenv("KAGGLEHUB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert f"presets: {tmp_path}/.cache/kagglehub" in CliRunner().invoke(main, ["doctor"]).stdout


def test_presets_imports_no_framework() -> None:
    # a fresh interpreter: other tests in this process may have imported Keras
    script = ("import sys; from click.testing import CliRunner; from appgen.cli import main; "
              "assert CliRunner().invoke(main, ['presets', 'vision']).exit_code == 0; "
              "print(sorted({'keras', 'tensorflow', 'jax', 'keras_hub'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
