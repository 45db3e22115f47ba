"""Lint and type-check what appgen generates: every built-in template and task, rendered.

    python3 scripts/check_generated.py [--only vision,nlp] [--skip-mypy]

Each (template, task) is rendered with ``--no-sample-data`` into a temporary folder;
``ruff check`` runs over its package and tests (including the tests rendered from
``.jinja`` / ``.inc`` files, which the repository's own ruff run cannot read), and
``mypy`` over the package and tests (ignore_missing_imports; the cache in
.mypy_cache/generated lets every render after the first reuse the analysis of Keras
and NumPy). Exit 1 when any
check fails; scripts/test.sh (CI) runs this.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from appgen.catalog import list_templates
from appgen.render import RenderRequest, render_project

ROOT = Path(__file__).resolve().parents[1]
MYPY_CONFIG = """\
[mypy]
python_version = 3.11
ignore_missing_imports = True
check_untyped_defs = True
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated template names")
    parser.add_argument("--skip-mypy", action="store_true")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="appgen-check-") as scratch:
        root = Path(scratch)
        config = root / "mypy.ini"
        config.write_text(MYPY_CONFIG)
        for template in list_templates():
            if template.source != "builtin" or (only and template.name not in only):
                continue
            for task in template.effective_tasks():
                name = f"chk_{template.name}_{task}"
                project = root / name
                render_project(RenderRequest(project_name=name, template=template, task=task,
                                             out_dir=project, overrides=[],
                                             sample_data=False))
                targets = [name, "tests"]
                checks = [[sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--config", str(ROOT / "pyproject.toml"), *targets]]
                if not args.skip_mypy:
                    checks.append([sys.executable, "-m", "mypy", "--config-file", str(config),
                                   "--cache-dir", str(ROOT / ".mypy_cache" / "generated"),
                                   *targets])
                for check in checks:
                    result = subprocess.run(check, cwd=project, capture_output=True, text=True,
                                            check=False)
                    tool = check[2]
                    print(f"{template.name}/{task}: {tool}: "
                          + ("ok" if result.returncode == 0 else "FAILED"), flush=True)
                    if result.returncode != 0:
                        failures.append(f"{template.name}/{task} {tool}")
                        print(result.stdout + result.stderr, flush=True)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
