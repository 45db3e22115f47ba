"""The ``appgen`` command line: a thin click layer over the library.

The library raises typed :class:`~appgen.errors.AppgenError` subclasses; only this
module turns them into ``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import click

from . import __version__, catalog, presets, settings
from .errors import AppgenError
from .render import (
    RenderRequest,
    check_backend,
    preview_config,
    render_project,
    resolve_task,
)

EXIT_CONFLICTS = 1  # like `git merge`: the update was written but needs the user's hand

EXIT_ERROR = 2
_DATA_DIR = "data"
BACKEND_MODULES = ("tensorflow", "jax", "keras", "keras_hub")

# Run by `appgen doctor` in a child process: it imports TensorFlow/JAX, which the
# generator itself must never do, and a crash there must not take the CLI down.
_DOCTOR_SNIPPET = r"""
import importlib.util, json, os, sys, types
package_dir, backend, configs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
package = types.ModuleType("appgen_runtime")
package.__path__ = [package_dir]  # lets strategy.py's relative imports find its siblings
sys.modules["appgen_runtime"] = package
spec = importlib.util.spec_from_file_location(
    "appgen_runtime.strategy", os.path.join(package_dir, "strategy.py"))
strategy = importlib.util.module_from_spec(spec)
sys.modules["appgen_runtime.strategy"] = strategy
spec.loader.exec_module(strategy)
env = strategy.describe_environment(backend)
plans = {label: strategy.format_plan(strategy.choose_plan(config, env)).splitlines()
         for label, config in configs.items()}
# Lines every template shares (devices, precision) once; the rest (batch size, learning
# rate) per template and task, since each has its own defaults.
common = [line for line in next(iter(plans.values()))
          if all(line in lines for lines in plans.values())]
print("\n".join(common))
width = max(len(label) for label in plans) + 1
for label, lines in plans.items():
    for line in lines:
        if line not in common:
            print(f"{label + ':':<{width}} {line}")
"""
# Used by `doctor` when no built-in template renders a config.toml to plan with.
_DOCTOR_FALLBACK_CONFIG: dict[str, Any] = {
    "train": {"batch_size": 32, "learning_rate": 0.001, "lr_scaling": "linear"},
    "runtime": {"precision": "auto", "jit_compile": "auto", "distribute": "auto",
                "steps_per_execution": "auto", "seed": 1337, "memory_growth": True,
                "tf32": False},
}


def _check_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # One line (from check_backend) instead of click's three-line usage error, so that
    # --backend torch says why it is refused.
    if value is not None:
        check_backend(value)
    return value


class _Group(click.Group):
    """Click group that reports library errors as one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # `appgen ... | head`: click's main exits quietly, as a pipeline expects
        except AppgenError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except OSError as exc:  # e.g. permission denied on the output folder
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="appgen")
def main() -> None:
    """Scaffold ready-to-train Keras 3 projects from templates."""


@main.command()
@click.argument("name")
@click.option("-t", "--template", "template_ref", required=True,
              help="Template name (see `appgen list`) or path to a template folder.")
@click.option("--task", default=None, help="Task of the template (default: its first).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Project directory (default: ./NAME).")
@click.option("--backend", metavar="[tensorflow|jax]", callback=_check_backend,
              default="tensorflow", show_default=True,
              help="Keras backend written into config.toml.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config.toml default (repeatable), e.g. train.epochs=5.")
@click.option("--no-sample-data", is_flag=True, help="Do not write the sample dataset to data/.")
@click.option("--force", is_flag=True,
              help="Write into a non-empty directory (overwrites rendered files, deletes none).")
