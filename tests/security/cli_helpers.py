"""appgen's CLI run in-process, and the one-line error every hostile input must get."""

from __future__ import annotations

from click.testing import CliRunner

from appgen.cli import main


def run(*args: str) -> tuple[int, str]:
    """``appgen ARGS`` through click's runner: (exit code, stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit code 2 and exactly one ``error: ...`` line holding every needle."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], err
