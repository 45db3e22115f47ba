"""Caps on what one data file may make this project allocate (``[limits]`` in config.toml).

Data files are untrusted: a few hundred bytes can declare gigabytes (a PNG header,
a NIfTI header, a gzip stream, one CSV cell). Every reader checks the size a file
declares against these caps *before* allocating memory for it, and exceeding a cap
is a ``DataError`` naming the file and the knob. ``load_config`` applies a config's
values to the whole process; code that never loads a config gets the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError

# knob -> (default, unit the knob counts in, what it caps)
KNOBS: dict[str, tuple[float, int, str]] = {
    "csv_field_mb": (16, 1_000_000, "characters in one CSV/TSV field or text line"),
    "image_megapixels": (64, 1_000_000, "pixels of one image"),
    "volume_megavoxels": (256, 1_000_000, "voxels of one volume"),
}
_values: dict[str, float] = {name: default for name, (default, _, _) in KNOBS.items()}


def configure(config: dict[str, Any]) -> None:
    """Take ``[limits]`` from a loaded config (missing keys keep their defaults)."""
    section = config.get("limits", {})
    if not isinstance(section, dict):
        raise ConfigError("[limits] in config.toml must be a table")
    for name, (default, _, _) in KNOBS.items():
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"limits.{name} must be a positive number; got {value!r}")
        _values[name] = float(value)


def limit(name: str) -> int:
    """The cap ``limits.<name>`` in its base unit (characters, pixels, voxels)."""
    return int(_values[name] * KNOBS[name][1])


def check(name: str, amount: int, source: Path | str, what: str) -> None:
    """Raise DataError naming ``source`` and ``limits.<name>`` when ``amount`` is over the cap."""
    if amount > limit(name):
        raise DataError(too_large(name, source, what))


def too_large(name: str, source: Path | str, what: str) -> str:
    """The one-line message for ``source`` exceeding ``limits.<name>``."""
    value = _values[name]
    shown = int(value) if value == int(value) else value
    return (f"{source}: {what} is over limits.{name} = {shown} ({KNOBS[name][2]}, in "
            f"millions; raise it in config.toml if you trust the file)")
