"""Answers and configuration: parse ``--set KEY=VALUE``, validate, rewrite config.toml.

The defaults in a template's ``config.toml`` are the schema. Overrides are
checked against it with the same rules the generated project's ``config.py``
uses (so ``appgen new --set`` and ``python -m NAME train --set`` agree), then
written back into the commented TOML text in place so every comment survives.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .errors import InvalidValueError, UnknownKeyError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_RUNTIME_PACKAGE = "appgen._project_runtime"


# --------------------------------------------------------------------------- parsing


def parse_value(text: str) -> Any:
    """Parse ``text`` as one TOML value; text that is not TOML is a plain string.

    ``5`` -> 5, ``0.1`` -> 0.1, ``true`` -> True, ``"x"`` -> "x", ``[1,2]`` -> [1, 2],
    ``data/train`` -> "data/train". The generated project's own rule (see check_type).
    """
    return _project_config().parse_value(text.strip())


def parse_override(item: str) -> tuple[str, Any]:
    """Split one ``KEY=VALUE`` string into its dotted key and parsed value.

    Raises:
        InvalidValueError: if there is no ``=``, the key is empty, or the value holds NUL.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidValueError(f"--set expects KEY=VALUE, got {item!r}")
    if any(not part.strip() for part in key.split(".")):
        raise InvalidValueError(f"--set key {key!r} has an empty part")
    value = parse_value(text)
    _reject_nul(key, value)
    return key, value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse several ``KEY=VALUE`` strings; a later one for the same key wins."""
    return dict(parse_override(item) for item in items)


def _reject_nul(key: str, value: Any) -> None:
    # NUL cannot round-trip through every tool that later reads config.toml.
    if isinstance(value, str) and "\x00" in value:
        raise InvalidValueError(f"{key}: value contains a NUL byte")
    if isinstance(value, list):
        for item in value:
            _reject_nul(key, item)
    if isinstance(value, dict):
        for item in value.values():
            _reject_nul(key, item)


# --------------------------------------------------------------------------- validation


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Map every dotted key of ``config`` that holds a non-table value to that value."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def validate_overrides(
    schema: Mapping[str, Any], overrides: Mapping[str, Any], *, origin: str = "--set"
) -> dict[str, Any]:
    """Check each override against the schema and return them converted to its types.

    Args:
        schema: the parsed default config (nested dicts).
        overrides: dotted key -> parsed value.
        origin: where the overrides came from, for error messages.

    Raises:
        UnknownKeyError: naming the key and close matches when a key is not in the schema.
        InvalidValueError: naming the key, the expected type and the value on a type mismatch.
    """
    defaults = flatten(schema)
    checked: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            table = " (it is a table; set one of its keys)" if _is_table(schema, key) else ""
            raise UnknownKeyError(f"{origin}: unknown config key {key!r}{table}{hint}")
        checked[key] = check_type(key, defaults[key], value)
    return checked


def _is_table(schema: Mapping[str, Any], key: str) -> bool:
    node: Any = schema
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def check_type(key: str, default: Any, value: Any) -> Any:
    """Return ``value`` converted to the type of ``default``.

    The rule is the generated project's own (its ``config.check_type``, loaded
    from the ``_base`` template), so ``appgen new --set`` and ``python -m NAME
    train --set`` accept exactly the same values: int is accepted where the
    default is a float, bool is never a number, and a default of ``"auto"``
    (decided at run time) also accepts a number or a bool.

    Raises:
        InvalidValueError: naming the key, the expected type and the value.
    """
    config = _project_config()
    try:
        return config.check_type(key, default, value)
    except config.ConfigError as err:
        raise InvalidValueError(str(err)) from None


def _project_config() -> ModuleType:
    """The ``config`` module every generated project ships (pure Python, no Keras)."""
    if _RUNTIME_PACKAGE not in sys.modules:
        from .catalog import builtin_templates_dir

        runtime = builtin_templates_dir() / "_base" / "project" / "__package__"
        spec = importlib.util.spec_from_file_location(
            _RUNTIME_PACKAGE, runtime / "__init__.py", submodule_search_locations=[str(runtime)])
        if spec is None or spec.loader is None:  # pragma: no cover - broken installation
            raise InvalidValueError(f"appgen's runtime template is missing at {runtime}")
        package = importlib.util.module_from_spec(spec)
        sys.modules[_RUNTIME_PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{_RUNTIME_PACKAGE}.config")


# --------------------------------------------------------------------------- formatting

_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r",
            '"': '\\"', "\\": "\\\\"}


def format_string(text: str) -> str:
    """Format ``text`` as a TOML basic string with every needed escape."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def format_key(key: str) -> str:
    """Format one key segment, quoting it when it is not a bare key."""
    return key if _BARE_KEY.fullmatch(key) else format_string(key)


