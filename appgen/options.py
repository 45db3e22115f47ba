"""Template options: extra defaults and validation for existing config.toml keys.

A template's ``config.toml`` stays the schema: its keys are the options and the
type of each default is the option's type. A manifest may add, per dotted key,

    [options."model.width"]
    default = 16                 # replaces config.toml's default (same type)
    choices = [8, 16, 32]        # the value must be one of these
    min = 4                      # numbers only: inclusive bounds
    max = 64
    help = "filters of the first stage"   # shown by `appgen info`

and every value that reaches config.toml (default, task setting, ``--set``) is
checked against it. A child template's entry for a key updates its parent's
entry field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import settings
from .errors import InvalidValueError, ManifestError

_FIELDS = ("default", "choices", "min", "max", "help")


@dataclass(frozen=True)
class Option:
    """Validation and an optional new default for one dotted config key."""

    key: str
    default: Any = None  # None: keep config.toml's default
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    origin: str = ""  # the manifest that defined it, for error messages
    fields: frozenset[str] = field(default_factory=frozenset)  # which fields were given

    def check(self, value: Any, *, origin: str) -> None:
        """Raise InvalidValueError naming ``origin`` and the key if ``value`` is not allowed."""
        prefix = f"{origin}: " if origin else ""
        if self.choices and value not in self.choices:
            allowed = ", ".join(settings.format_value(choice) for choice in self.choices)
            raise InvalidValueError(
                f"{prefix}{self.key} must be one of {allowed}; got {settings.format_value(value)}"
            )
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.minimum is not None and numeric and value < self.minimum:
            raise InvalidValueError(f"{prefix}{self.key} must be at least "
                                    f"{settings.format_value(self.minimum)}; got {value}")
        if self.maximum is not None and numeric and value > self.maximum:
            raise InvalidValueError(f"{prefix}{self.key} must be at most "
                                    f"{settings.format_value(self.maximum)}; got {value}")

    def describe(self) -> str:
        """``choices: a, b; min 1; max 9`` for ``appgen info`` (empty when unconstrained)."""
        parts = []
        if self.choices:
            parts.append("choices: " + ", ".join(settings.format_value(c) for c in self.choices))
        if self.minimum is not None:
            parts.append(f"min {settings.format_value(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"max {settings.format_value(self.maximum)}")
        if self.help:
            parts.append(self.help)
        return "; ".join(parts)


def parse_options(table: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """Check a manifest's ``[options]`` table and return it as key -> given fields.

    Raises:
        ManifestError: naming the manifest and the key for unknown fields or wrong types.
    """
    parsed: dict[str, dict[str, Any]] = {}
    for key, spec in table.items():
        name = f"{where}: options.{key}"
        if not isinstance(spec, dict):
            raise ManifestError(f"{name} must be a table such as {{choices = [...]}}")
        unknown = sorted(set(spec) - set(_FIELDS))
        if unknown:
            raise ManifestError(f"{name}: unknown field {unknown[0]!r}; "
                                f"use {', '.join(_FIELDS)}")
        if "choices" in spec and (not isinstance(spec["choices"], list) or not spec["choices"]):
            raise ManifestError(f"{name}: choices must be a non-empty list")
        for bound in ("min", "max"):
            value = spec.get(bound)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise ManifestError(f"{name}: {bound} must be a number, got {value!r}")
        if "help" in spec and not isinstance(spec["help"], str):
            raise ManifestError(f"{name}: help must be a string")
        parsed[key] = dict(spec)
    return parsed


def merge_options(tables: list[tuple[str, dict[str, dict[str, Any]]]]) -> dict[str, Option]:
    """Merge ``(manifest, options)`` pairs, root ancestor first; later fields win."""
    merged: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for where, table in tables:
        for key, spec in table.items():
            merged.setdefault(key, {}).update(spec)
            origins[key] = where
    return {
        key: Option(
            key=key,
            default=spec.get("default"),
            choices=tuple(spec.get("choices", ())),
            minimum=spec.get("min"),
            maximum=spec.get("max"),
            help=spec.get("help", ""),
            origin=origins[key],
            fields=frozenset(spec),
        )
        for key, spec in merged.items()
    }


def option_defaults(options: Mapping[str, Option]) -> dict[str, Any]:
    """The dotted keys whose default a manifest replaces, with the new defaults."""
    return {key: option.default for key, option in options.items() if "default" in option.fields}


def check_values(
    options: Mapping[str, Option], config: Mapping[str, Any], origins: Mapping[str, str]
) -> None:
    """Check the final config against every option.

    Args:
        options: the template's merged options.
        config: the parsed final config.toml.
        origins: dotted key -> where its value came from (``--set``...), for messages.

    Raises:
        ManifestError: if an option names a key config.toml does not have.
        InvalidValueError: if a value breaks an option's rule.
    """
    flat = settings.flatten(config)
    for key, option in options.items():
        if key not in flat:
            raise ManifestError(f"{option.origin}: options.{key} is not a key of config.toml")
        option.check(flat[key], origin=origins.get(key, f"default of {key} in {option.origin}"))
