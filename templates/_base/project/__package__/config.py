"""Load config.toml, apply ``--set KEY=VALUE`` overrides, and write it back.

The defaults in config.toml are the schema: a key that is not there is an
error, and an override must have the type of its default. A default of
``"auto"`` means "decided at run time" and also accepts a number or a bool.
"""

from __future__ import annotations

import copy
import difflib
import math
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import limits
from .errors import ConfigError

Config = dict[str, Any]


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config and apply ``KEY=VALUE`` overrides to it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    config = apply_overrides(config, overrides)
    limits.configure(config)  # data readers refuse files over these caps
    return config


# Ranges of numeric keys by their last name, wherever they are in the config:
# (lowest, lowest allowed?, highest or None, highest allowed?). "auto" and other
# non-numbers are left to the code that reads them.
RANGES: dict[str, tuple[float, bool, float | None, bool]] = {
    "epochs": (1, True, None, False),
    "batch_size": (1, True, None, False),
    "learning_rate": (0, False, None, False),
    "weight_decay": (0, True, None, False),
    "warmup_epochs": (0, True, None, False),
    "early_stopping_patience": (0, True, None, False),
    "checkpoint_every_steps": (0, True, None, False),
    "min_free_disk_mb": (0, True, None, False),
    "steps_per_execution": (1, True, None, False),
    "steps": (1, True, None, False),
    "warmup_steps": (0, True, None, False),
    "latency_calls": (1, True, None, False),
    "latency_warmup": (0, True, None, False),
    "latency_batch": (1, True, None, False),
    "nodes": (1, True, None, False),
    "gpus_per_node": (1, True, None, False),
    "dropout": (0, True, 1, False),
    "val_fraction": (0, True, 1, False),
    "max_trials": (1, True, None, False),
    "trial_epochs": (0, True, None, False),
    "tune_workers": (1, True, None, False),
    "tune_port": (1, True, 65535, True),
    "freeze_epochs": (0, True, None, False),
    "backbone_lr_multiplier": (0, False, None, False),
}


def check_ranges(config: Config, prefix: str = "") -> None:
    """ConfigError (one line, naming the key) for a number outside its key's range."""
    for key, value in config.items():
        if isinstance(value, dict):
            check_ranges(value, f"{prefix}{key}.")
        else:
            check_range(f"{prefix}{key}", value)


def check_range(key: str, value: Any) -> Any:
    """Return ``value``, or raise ConfigError when it is outside ``RANGES`` for ``key``."""
    bounds = RANGES.get(key.rpartition(".")[2])
    if bounds is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    low, low_ok, high, high_ok = bounds
    too_low = value < low or (value == low and not low_ok)
    too_high = high is not None and (value > high or (value == high and not high_ok))
    if too_low or too_high:
        low_text = f"{'at least' if low_ok else 'more than'} {low:g}"
        high_text = (f" and {'at most' if high_ok else 'less than'} {high:g}"
                     if high is not None else "")
        raise ConfigError(f"{key} must be {low_text}{high_text}, got {_as_toml(value)}")
    return value


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a copy of ``config`` with each ``KEY=VALUE`` applied and type-checked."""
    result = copy.deepcopy(config)
    for item in overrides:
        key, value = parse_override(item)
        set_key(result, key, value)
    check_ranges(result)
    return result


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``a.b=VALUE``; VALUE is a TOML value, or a bare string when it is not one."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
    return key, parse_value(text.strip())


def parse_value(text: str) -> Any:
    """Parse one TOML value (``3``, ``0.1``, ``true``, ``"x"``, ``[1, 2]``); else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(config: Config, key: str, value: Any) -> None:
    """Set dotted ``key`` in place, refusing unknown keys and wrong types."""
    *parents, leaf = key.split(".")
    table = config
    for depth, part in enumerate(parents):
        child = table.get(part)
        if not isinstance(child, dict):
            raise ConfigError(_unknown_key_message(config, ".".join(parents[: depth + 1]), key))
        table = child
    if leaf not in table or isinstance(table[leaf], dict):
        raise ConfigError(_unknown_key_message(config, key, key))
    table[leaf] = check_type(key, table[leaf], value)


def check_type(key: str, default: Any, value: Any) -> Any:
    """Return ``value`` converted to the default's type, or raise ConfigError."""
    if default == "auto" and isinstance(value, (bool, int, float, str)):
        return check_range(key, value)
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)):
        if math.isfinite(float(value)):
            return check_range(key, float(value))
    elif isinstance(default, int) and isinstance(value, int):
        return check_range(key, value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, list) and isinstance(value, list):
        return value
    raise ConfigError(
        f"{key} must be {_type_name(default)} (default {_as_toml(default)}), "
        f"got {_as_toml(value)}"
    )


def get(config: Config, key: str) -> Any:
    """Read a dotted key, raising ConfigError naming it when absent."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"config key {key} is missing")
        node = node[part]
    return node


def choice(config: Config, key: str, allowed: tuple[str, ...]) -> str:
    """Read a string key that must be one of ``allowed``."""
    value = get(config, key)
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite int or float (a bool is not a number), else
    None: for numbers read back from files (metrics.json, run logs) that may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def flatten(config: Config, prefix: str = "") -> dict[str, Any]:
    """``{"train.learning_rate": 0.003, ...}``: every leaf of ``config`` under its dotted key."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dump_toml(config: Config) -> str:
    """Write a nested dict of scalars and lists as TOML (tables after plain keys)."""
    lines: list[str] = []
    _dump_table(config, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def format_value(value: Any) -> str:
    """Format one scalar or list as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")


def _as_toml(value: Any) -> str:
    """``value`` as the user would type it in config.toml (repr when TOML cannot say it)."""
    try:
        return format_value(value)
    except ConfigError:
        return repr(value)


def _dump_table(table: Config, prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if prefix and scalars:
        lines.append(f"\n[{'.'.join(prefix)}]")
    for key, value in scalars.items():
        # [tune.space] keys are dotted config keys: quoted, or TOML would read them as tables
        bare = key.isascii() and key.replace("_", "").replace("-", "").isalnum()
        name = key if bare else format_value(key)
        lines.append(f"{name} = {format_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _dump_table(value, [*prefix, key], lines)


def _all_keys(config: Config, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_all_keys(value, f"{dotted}."))
    return keys


def _unknown_key_message(config: Config, missing: str, key: str) -> str:
    close = difflib.get_close_matches(key, _all_keys(config), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown config key {key!r}{hint}"


def _type_name(value: Any) -> str:
    for kind, name in ((bool, "true or false"), (int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "a list")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
