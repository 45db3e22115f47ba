"""CSV files the commands write: cells that a spreadsheet would run as a formula are made text.

Class names, file names and texts can come from a run directory or data someone
else made. A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is a formula to Excel and LibreOffice, so it gets a leading ``'`` (the
OWASP advice). Numbers, including negative ones such as a steering of -0.25, stay
numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .rundir import atomic_write_text

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` unless it is a string a spreadsheet would treat as a formula."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value  # "-0.25", "+1e-3": a number, not a formula


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of ``row`` through ``safe_cell``."""
    return [safe_cell(value) for value in row]


def csv_text(header: Sequence[Any], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV document (header first) with every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(safe_row(header))
    writer.writerows(safe_row(row) for row in rows)
    return buffer.getvalue()


def write_csv(path: Path, header: Sequence[Any], rows: Iterable[Iterable[Any]]) -> Path:
    """Write the CSV atomically, confined like every runtime write (``rundir.write_via``)."""
    atomic_write_text(path, csv_text(header, rows))
    return path
