"""``python -m PACKAGE runs``: one line per run under ``runs/``, sweep trials included.

Each line shows the run's monitor at its best epoch, the epochs trained, the time
and the config keys that differ from the project's ``config.toml``. Run folders may
come from someone else, so what is read back (config.toml, metrics.json) is checked
like any input: a folder that does not parse is listed as unreadable, never a crash.
Keras is not imported; MLflow is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, finite_number, flatten, format_value, load_config
from .errors import ProjectError
from .rundir import RunDir

# Keys train fills in for the machine it ran on ("auto" resolved): not a choice the user made.
RESOLVED_KEYS = ("runtime.backend", "runtime.precision", "runtime.jit_compile",
                 "runtime.distribute", "runtime.steps_per_execution")
MAX_RUNS = 10_000          # a runs/ folder with more entries than this is listed in part
MAX_CELL = 48              # characters of one changed value shown
MAX_CONFIG_BYTES = 2**20   # a run's config.toml is a few kB; a bigger one is not read


@dataclass
class RunRow:
    """What the table shows of one run directory."""

    name: str
    monitor: str = "?"
    value: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    seconds: float | None = None
    changed: str = ""
    problem: str = ""      # set when the folder could not be read


def find_runs(root: Path) -> list[Path]:
    """Run directories in ``root`` and one level down (a sweep's trials), in name order.

    Symlinked folders are skipped: a listing never leaves ``root``.
    """
    found: list[Path] = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir())[:MAX_RUNS]:
        if entry.is_symlink() or not entry.is_dir():
            continue
        trials = [trial for trial in sorted(entry.iterdir())[:MAX_RUNS]
                  if not trial.is_symlink() and trial.is_dir()
                  and (trial / "config.toml").is_file()]
        if trials:  # a sweep: its trials are the runs
            found += trials
        elif (entry / "config.toml").is_file():
            found.append(entry)
    return found


def read_run(path: Path, root: Path, defaults: Config | None) -> RunRow:
    """The table row of one run; ``problem`` names what was unreadable."""
    row = RunRow(name=str(path.relative_to(root)))
    if (path / "config.toml").stat().st_size > MAX_CONFIG_BYTES:
        row.problem = f"unreadable: config.toml is larger than {MAX_CONFIG_BYTES} bytes"
        return row
    try:
        config = load_config(path / "config.toml")
        metrics = RunDir(path).read_metrics()
    except ProjectError as err:
        row.problem = f"unreadable: {err}"
        return row
    monitor = metrics.get("monitor")
    if isinstance(monitor, str) and 0 < len(monitor) <= 100 and monitor.isprintable():
        row.monitor = monitor
    best = metrics.get("best")
    if isinstance(best, dict):
        row.value = finite_number(best.get(row.monitor))
        row.best_epoch = _count(best.get("epoch"))
    row.epochs = _count(metrics.get("epochs_completed"))
    row.seconds = finite_number(metrics.get("train_seconds"))
    if row.seconds is not None and row.seconds < 0:
        row.seconds = None
    if defaults is not None:
        row.changed = changed_keys(config, defaults)
    if "final" not in metrics:
        row.problem = "unfinished" if metrics else "no epoch completed"
    return row


def changed_keys(config: Config, defaults: Config) -> str:
    """``key=value`` for each key whose value differs from ``defaults`` (runtime decisions
    and the [tune] table left out)."""
    ours, theirs = flatten(config), flatten(defaults)
    changes = []
    for key, value in ours.items():
        if key in RESOLVED_KEYS or key.startswith("tune.") or theirs.get(key, value) == value:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else format_value(value)
        text = _printable(f"{key}={shown}")
        changes.append(text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "...")
    return " ".join(changes)


def format_table(rows: list[RunRow]) -> str:
    """The runs as aligned columns; "-" where a run does not say."""
    header = ("run", "monitor", "best", "epoch", "epochs", "time", "changed from config.toml")
    lines = [header]
    for row in rows:
        lines.append((
            _printable(row.name), row.monitor,
            "-" if row.value is None else f"{row.value:.4f}",
            "-" if row.best_epoch is None else str(row.best_epoch),
            "-" if row.epochs is None else str(row.epochs),
            "-" if row.seconds is None else f"{row.seconds:.0f}s",
            row.problem if row.problem and not row.changed else
            " ".join(filter(None, [row.changed, f"({row.problem})" if row.problem else ""])),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        .rstrip() for line in lines)


def list_runs(root: Path, config_path: Path) -> str:
    """The ``runs`` command's output for the runs under ``root``."""
    paths = find_runs(root)
    if not paths:
        return f"no runs in {root} yet: python -m {__package__} train"
    defaults = load_config(config_path) if config_path.is_file() else None
    return format_table([read_run(path, root, defaults) for path in paths])


def _count(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value < 10**9 else None


def _printable(text: str) -> str:
    """Control characters in names and values from a run folder replaced by ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)