def format_value(value: Any) -> str:
    """Format a TOML value (scalar, date/time, list or inline table) on one line.

    Raises:
        TypeError: for values TOML cannot hold (such as None).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # repr keeps a "." or an exponent, so it stays a float
    if isinstance(value, str):
        return format_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{format_key(str(k))} = {format_value(v)}" for k, v in value.items())
        return "{" + items + "}" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


# --------------------------------------------------------------------------- in-place rewrite
# tomlkit parses TOML into a document that keeps every comment, blank line and the spelling
# of untouched values, so a value can be replaced without disturbing the rest of the file.
# It is imported only where a config is read or rewritten: `appgen list` never needs it.


@dataclass(frozen=True)
class Assignment:
    """One ``key = value`` found in TOML text."""

    key: str  # full dotted key, table prefix included
    value: str  # the value as written (a multi-line array keeps its lines and comments)
    comment: str  # trailing comment on the line, without "#"; else the block just above


def _parse(toml_text: str) -> Any:
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        return tomlkit.parse(toml_text)
    except ParseError as err:
        raise InvalidValueError(f"config.toml is not valid TOML: {err}") from None


def find_assignments(toml_text: str) -> list[Assignment]:
    """List every ``key = value`` in ``toml_text`` with its full dotted key, in file order.

    An inline table (``a = {b = 1}``) is one assignment. Keys inside arrays of tables
    (``[[x]]``) are skipped: they have no single dotted name to override.

    Raises:
        InvalidValueError: the text is not valid TOML.
    """
    found: list[Assignment] = []
    _collect(_parse(toml_text), [], found)
    return found


def _collect(container: Any, prefix: list[str], found: list[Assignment]) -> None:
    from tomlkit.items import AoT, Comment, Table, Whitespace

    block: list[str] = []  # comment lines just above the next key
    last: Assignment | None = None  # the previous key, while its trailing comment may continue
    for key, item in container.body:
        if isinstance(item, Comment):
            text = item.trivia.comment.lstrip("#").strip()
            if last is not None and item.trivia.indent:
                # Indented comment lines right below a trailing comment continue it.
                found[-1] = last = Assignment(last.key, last.value, f"{last.comment} {text}")
            else:
                block.append(text)
                last = None
            continue
        if key is None or isinstance(item, Whitespace) or isinstance(item, AoT):
            block, last = [], None
            continue
        dotted = [*prefix, key.key]
        if isinstance(item, Table):  # a [header] or the first part of a dotted key
            _collect(item.value, dotted, found)
            block, last = [], None
            continue
        trailing = item.trivia.comment.lstrip("#").strip()
        found.append(Assignment(".".join(dotted), item.as_string(), trailing or " ".join(block)))
        block, last = [], found[-1] if trailing else None


def _toml_item(value: Any) -> Any:
    """``value`` as a tomlkit item written on one line: mappings become inline tables."""
    import tomlkit

    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for key, item in value.items():
            table.append(str(key), _toml_item(item))
        return table
    if isinstance(value, (list, tuple)):
        array = tomlkit.array()
        for item in value:
            array.append(_toml_item(item))
        return array
    if value is None:
        raise TypeError(f"cannot write {value!r} as TOML")
    return tomlkit.item(value)


def apply_overrides(toml_text: str, overrides: Mapping[str, Any]) -> str:
    """Rewrite the values of ``overrides`` in ``toml_text`` in place.

    Comments, blank lines and key order are kept; only the value text of each
    overridden key changes. A key inside an inline table (``a = {b = 1}``) is set
    inside it.

    Args:
        toml_text: commented TOML, such as a template's config.toml.
        overrides: dotted key -> value (already validated).

    Raises:
        UnknownKeyError: if a key has no assignment in the text.
        InvalidValueError: the text is not valid TOML.
    """
    if not overrides:
        return toml_text
    from tomlkit.items import InlineTable

    document = _parse(toml_text)
    for key, value in overrides.items():
        *parents, name = key.split(".")
        node: Any = document  # tables are mappings; an array of tables is a list
        for part in parents:
            node = node.get(part) if isinstance(node, MutableMapping) else None
        current = node.get(name) if isinstance(node, MutableMapping) else None
        if current is None or (isinstance(current, MutableMapping)
                               and not isinstance(current, InlineTable)):
            raise UnknownKeyError(f"config key {key!r} is not assigned in config.toml")
        node[name] = _toml_item(value)
    return str(document.as_string())


def describe_keys(toml_text: str) -> list[Assignment]:
    """Every assignment in ``toml_text`` with its comment, in file order (for ``appgen info``)."""
    return find_assignments(toml_text)
