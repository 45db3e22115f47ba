"""Answers from a cloned ``.appgen.toml`` and values rendered into YAML and shell.

``appgen update`` re-validates every recorded answer as ``appgen new`` does, and
launch files quote whatever config values they hold, so neither a hostile record
nor a hostile ``--set`` can inject keys into ``kubernetes.yaml`` or commands into a
shell script.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from appgen import catalog
from appgen.render import RenderRequest, render_project

from .cli_helpers import assert_one_line_error, run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- update answers


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("package", '"base$(id)"', "package 'base$(id)'"),
    ("project_name", '"\\nrm"', "control character"),  # package "rm" would pass on its own
    ("backend", '"numpy"', "unknown backend 'numpy'"),
    ("task", '"nonsense"', "no task 'nonsense'"),
])
def test_update_revalidates_every_recorded_answer(
    templates_dir: Path, tmp_path: Path, key: str, value: str, needle: str
) -> None:
    project = tmp_path / "base"
    render_project(RenderRequest(project_name="base", template=catalog.find_template("demo"),
                                 task=None, out_dir=project))
    record = project / ".appgen.toml"
    text, count = re.subn(rf"(?m)^{key} = .*$", lambda _: f"{key} = {value}",
                          record.read_text())
    assert count == 1
    if key == "project_name":
        text = re.sub(r'(?m)^package = .*$', 'package = "rm"', text)
    record.write_text(text)
    before = snapshot(tmp_path)

    code, err = run("update", str(project))

    assert_one_line_error(code, err, needle)
    assert snapshot(tmp_path) == before  # no folder named after the package, no file changed


def test_new_refuses_a_project_name_with_a_newline(templates_dir: Path, tmp_path: Path) -> None:
    code, err = run("new", "\nrm", "-t", "demo", "-o", str(tmp_path / "out"))

    assert_one_line_error(code, err, "control character")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- YAML


HOSTILE_IMAGE = 'evil:1"\n          command: ["sh", "-c", "id"]\nkind: Secret\n# \''


def test_launch_image_cannot_inject_yaml_keys(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    render_project(RenderRequest(project_name="proj", template=catalog.find_template("vision"),
                                 task=None, out_dir=target, sample_data=False,
                                 overrides=[f"launch.image={HOSTILE_IMAGE}"]))

    documents = list(yaml.safe_load_all((target / "launch" / "kubernetes.yaml").read_text()))

    assert [doc["kind"] for doc in documents] == ["Service", "Job"]
    container = documents[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == HOSTILE_IMAGE
    assert container["command"] == ["python", "-m", "proj", "train", "--run-dir", "/runs/k8s"]
    assert sorted(container) == ["command", "env", "image", "name", "resources",
                                 "volumeMounts", "workingDir"]


# --------------------------------------------------------------------------- shell

HOSTILE_WORD = "a b; touch pwned\n$(touch pwned2) `touch pwned3` 'q' \"dq\" $HOME"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_shquote_keeps_a_value_one_shell_word(templates_dir: Path, tmp_path: Path) -> None:
    folder = templates_dir / "shelly"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    write_file(folder / "project" / "launch" / "go.sh.jinja",
               '#!/usr/bin/env bash\nset -- {{ config.name | shquote }}\n'
               'printf "%s\\n" "$#"\nprintf "%s" "$1"\n')

    code, err = run("new", "proj", "-t", "shelly", "--set", f"name={HOSTILE_WORD}")
    assert code == 0, err
    script = tmp_path / "proj" / "launch" / "go.sh"

    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    completed = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True,
                               text=True, env={**os.environ, "HOME": "/nowhere"})
    count, word = completed.stdout.split("\n", 1)
    assert (count, word) == ("1", HOSTILE_WORD)
    assert not list(tmp_path.glob("pwned*"))


def test_safe_token_refuses_what_quoting_cannot_make_safe(
    templates_dir: Path, tmp_path: Path
) -> None:
    folder = templates_dir / "sbatchy"
    write_file(folder / "template.toml", 'extends = "demo"\n')
    write_file(folder / "project" / "launch" / "job.sbatch.jinja",
               "#!/usr/bin/env bash\n#SBATCH --job-name={{ config.name | safe_token }}\n")

    code, err = run("new", "proj", "-t", "sbatchy", "--set", "name=x\nrm -rf ~")

    assert_one_line_error(code, err, "job.sbatch.jinja", "not a plain token")
    assert not (tmp_path / "proj").exists()
