"""Typed errors raised by the generator library.

Only the CLI decides how they are shown (``error: <message>``) and which exit
code they give, so every message is a single line that makes sense on its own.
"""

from __future__ import annotations


class AppgenError(Exception):
    """Base class for every error the generator reports to the user."""

    def __init__(self, message: str) -> None:
        # Jinja and TOML errors can span lines; the CLI promises one line on stderr.
        one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
        super().__init__(one_line)
        self.message = one_line

    def __str__(self) -> str:
        return self.message


class TemplateNotFoundError(AppgenError):
    """No template matches the name or path given with ``-t``."""


class ManifestError(AppgenError):
    """A ``template.toml`` is missing, unreadable or inconsistent."""


class InvalidProjectNameError(AppgenError):
    """NAME cannot become a Python package name."""


class TargetNotEmptyError(AppgenError):
    """The target directory holds files and ``--force`` was not given."""


class UnknownKeyError(AppgenError):
    """A ``--set`` key does not exist in the template's config.toml."""


class InvalidValueError(AppgenError):
    """A value (``--set``, ``--task``, ``--backend``) has the wrong type or is not allowed."""


class UnsafePathError(AppgenError):
    """A template would write outside the project directory."""


class RenderError(AppgenError):
    """A template file failed to render, or sample data failed to be written."""


class NotAProjectError(AppgenError):
    """The folder given to ``update``/``diff`` has no usable ``.appgen.toml``."""


class PristineStoreError(AppgenError):
    """The recorded pristine render is missing, unreadable or disagrees with the record."""


class DirtyWorkTreeError(AppgenError):
    """``update`` was asked to write into a git work tree with uncommitted changes."""


class MergeError(AppgenError):
    """A three-way merge could not be run at all (not: it found conflicts)."""


class TemplateExistsError(AppgenError):
    """``template new`` would overwrite an existing folder or shadow a template."""


class LimitError(AppgenError):
    """An input is larger than a generator limit allows (the message names the knob)."""


class UntrustedTemplateError(AppgenError):
    """A template named only by a project's ``.appgen.toml`` is not one appgen may trust."""