@click.option("--dry-run", is_flag=True, help="Render and list the files without writing them.")
def new(name: str, template_ref: str, task: str | None, output: Path | None, backend: str,
        overrides: tuple[str, ...], no_sample_data: bool, force: bool, dry_run: bool) -> None:
    """Create a new project NAME from a template."""
    template = catalog.find_template(template_ref)
    request = RenderRequest(
        project_name=name,
        template=template,
        task=task,
        out_dir=output if output is not None else Path(name),
        backend=backend,
        overrides=list(overrides),
        sample_data=not no_sample_data,
        force=force,
        dry_run=dry_run,
    )
    result = render_project(request)
    if dry_run:
        click.echo(f"would create {result.target} from template {template.name!r} "
                   f"({len(result.files)} files):")
        for rel in result.files:
            click.echo(f"  {rel}")
        if result.data_summary:
            click.echo(f"  {_DATA_DIR}/  {result.data_summary}")
        return
    click.echo(f"Created {result.target} from template {template.name!r}"
               + (f" (task {result.task})" if result.task else "")
               + f": {len(result.files)} files.")
    if result.data_summary:
        click.echo(f"Sample data in {_DATA_DIR}/: {result.data_summary}")
    click.echo("\nNext steps:")
    click.echo(f"  cd {_shell_path(result.target)} && python -m {result.package} train")


def _shell_path(path: Path) -> str:
    # Show the path the way the user is likely to type it: relative when it is below cwd.
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shown if " " not in shown else f'"{shown}"'


@main.command(name="list")
def list_command() -> None:
    """List templates and their tasks, one line each."""
    templates = catalog.list_templates()
    if not templates:
        click.echo("no templates found")
    rows = [(t, ",".join(t.effective_tasks()) or "-") for t in templates]
    width = max((len(t.name) for t in templates), default=0)
    tasks_width = max((len(tasks) for _, tasks in rows), default=0)
    for template, tasks in rows:
        origin = "  (user)" if template.source == "user" else ""
        click.echo(f"{template.name:<{width}}  {tasks:<{tasks_width}}  "
                   f"{template.description}{origin}")
    for path, reason in catalog.broken_templates():
        click.echo(f"warning: skipped {path}: {reason}", err=True)
    # stderr: stdout stays one line per template for scripts that read it.
    click.echo(f"\nuser templates: {catalog.user_templates_dir()} "
               f"(${catalog.USER_DIR_ENV} to change; `appgen template new` adds one)", err=True)


@main.command()
@click.argument("template_ref", metavar="TEMPLATE")
@click.option("--task", default=None, help="Show the defaults for this task.")
def info(template_ref: str, task: str | None) -> None:
    """Show a template's tasks, data format and options with their defaults."""
    template = catalog.find_template(template_ref)
    chain = " <- ".join(t.name for t in reversed(template.chain()))
    tasks = template.effective_tasks()
    click.echo(f"{template.name}: {template.description}")
    click.echo(f"  source:      {template.path} ({template.source})")
    click.echo(f"  extends:     {chain}")
    click.echo(f"  tasks:       {', '.join(tasks) if tasks else '-'}"
               + (f" (default {tasks[0]})" if tasks else ""))
    click.echo(f"  data format: {template.data_format or '-'}")
    names: list[str | None] = list(tasks) or [None]
    samples = {name: template.effective_sample_data(name) for name in names}
    if len(set(samples.values())) > 1:
        click.echo("  sample data: " + ", ".join(f"{name}: {provider or '-'}"
                                                 for name, provider in samples.items()))
    else:
        click.echo(f"  sample data: {next(iter(samples.values())) or '-'}")
    text = preview_config(template, task)
    if text is None:
        click.echo("  options:     none (no config.toml)")
        return
    shown = resolve_task(template, task)
    others = [name for name in tasks if name != shown]
    hint = (f"; `appgen info {template.name} --task {others[0]}` for another task's"
            if others else "")
    click.echo(f"  options{f' of task {shown}' if shown else ''} "
               f"(set with --set KEY=VALUE{hint}):")
    keys = settings.describe_keys(text)
    rules = template.effective_options()
    width = max((len(a.key) for a in keys), default=0)
    for assignment in keys:
        value = " ".join(assignment.value.split())
        comment = f"  # {assignment.comment}" if assignment.comment else ""
        rule = rules[assignment.key].describe() if assignment.key in rules else ""
        click.echo(f"    {assignment.key:<{width}} = {value}{comment}"
                   + (f"  [{rule}]" if rule else ""))


@main.command()
@click.argument("directory", metavar="[DIR]", type=click.Path(path_type=Path), default=Path("."))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a recorded answer (repeatable), e.g. train.epochs=5.")
@click.option("--backend", metavar="[tensorflow|jax]", callback=_check_backend, default=None,
              help="Change the recorded backend.")
