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
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, RUNTIME_DIR / "__init__.py", submodule_search_locations=[str(RUNTIME_DIR)])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{module}")
