"""What a template provides to the shared runtime, typed and checked.

A template's package supplies the domain code; ``train``, ``evaluate``, ``predict``
and ``export`` (in this folder) supply the rest. The pieces:

    data.py     load_splits(config, *, batch_size) -> Splits
                load_eval(config, path, meta, *, batch_size) -> Batches
                load_validation(config, meta, *, batch_size) -> Batches        (optional)
    model.py    build_model(config, meta) -> keras.Model
                compile_args(config, meta) -> dict (loss, metrics)
                epoch_metrics(meta) -> {name: fn(labels, scores) -> float}     (optional)
    report.py   report(model, batches, meta, plots_dir) -> dict
                headline(meta) -> str, or HEADLINE = "<metric>"
    predict.py  run_prediction(run_path, inputs, out, overrides) -> Path
                TAKES_TEXT = True when an input may be literal text            (optional)
    serving.py  export_saved_model(...)                                        (optional)

Scoring data other than the validation split that chose the checkpoint (``evaluate``,
a test split), the runtime passes ``other_data_meta(meta, final)``: ``meta["trained"]``
is then train's validation report, so a report can show the operating point chosen
there (fraud's threshold) instead of guessing from where its plots go.

``check_sources()`` reads (never imports) the template's files when the command line
starts, before Keras: a piece that is missing is one line naming it. ``bind()`` then
imports the modules and returns a typed ``Template``; the runtime calls the template
only through it, so mypy checks each template's functions against the Protocols here.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ProjectError

if TYPE_CHECKING:
    import keras

    from .config import Config
    from .pipeline import Batches, Splits

Meta = dict[str, Any]


class ContractError(ProjectError):
    """The template's package misses a piece the runtime calls (a broken user template)."""


@dataclass(frozen=True)
class Piece:
    """One name a template module defines: ``module.name`` (or one of ``alternatives``)."""

    module: str
    name: str
    signature: str
    alternatives: tuple[str, ...] = ()
    required: bool = True

    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alternatives)


PIECES = (
    Piece("data", "load_splits", "def load_splits(config, *, batch_size) -> Splits"),
    Piece("data", "load_eval", "def load_eval(config, path, meta, *, batch_size) -> Batches"),
    Piece("data", "load_validation", "def load_validation(config, meta, *, batch_size)",
          required=False),
    Piece("model", "build_model", "def build_model(config, meta) -> keras.Model"),
    Piece("model", "compile_args", "def compile_args(config, meta) -> dict"),
    Piece("model", "epoch_metrics", "def epoch_metrics(meta) -> dict", required=False),
    Piece("report", "report", "def report(model, batches, meta, plots_dir) -> dict"),
    Piece("report", "headline", 'def headline(meta) -> str, or HEADLINE = "<metric>"',
          alternatives=("HEADLINE",)),
    Piece("predict", "run_prediction",
          "def run_prediction(run_path, inputs, out, overrides=None) -> Path"),
)


# ----------------------------------------------------------------- the modules' Protocols


class DataModule(Protocol):
    def load_splits(self, config: Config, *, batch_size: int) -> Splits: ...

    def load_eval(self, config: Config, path: Path, meta: Meta, *,
                  batch_size: int) -> Batches: ...


class ModelModule(Protocol):
    def build_model(self, config: Config, meta: Meta) -> keras.Model: ...

    def compile_args(self, config: Config, meta: Meta) -> dict[str, Any]: ...


class ReportModule(Protocol):
    def report(self, model: keras.Model, batches: Batches, meta: Meta,
               plots_dir: Path) -> dict[str, Any]: ...


class PredictModule(Protocol):
    def run_prediction(self, run_path: Path, inputs: list[Path], out: Path | None,
                       overrides: list[str] | None = None) -> Path: ...


@dataclass(frozen=True)
class Template:
    """The template's pieces as the runtime calls them (optional ones may be None)."""

    data: DataModule
    model: ModelModule
    report: ReportModule
    headline: Callable[[Meta], str]
    epoch_metrics: Callable[[Meta], dict[str, Any]] | None
    load_validation: Callable[..., Batches] | None


def bind(data: DataModule, model: ModelModule, report: ReportModule) -> Template:
    """The template's modules as a typed ``Template`` (the optional pieces resolved once)."""
    chosen = getattr(report, "headline", None)
    if chosen is None:
        fixed = str(getattr(report, "HEADLINE"))  # noqa: B009  (check_sources: it exists)

        def chosen(meta: Meta) -> str:
            return fixed
    return Template(data=data, model=model, report=report, headline=chosen,
                    epoch_metrics=getattr(model, "epoch_metrics", None),
                    load_validation=getattr(data, "load_validation", None))


def other_data_meta(meta: Meta, trained: dict[str, Any]) -> Meta:
    """``meta`` for a report on other data, with train's validation report as ``trained``."""
    return {**meta, "trained": dict(trained)}


def load() -> Template:
    """Import this package's template modules (Keras starts here) and bind them."""
    from . import data, model, report

    return bind(data, model, report)


# ----------------------------------------------------------------- the check before Keras


def defined_names(source: str) -> set[str]:
    """Names a module defines at its top level: functions, classes, assignments, imports.

    Definitions inside top-level ``if``/``try`` blocks count (optional imports).
    """
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names.update((alias.asname or alias.name).split(".")[0]
                             for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
    visit(ast.parse(source).body)
    return names


def missing(package_dir: Path) -> list[str]:
    """One line per required piece the template's files in ``package_dir`` do not define."""
    problems: list[str] = []
    defined: dict[str, set[str] | None] = {}
    for piece in PIECES:
        if not piece.required:
            continue
        if piece.module not in defined:
            path = package_dir / f"{piece.module}.py"
            try:
                defined[piece.module] = defined_names(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                defined[piece.module] = None
            except SyntaxError as err:
                raise ContractError(f"{path}: line {err.lineno}: {err.msg}") from None
        names = defined[piece.module]
        if names is None:
            problems.append(f"the template has no {piece.module}.py (it needs {piece.signature})")
        elif not names.intersection(piece.names()):
            problems.append(f"the template's {piece.module}.py has no {piece.name} "
                            f"(it needs {piece.signature})")
    return problems


def check_sources(package_dir: Path | None = None) -> None:
    """ContractError naming the first missing piece (reads the files; Keras is not started)."""
    problems = missing(package_dir or Path(__file__).resolve().parent)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ContractError(problems[0] + more)