@click.option("--task", default=None, help="Change the recorded task.")
@click.option("-t", "--template", "template_ref", default=None,
              help="Render from this template instead of the recorded one (moved or renamed).")
@click.option("--dry-run", is_flag=True, help="List what would change and write nothing.")
@click.option("--force", is_flag=True,
              help="Update even with uncommitted git changes or unresolved conflict markers.")
def update(directory: Path, overrides: tuple[str, ...], backend: str | None, task: str | None,
           template_ref: str | None, dry_run: bool, force: bool) -> None:
    """Re-render project DIR with its recorded answers and merge into your edits.

    Unedited files are replaced, edited ones get a three-way merge against the
    pristine render, conflicts are marked <<<<<<< / >>>>>>> and listed (exit code 1).
    """
    from .update import UpdateOptions, update_project  # keeps `appgen new` imports small

    plan = update_project(UpdateOptions(
        project=directory, overrides=list(overrides), backend=backend, task=task,
        template_ref=template_ref, dry_run=dry_run, force=force,
    ))
    verb = "would change" if dry_run else "changed"
    where = _shell_path(plan.project)
    if not plan.changes:
        click.echo(f"{where}: up to date with template {plan.template.name!r}"
                   + (" (answers and pristine copy would be refreshed)" if dry_run else ""))
    else:
        click.echo(f"{where}: {verb} {len(plan.changes)} file(s) from template "
                   f"{plan.template.name!r}:")
        for change in plan.changes:
            detail = f"  ({change.detail})" if change.detail else ""
            click.echo(f"  {change.kind:<8}  {change.path}{detail}")
    if plan.conflicts:
        paths = " ".join(change.path for change in plan.conflicts)
        if dry_run:
            click.echo(f"{len(plan.conflicts)} file(s) would have conflicts: {paths}")
        else:
            click.echo(f"{len(plan.conflicts)} file(s) have conflicts to resolve (look for "
                       f"<<<<<<< yours ... >>>>>>> template): {paths}", err=True)
            sys.exit(EXIT_CONFLICTS)


@main.command()
@click.argument("directory", metavar="[DIR]", type=click.Path(path_type=Path), default=Path("."))
def diff(directory: Path) -> None:
    """Show your edits to project DIR against its pristine render (unified diff)."""
    from .update import diff_project

    text = diff_project(directory)
    if text:
        click.echo(text, nl=False)


@main.group()
def template() -> None:
    """Create and manage your own templates."""


@template.command(name="new")
@click.argument("name")
@click.option("--from", "copy_from", default=None, metavar="TEMPLATE",
              help="Copy this template (manifest and every file) as the starting point.")
@click.option("--extends", default=None, metavar="TEMPLATE",
              help="Inherit from this template; add only the files you change.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Folder of the new template (default: the user templates directory).")
def template_new(name: str, copy_from: str | None, extends: str | None,
                 output: Path | None) -> None:
    """Create template NAME from a built-in or user template."""
    from .authoring import create_template

    if copy_from is None and extends is None:
        raise click.UsageError("give --from TEMPLATE (copy it) or --extends TEMPLATE")
    folder = create_template(name, copy_from=copy_from, extends=extends, out=output)
    click.echo(f"Created template {name!r} in {folder}")
    in_user_dir = folder.parent == catalog.user_templates_dir().expanduser().absolute()
    shown = _shell_path(folder)
    reference = name if in_user_dir else (shown if shown.startswith(("/", '"')) else f"./{shown}")
    click.echo(f"  edit {_shell_path(folder / catalog.PROJECT_DIR)}, then: "
               f"appgen new my_project -t {reference}")


