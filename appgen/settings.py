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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


def type_name(value: Any) -> str:
    """A short English name for the TOML type of ``value``."""
    for kind, name in ((bool, "true or false"), (int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "a list"), (dict, "a table")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _formattable(value: Any) -> bool:
    try:
        format_value(value)
    except (TypeError, ValueError):
        return False
    return True


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


@dataclass(frozen=True)
class Assignment:
    """One ``key = value`` found in TOML text, with character offsets into the text."""

    key: str  # full dotted key, table prefix included
    value_start: int
    value_end: int
    comment: str  # trailing comment on the line, without "#"; else the block just above


def _split_key(text: str) -> list[str] | None:
    """Split a (possibly dotted, possibly quoted) TOML key into its segments."""
    parts: list[str] = []
    index, length = 0, len(text)
    while True:
        while index < length and text[index] in " \t":
            index += 1
        if index >= length:
            return None
        if text[index] in "\"'":
            quote = text[index]
            end = index + 1
            while end < length and text[end] != quote:
                end += 2 if (quote == '"' and text[end] == "\\") else 1
            if end >= length:
                return None
            raw = text[index : end + 1]
            try:
                parts.append(tomllib.loads(f"v = {raw}")["v"])
            except tomllib.TOMLDecodeError:
                return None
            index = end + 1
        else:
            match = _BARE_KEY.match(text, index)
            if not match:
                return None
            parts.append(match.group())
            index = match.end()
        while index < length and text[index] in " \t":
            index += 1
        if index >= length:
            return parts
        if text[index] != ".":
            return None
        index += 1


def _scan_value(text: str, start: int) -> int:
    """Return the offset just past the TOML value starting at ``start``.

    Strings (including triple-quoted ones), arrays and inline tables may span
    lines; the value ends at a comment or newline outside all of them.
    """
    index, depth, length = start, 0, len(text)
    while index < length:
        char = text[index]
        if text.startswith('"""', index) or text.startswith("'''", index):
            quote = text[index : index + 3]
            end = index + 3
            while True:
                found = text.find(quote, end)
                if found < 0:
                    return length
                if quote == '"""' and _escaped(text, found):
                    end = found + 1
                    continue
                end = found + 3
                # A closing delimiter may be followed by up to two more quotes of content.
                while end < length and text[end] == quote[0]:
                    end += 1
                break
            index = end
            continue
        if char in "\"'":
            end = index + 1
            while end < length and text[end] != char and text[end] != "\n":
                end += 2 if (char == '"' and text[end] == "\\") else 1
            index = end + 1
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "#":
            if depth <= 0:
                break
            # A comment inside a multi-line array runs to the end of its line.
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
            continue
        elif char == "\n" and depth <= 0:
            break
        index += 1
    # Trailing blanks belong to the gap before the comment, not to the value.
    while index > start and text[index - 1] in " \t\r":
        index -= 1
    return index


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - 1 - backslashes >= 0 and text[index - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


_CONTINUATION = re.compile(r"[ \t]+#([^\n]*)(?=\n|$)")
_HEADER = re.compile(r"^[ \t]*(\[\[?)(.*?)(\]\]?)[ \t]*(#.*)?$")


def find_assignments(text: str) -> list[Assignment]:
    """List every ``key = value`` in ``text`` with its full dotted key and offsets.

    Keys inside arrays of tables (``[[x]]``) are skipped: they have no single
    dotted name to override.
    """
    assignments: list[Assignment] = []
    table: list[str] | None = []
    comment_block: list[str] = []
    index, length = 0, len(text)
    while index < length:
        newline = text.find("\n", index)
        line_end = length if newline < 0 else newline
        line = text[index:line_end]
        stripped = line.strip()
        header = _HEADER.match(line) if stripped.startswith("[") else None
        if header:
            parts = _split_key(header.group(2))
            table = None if header.group(1) == "[[" or parts is None else parts
            comment_block = []
            index = line_end + 1
            continue
        if stripped.startswith("#"):
            comment_block.append(stripped.lstrip("#").strip())
            index = line_end + 1
            continue
        equals = _find_equals(line)
        if not stripped or equals < 0:
            comment_block = []
            index = line_end + 1
            continue
        key_parts = _split_key(line[:equals])
        value_start = index + equals + 1
        while value_start < length and text[value_start] in " \t":
            value_start += 1
        value_end = _scan_value(text, value_start)
        if key_parts is not None and table is not None:
            rest_end = text.find("\n", value_end)
            rest_end = length if rest_end < 0 else rest_end
            rest = text[value_end:rest_end].strip()
            comment = rest[1:].strip() if rest.startswith("#") else " ".join(comment_block)
            line_end = value_end
            # Indented comment lines right below a trailing comment continue it.
            while rest.startswith("#") and (
                match := _CONTINUATION.match(text, rest_end + 1)
            ) is not None:
                comment += " " + match.group(1).strip()
                rest_end = line_end = match.end()
            assignments.append(
                Assignment(".".join([*table, *key_parts]), value_start, value_end, comment)
            )
            value_end = line_end
        comment_block = []
        newline = text.find("\n", value_end)
        index = length if newline < 0 else newline + 1
    return assignments


def _find_equals(line: str) -> int:
    # The first "=" outside a quoted key separates the key from the value.
    quote = ""
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "=":
            return position
        elif char == "#":
            return -1
    return -1


def apply_overrides(toml_text: str, overrides: Mapping[str, Any]) -> str:
    """Rewrite the values of ``overrides`` in ``toml_text`` in place.

    Comments, blank lines and key order are kept; only the value text of each
    overridden key changes. A key defined inside an inline table
    (``a = {b = 1}``) is updated by rewriting that inline table.

    Args:
        toml_text: commented TOML, such as a template's config.toml.
        overrides: dotted key -> value (already validated).

    Raises:
        UnknownKeyError: if a key has no assignment in the text.
    """
    replacements: list[tuple[int, int, str]] = []
    done: set[str] = set()
    for assignment in find_assignments(toml_text):
        if assignment.key in overrides:
            value = overrides[assignment.key]
            replacements.append((assignment.value_start, assignment.value_end,
                                 format_value(value)))
            done.add(assignment.key)
            continue
        nested = {key[len(assignment.key) + 1 :]: value for key, value in overrides.items()
                  if key.startswith(assignment.key + ".")}
        if nested:
            raw = toml_text[assignment.value_start : assignment.value_end]
            current = tomllib.loads(f"v = {raw}")["v"]
            if isinstance(current, dict):
                for subkey, value in nested.items():
                    _set_nested(current, subkey.split("."), value)
                replacements.append((assignment.value_start, assignment.value_end,
                                     format_value(current)))
                done.update(f"{assignment.key}.{subkey}" for subkey in nested)
    missing = [key for key in overrides if key not in done]
    if missing:
        raise UnknownKeyError(f"config key {missing[0]!r} is not assigned in config.toml")
    # Replace from the end so earlier offsets stay valid.
    for start, end, new in sorted(replacements, reverse=True):
        toml_text = toml_text[:start] + new + toml_text[end:]
    return toml_text


def _set_nested(table: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        table = table.setdefault(part, {})
    table[parts[-1]] = value


def describe_keys(toml_text: str) -> list[Assignment]:
    """Every assignment in ``toml_text`` with its comment, in file order (for ``appgen info``)."""
    return find_assignments(toml_text)
