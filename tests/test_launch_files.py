"""Every template renders launch files that are valid shell and valid Kubernetes YAML."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from project_runner import generate

from appgen.catalog import list_templates

TEMPLATES = [t.name for t in list_templates()]


@pytest.mark.parametrize("template", TEMPLATES)
def test_launch_files_are_valid(tmp_path: Path, template: str) -> None:
    project = generate(tmp_path, f"launch_{template}", template, "launch.nodes=3",
                       "launch.gpus_per_node=4", sample_data=False)
    sbatch = project / "launch" / "slurm.sbatch"
    check = subprocess.run(["bash", "-n", str(sbatch)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    text = sbatch.read_text()
    assert "#SBATCH --nodes=3" in text and "#SBATCH --gpus-per-node=4" in text
    assert f"python -m {project.name} train" in text
    # keras.distribution.initialize's variable, not a private one
    assert 'export KERAS_DISTRIBUTION_JOB_ADDRESSES="${coordinator_host}:12345"' in text
    assert "APPGEN_" not in text

    service, job = list(yaml.safe_load_all((project / "launch" / "kubernetes.yaml").read_text()))
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 3
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert sorted(env) == ["KERAS_BACKEND", "KERAS_DISTRIBUTION_JOB_ADDRESSES",
                           "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"]
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"]["value"] == "3"
    index_field = env["KERAS_DISTRIBUTION_PROCESS_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert "job-completion-index" in index_field
    address = env["KERAS_DISTRIBUTION_JOB_ADDRESSES"]["value"]
    assert address.startswith(f"{job['metadata']['name']}-0.") and address.endswith(":12345")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert (project / "launch" / "README.md").is_file()
