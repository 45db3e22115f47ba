"""Import the shared runtime (templates/_base/project/__package__) as a package.

The runtime uses relative imports only, so it can be loaded under any name
straight from the template folder and tested without generating a project.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "templates/_base/project/__package__"
PACKAGE = "appgen_runtime_under_test"


def load(module: str) -> ModuleType:
    """Return ``PACKAGE.module`` loaded from the template's source files."""
    return load_from(PACKAGE, RUNTIME_DIR, module)


def load_from(package: str, folder: Path, module: str) -> ModuleType:
    """``package.module``, with ``folder`` imported once as the package ``package``."""
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            package, folder / "__init__.py", submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[package] = loaded
        spec.loader.exec_module(loaded)
    return importlib.import_module(f"{package}.{module}")