@main.command()
@click.argument("name")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Folder to write the dataset into.")
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="Number of samples (default: the provider's).")
@click.option("--seed", type=int, default=0, show_default=True)
def data(name: str, out: Path, size: int | None, seed: int) -> None:
    """Write the sample dataset NAME (see a template's `sample data`) to --out."""
    try:
        from appgen.datasets import PROVIDERS, get_writer  # lazy: providers import numpy

        if name not in PROVIDERS:
            close = difflib.get_close_matches(name, list(PROVIDERS), n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise AppgenError(f"unknown dataset {name!r}; {hint}"
                              f"choose from {', '.join(sorted(PROVIDERS))}")
        writer = get_writer(name)
    except (ImportError, AttributeError) as exc:
        raise AppgenError(f"dataset {name!r} is not available: {exc}") from None
    try:
        if size is None:  # the default sample: simulated once, then copied from the cache
            from appgen.datasets.cache import write_sample

            summary = write_sample(name, writer, out, seed=seed)
        else:
            summary = writer(out, size=size, seed=seed)
    except (ValueError, RuntimeError) as exc:
        raise AppgenError(f"writing dataset {name!r} failed: {exc}") from None
    click.echo(f"{out}: {summary}")


@main.command(name="presets")
@click.argument("template_ref", metavar="TEMPLATE")
def presets_command(template_ref: str) -> None:
    """List keras-hub presets for a template's model.preset (U-Nets: model.encoder), with
    size and expected input."""
    template = catalog.find_template(template_ref)
    known = [p for t in template.chain() for p in presets.presets_for(t.name)]
    if not known:
        click.echo(f"{template.name}: no keras-hub presets listed (model.preset and "
                   f"model.encoder are for {', '.join(sorted(presets.PRESETS))})")
        return
    width = max(len(p.name) for p in known)
    for preset in known:
        click.echo(f"{preset.name:<{width}}  {preset.task:<14}  "
                   f"{preset.parameters / 1e6:6.1f} M params  ~{preset.size_mb:>4} MB  "
                   f"{preset.expected_input}")
    click.echo(f"\nuse: --set {presets.usage(known)}: downloaded on first use into "
               f"{presets.kagglehub_cache()} (KAGGLEHUB_CACHE moves it); or a kaggle:// or "
               f"hf:// handle, or a folder written by save_to_preset()", err=True)


@main.command()
def doctor() -> None:
    """Show Python, backends and the device plan a generated project would choose."""
    click.echo(f"python:  {platform.python_version()} ({sys.executable})")
    click.echo(f"appgen:  {__version__}")
    click.echo(f"presets: {presets.kagglehub_cache()} (KaggleHub cache of keras-hub presets; "
               "KAGGLEHUB_CACHE moves it)")
    for module in BACKEND_MODULES:
        # find_spec and metadata only: importing TensorFlow here would take seconds.
        if importlib.util.find_spec(module) is None:
            click.echo(f"{module + ':':<12} not installed")
            continue
        try:
            version = importlib.metadata.version(module.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            version = "installed"
        click.echo(f"{module + ':':<12} {version}")
    package_dir = catalog.builtin_templates_dir() / "_base" / "project" / "__package__"
    if not (package_dir / "strategy.py").is_file():
        click.echo(f"plan:    unavailable (no strategy.py in {package_dir})")
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    configs = _doctor_configs()
    for config in configs.values():
        config.setdefault("runtime", {})["backend"] = backend
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _DOCTOR_SNIPPET, str(package_dir), backend,
             json.dumps(configs)],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        click.echo(f"plan:    unavailable ({type(exc).__name__}: {exc})")
        return
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {completed.returncode}"
        click.echo(f"plan:    unavailable ({reason})")
        return
    click.echo("plan:")
    for line in completed.stdout.rstrip().splitlines():
        click.echo(f"  {line}")


def _doctor_configs() -> dict[str, dict[str, Any]]:
    # The plan depends on config defaults (batch size, learning rate...), which differ per
    # template and task: plan each built-in one, so doctor shows what `appgen new` + train
    # would really use.
    configs: dict[str, dict[str, Any]] = {}
    for template in catalog.list_templates():
        if template.source != "builtin":
            continue
        tasks: list[str | None] = list(template.effective_tasks()) or [None]
        for task in tasks:
            try:
                text = preview_config(template, task)
            except AppgenError:
                continue
            if text is not None:
                configs[template.name + (f" {task}" if task else "")] = tomllib.loads(text)
    return configs or {"defaults": json.loads(json.dumps(_DOCTOR_FALLBACK_CONFIG))}
