"""CSV/TSV tables and text lines, read the way Python's csv module reads them.

Every template reads its tables here, so all of them accept what RFC 4180 allows
(quoted fields holding commas, quotes or newlines; CRLF or LF line ends; a UTF-8
byte-order mark; blank lines, a trailing one included) and refuse the same things
with one line naming the file and line: a ragged row, a missing column, text that
is not UTF-8, and a field or line longer than ``limits.csv_field_mb``. Files are
read line by line with each line capped, so a 100 MB one-line file costs at most
the cap in memory, never the whole file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import DataError
from .limits import limit, too_large

KNOB = "csv_field_mb"


def delimiter_for(path: Path) -> str:
    """Tab for ``.tsv``/``.tab`` files, comma otherwise."""
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


class Table:
    """An open CSV/TSV file: its header, then its rows one at a time."""

    def __init__(self, path: Path, handle: IO[str], delimiter: str) -> None:
        self.path = path
        self.delimiter = delimiter
        self._lines = _CappedLines(path, handle)
        csv.field_size_limit(limit(KNOB))  # process-wide; the same cap for every reader
        self._reader = csv.reader(self._lines, delimiter=delimiter)
        header: list[str] = []
        for _, row in self._records():
            if row:
                header = [name.strip() for name in row]
                break
        if not any(header):
            raise DataError(f"{path} is empty (no header row)")
        self.header = header

    def column(self, name: str, hint: str = "") -> int:
        """Index of column ``name``; DataError listing the columns there are."""
        if name not in self.header:
            raise DataError(f"{self.path}: no column {name!r} (columns: "
                            f"{', '.join(self.header)}){'; ' + hint if hint else ''}")
        return self.header.index(name)

    def require(self, names: Sequence[str], hint: str = "") -> list[int]:
        """Indices of ``names``; DataError naming the first one missing."""
        return [self.column(name, hint) for name in names]

    def rows(self, *, ragged: str = "error") -> Iterator[tuple[int, list[str]]]:
        """``(line, fields)`` per record, blank lines skipped; ``line`` is where it starts.

        A record with more or fewer fields than the header is an error naming its
        line, unless ``ragged="keep"`` (the caller then decides, e.g. to skip it).
        """
        for line, row in self._records():
            if not row:
                continue
            if len(row) != len(self.header) and ragged == "error":
                raise DataError(ragged_message(self.path, line, len(row), len(self.header),
                                               self.delimiter))
            yield line, row

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        while True:
            start = self._reader.line_num + 1
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except csv.Error as err:
                if "field larger than field limit" in str(err):
                    raise DataError(too_large(KNOB, f"{self.path}:{start}",
                                              "a field")) from None
                raise DataError(f"{self.path}:{start}: not a readable CSV record "
                                f"({err})") from None
            yield start, row


def ragged_message(path: Path, line: int, fields: int, expected: int, delimiter: str) -> str:
    """One line for a record whose field count differs from the header's."""
    return (f"{path}:{line}: {fields} fields, the header has {expected} (a ragged row; "
            f"quote fields that contain {delimiter!r})")


@contextmanager
def open_table(path: Path, *, delimiter: str | None = None) -> Iterator[Table]:
    """Open a CSV/TSV file (delimiter from the suffix unless given) as a ``Table``."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        yield Table(path, handle, delimiter or delimiter_for(path))


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(number, line)`` for each line of a UTF-8 text file (BOM and line end removed).

    Each line is capped by ``limits.csv_field_mb``; longer ones are an error naming
    the file and line.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline=None)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        lines = _CappedLines(path, handle)
        for line in lines:
            yield lines.count, line.rstrip("\r\n")


class _CappedLines:
    """The lines of a text handle, each read with a cap; decoding errors name the file."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self.handle = handle
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        cap = limit(KNOB)
        try:
            line = self.handle.readline(cap + 1)
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path} is not UTF-8 text ({err.reason}); "
                            "re-save it as UTF-8") from None
        except OSError as err:
            raise DataError(f"cannot read {self.path}: {err.strerror}") from None
        if not line:
            raise StopIteration
        self.count += 1
        if len(line.rstrip("\r\n")) > cap:
            raise DataError(too_large(KNOB, f"{self.path}:{self.count}", "a line"))
        return line
