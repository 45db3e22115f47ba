"""Import one template's modules (its own files over the shared runtime) without generating.

``load("medical", "volumes")`` builds, once per template, a package folder in a temporary
directory holding ``templates/_base/project/__package__/*.py`` overlaid with
``templates/<template>/project/__package__/*.py`` (what a generated project gets), and
imports the module from it. ``package_dir`` gives that folder, for a subprocess.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import ModuleType

from runtime import load_from

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_BUILT: dict[str, Path] = {}


def package_name(template: str) -> str:
    return f"appgen_{template}_under_test"


def package_dir(template: str) -> Path:
    """The folder of the assembled package (its parent goes on sys.path)."""
    if template not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix=f"appgen-{template}-"))
        target = root / package_name(template)
        target.mkdir()
        for source in (TEMPLATES / "_base/project/__package__",
                       TEMPLATES / template / "project/__package__"):
            for path in source.glob("*.py"):
                shutil.copy(path, target / path.name)
        _BUILT[template] = target
    return _BUILT[template]


def load(template: str, module: str) -> ModuleType:
    """``module`` of ``template`` as the generated project would import it."""
    return load_from(package_name(template), package_dir(template), module)
