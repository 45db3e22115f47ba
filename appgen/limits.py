"""Size limits on what the generator reads from a project or lets a template build.

A project folder may be a repository someone else committed, so ``.appgen.toml``,
the pristine store and the files ``update``/``diff`` read are bounded before they
are read. Each limit has a default that no real project comes near and can be
raised with the environment variable of the same name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InvalidValueError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable and default."""

    env: str
    default: int
    what: str

    def value(self) -> int:
        """The limit in force: ``$env`` if set, else the default."""
        raw = os.environ.get(self.env)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise InvalidValueError(f"{self.env}={raw!r}: {self.what} must be a positive "
                                    "integer")
        return value


# Largest single file update/diff read from the project (and largest pristine member).
MAX_FILE_BYTES = Limit("APPGEN_MAX_FILE_BYTES", 64 * MIB, "the largest project file read")
# Total uncompressed bytes of .appgen/pristine.tar.gz (headers and skipped members too).
MAX_PRISTINE_BYTES = Limit("APPGEN_MAX_PRISTINE_BYTES", 256 * MIB,
                           "the pristine store's uncompressed size")
# Members in the pristine store.
MAX_PRISTINE_MEMBERS = Limit("APPGEN_MAX_PRISTINE_MEMBERS", 50_000,
                             "the number of pristine store members")
# Longest string or sequence a template expression may build with *, + or ~.
MAX_RENDER_SIZE = Limit("APPGEN_MAX_RENDER_SIZE", 16 * MIB,
                        "the longest string a template may build")
# Largest integer (in bits) a template expression may build with * or **.
MAX_RENDER_INT_BITS = Limit("APPGEN_MAX_RENDER_INT_BITS", 1 << 16,
                            "the largest integer a template may build, in bits")
