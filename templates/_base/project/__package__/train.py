"""``python -m PACKAGE train``: the same training loop for every template.

The template supplies the domain (``data.load_splits``, ``model.build_model``,
``model.compile_args``, ``report.report``); this module supplies the run
directory, the strategy, the optimizer and schedule, checkpoints and plots.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras

from . import contract, finetune, pipeline, plots, rundir, strategy, tracking
from .callbacks import ExactValidationMetrics, RunRecorder, tensorboard
from .config import Config, choice, dump_toml, get, load_config
from .errors import ConfigError, DataError, ProjectError, TrainingInterrupted, TrainingStopped


def run_training(config_path: Path, overrides: list[str], run_path: Path | None,
                 resume: bool) -> dict[str, Any]:
    """Train and return metrics.json's contents."""
    if resume:
        if run_path is None:
            raise ProjectError("--resume needs --run-dir of the run to continue")
        config_path = run_path / "config.toml"
    config = load_config(config_path, overrides)
    finetune.check_preset(config)  # a missing preset folder, before any backend starts
    plan = strategy.choose_plan(config, strategy.describe_environment())
    existed = run_path is not None and os.path.lexists(run_path)
    run = rundir.prepare(run_path, resume=resume, shared=not plan.is_chief,
                         min_free_mb=int(get(config, "runtime.min_free_disk_mb")))
    try:
        return _train(config, plan, run, resume)
    except BaseException:
        if not existed and plan.is_chief:
            _remove_if_empty(run.path)  # a run that failed before writing anything
        raise


def _remove_if_empty(folder: Path) -> None:
    """Delete ``folder`` (made by this command) when it holds no file, only empty folders."""
    rundir.release_locks()
    if folder.is_dir() and not folder.is_symlink() and not any(
            not entry.is_dir() or entry.is_symlink() for entry in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)


def _train(config: Config, plan: strategy.Plan, run: rundir.RunDir,
           resume: bool) -> dict[str, Any]:
    """The steps of a run, in order; each is a function below."""
    template = contract.load()
    scope = strategy.apply_plan(plan)
    if plan.is_chief:
        print(strategy.format_plan(plan), flush=True)
    test_source = find_test_split(config)  # checked before training, not after an hour of it
    splits = load_data(template, config, plan)
    epochs = int(get(config, "train.epochs"))
    initial_epoch = resume_epoch(run, resume)
    splits.train.start_at_epoch(initial_epoch)
    with scope:
        net, jit = build_and_compile(template, config, plan, splits, run, resume, initial_epoch)
    resolved = save_run_settings(config, plan, run, splits.meta, jit, net)
    recorder, callbacks = make_callbacks(template, config, plan, run, splits, epochs)
    # a pretrained backbone trains in two phases: frozen until freeze_epochs, then unfrozen
    boundary = finetune.freeze_epochs(config, net) if finetune.is_frozen(net) else 0
    # runtime.tracking: the chief logs params, epochs, final metrics, plots, best checkpoint
    with tracking.tracked(config if plan.is_chief else {"runtime": {"tracking": "none"}},
                          resolved, run.path, tracking.project_tags(splits.meta, plan)) as tracker:
        callbacks.append(tracking.epoch_callback(tracker))
        seconds = fit(net, config, plan, splits, recorder, callbacks, initial_epoch,
                      min(epochs, boundary) if boundary else epochs)
        if boundary and boundary < epochs and recorder.stopped_at is None \
                and recorder.nan_epoch is None:
            with scope:
                unfreeze_backbone(template, config, plan, splits, net, jit)
            seconds += fit(net, config, plan, splits, recorder, callbacks, boundary, epochs)
        raise_if_stopped(recorder, run)
        if plan.hosts > 1:  # lets every worker show it ended with the chief's weights
            rundir.atomic_write_json(run.path / "workers" / f"{plan.host_index}.json",
                                     strategy.weights_fingerprint(net))
        if not plan.is_chief:
            return {}
        return final_report(template, config, plan, run, splits, recorder, seconds, test_source)


def load_data(template: contract.Template, config: Config, plan: strategy.Plan
              ) -> pipeline.Splits:
    """The template's training and validation splits, at the global batch size; one line."""
    splits = template.data.load_splits(config, batch_size=plan.global_batch)
    print(f"data: {splits.train.num_samples} training and {splits.val.num_samples} validation "
          f"samples ({splits.meta.get('summary', '')})", flush=True)
    return splits


def resume_epoch(run: rundir.RunDir, resume: bool) -> int:
    """The epoch training starts from: after the last completed one with --resume, else 0."""
    return int(run.read_metrics().get("epochs_completed", 0)) if resume else 0


def build_and_compile(template: contract.Template, config: Config, plan: strategy.Plan,
                      splits: pipeline.Splits, run: rundir.RunDir, resume: bool,
                      initial_epoch: int) -> tuple[keras.Model, bool]:
    """The model (the template's, or the last checkpoint's with --resume), compiled; and
    whether it runs under XLA (inside the strategy's scope)."""
    if resume:
        net = rundir.load_model(run.last_checkpoint)
        print(f"resuming {run.path} after epoch {initial_epoch}", flush=True)
    else:
        net = template.model.build_model(config, splits.meta)
    # A pretrained backbone is frozen for the first train.freeze_epochs epochs; a checkpoint
    # stays in the phase it was saved in (_train unfreezes it when phase 1 is over).
    frozen = finetune.is_frozen(net) if resume else 0 < finetune.freeze_epochs(config, net)
    finetune.set_phase(net, frozen=frozen)
    jit = probe_xla(net, plan, splits.train[0][0])
    if not resume:
        compile_phase(template, config, plan, splits, net, jit, frozen)
    else:
        if finetune.find_backbone(net) is not None:
            finetune.reload_optimizer(net, run.last_checkpoint)
        if not jit:
            net.jit_compile = False
    return net, xla_kept(net, jit)


def compile_phase(template: contract.Template, config: Config, plan: strategy.Plan,
                  splits: pipeline.Splits, net: keras.Model, jit: bool, frozen: bool) -> None:
    """Compile ``net`` for its training phase (the whole run when it has no preset)."""
    net.compile(optimizer=phase_optimizer(config, plan, net, len(splits.train), frozen),
                jit_compile=jit, steps_per_execution=plan.steps_per_execution,
                **template.model.compile_args(config, splits.meta))


def phase_optimizer(config: Config, plan: strategy.Plan, net: keras.Model,
                    steps_per_epoch: int, frozen: bool) -> keras.optimizers.Optimizer:
    """The optimizer of this training phase: its schedule spans the phase's epochs, and a
    trainable pretrained backbone gets train.backbone_lr_multiplier."""
    epochs = int(get(config, "train.epochs"))
    if finetune.find_backbone(net) is None:
        return make_optimizer(config, plan, steps_per_epoch)
    boundary = min(epochs, finetune.freeze_epochs(config, net))
    if frozen:
        return make_optimizer(config, plan, steps_per_epoch, epochs=boundary)
    return make_optimizer(config, plan, steps_per_epoch, epochs=max(1, epochs - boundary),
                          scale=finetune.lr_multiplier(config))


def unfreeze_backbone(template: contract.Template, config: Config, plan: strategy.Plan,
                      splits: pipeline.Splits, net: keras.Model, jit: bool) -> None:
    """Phase 2: unfreeze the backbone (batch norm stays in inference mode) and compile
    again with the lower learning rate (inside the strategy's scope)."""
    finetune.set_phase(net, frozen=False)
    compile_phase(template, config, plan, splits, net, jit, frozen=False)
    if plan.is_chief:
        print(f"backbone unfrozen after epoch {finetune.freeze_epochs(config, net)}: "
              f"learning rate x {finetune.lr_multiplier(config):g}", flush=True)


def probe_xla(net: keras.Model, plan: strategy.Plan, sample: Any) -> bool:
    """Whether to compile with XLA: the plan's choice, unless XLA fails on ``sample``
    (TensorFlow only; the warning names the first failing layer)."""
    jit = plan.jit_compile
    if jit and plan.backend == "tensorflow":
        failure = strategy.xla_failure(net, sample)
        if failure:
            print(f"warning: XLA cannot compile {failure}; training without XLA", flush=True)
            jit = False
    return jit


def xla_kept(net: keras.Model, jit: bool) -> bool:
    """``jit``, unless Keras switched XLA off for unsupported layers (a warning names them)."""
    if jit and not net.jit_compile:
        print(f"warning: XLA is off: {strategy.describe_non_xla_layers(net)}", flush=True)
        return False
    return jit


def save_run_settings(config: Config, plan: strategy.Plan, run: rundir.RunDir,
                      meta: dict[str, Any], jit: bool, net: keras.Model | None = None
                      ) -> Config:
    """RUN/config.toml (resolved for this machine, with the XLA outcome) and RUN/meta.json
    (with the pretrained preset's or encoder's source and size, when the model has one); the
    resolved config."""
    resolved = strategy.resolve_config(config, plan)
    resolved["runtime"]["jit_compile"] = jit
    key, preset = finetune.preset_setting(resolved)  # model.preset or model.encoder
    if net is not None and preset and finetune.pretrained_backbone(net) is not None:
        resolved["model"][key.split(".")[1]] = finetune.source(preset)  # a folder, absolute
        meta = {**meta, **finetune.describe(net, preset)}
    if plan.is_chief:
        rundir.atomic_write_text(run.config, dump_toml(resolved))
        rundir.atomic_write_json(run.meta, meta)
    return resolved


def make_callbacks(template: contract.Template, config: Config, plan: strategy.Plan,
                   run: rundir.RunDir, splits: pipeline.Splits, epochs: int
                   ) -> tuple[RunRecorder, list[keras.callbacks.Callback]]:
    """The run recorder and every callback fit gets, in the order they must run."""
    monitor = str(get(config, "train.monitor"))
    recorder = RunRecorder(run, monitor=monitor,
                           mode=choice(config, "train.monitor_mode", ("min", "max")),
                           epochs=epochs, is_chief=plan.is_chief,
                           every_steps=int(get(config, "runtime.checkpoint_every_steps")))
    callbacks: list[keras.callbacks.Callback] = [recorder]
    if template.epoch_metrics is not None:  # exact val_* metrics, before anyone reads them
        callbacks.insert(0, ExactValidationMetrics(splits.val.unsharded(),
                                                   template.epoch_metrics(splits.meta)))
    patience = int(get(config, "train.early_stopping_patience"))
    if patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=recorder.mode, patience=patience))
    if plan.is_chief:
        callbacks += tensorboard(run)
    return recorder, callbacks


def fit(net: keras.Model, config: Config, plan: strategy.Plan, splits: pipeline.Splits,
        recorder: RunRecorder, callbacks: list[keras.callbacks.Callback], initial_epoch: int,
        epochs: int) -> float:
    """Train the remaining epochs, SIGTERM and Ctrl-C saving a checkpoint; the seconds taken."""
    started = time.perf_counter()
    if initial_epoch < epochs:
        # on a cluster, workers would stop at different steps and deadlock
        with _stop_on_signals(recorder.request_stop, enabled=plan.hosts == 1):
            net.fit(splits.train, validation_data=splits.val, epochs=epochs,
                    initial_epoch=initial_epoch, callbacks=callbacks,
                    verbose=int(get(config, "train.verbose")) if plan.is_chief else 0)
    return time.perf_counter() - started


def raise_if_stopped(recorder: RunRecorder, run: rundir.RunDir) -> None:
    """TrainingInterrupted after a signal (how to resume), TrainingStopped after a NaN loss."""
    if recorder.stopped_at is not None:
        epoch, step = recorder.stopped_at
        where = f"in epoch {epoch} after step {step}" if step else f"after epoch {epoch}"
        stopped = TrainingInterrupted(
            f"stopped by {recorder.stop_reason} {where}; checkpoint saved in "
            f"{run.checkpoints}; continue with: train --resume --run-dir {run.path}")
        if recorder.stop_reason == "Ctrl-C":
            stopped.exit_code = 130  # 128 + SIGINT
        raise stopped
    if recorder.nan_epoch is not None:
        kept = (f"the last good checkpoint is kept in {run.checkpoints}"
                if run.last_checkpoint.is_file() else "no checkpoint had been written yet")
        raise TrainingStopped(
            f"loss became NaN or infinite in epoch {recorder.nan_epoch}; training stopped and "
            f"{kept} (try a lower train.learning_rate)")


def final_report(template: contract.Template, config: Config, plan: strategy.Plan,
                 run: rundir.RunDir, splits: pipeline.Splits, recorder: RunRecorder,
                 seconds: float, test_source: Path | None) -> dict[str, Any]:
    """Score the best checkpoint on validation (and a test split), write metrics.json and
    the training curves, print the summary; metrics.json's contents."""
    with strategy.no_distribution():  # the report runs on this process alone, on all of val
        best = rundir.load_model(rundir.model_checkpoint(run))
        final = template.report.report(best, splits.val.unsharded(), splits.meta, run.plots)
    plots.training_curves(run.history, run.plots / "training_curves.png")
    epochs_completed = len(recorder.rows)
    # "final" is scored on the validation rows that chose the checkpoint (and fraud's
    # threshold); a test split, when configured, is scored once, afterwards.
    recorder.write_metrics(epochs_completed, final=final, train_seconds=round(seconds, 1),
                           scored_on="validation")
    test = None
    if test_source is not None:
        with strategy.no_distribution():
            test = score_test_split(template, config, test_source, best,
                                    contract.other_data_meta(splits.meta, final),
                                    plan.global_batch, run.plots / "test")
        recorder.write_metrics(epochs_completed, test=test, scored_on="test")
    headline = template.headline(splits.meta)  # per task, or the template's HEADLINE
    print(summary(headline, final, test, best_epoch=recorder.best.get("epoch", "?"),
                  epochs=epochs_completed, seconds=seconds, test_key=_test_key(config)))
    print(f"run directory: {run.path}\nplots: {run.plots}")
    return run.read_metrics()


def summary(headline: str, final: dict[str, Any], test: dict[str, Any] | None, *,
            best_epoch: Any, epochs: int, seconds: float, test_key: str | None) -> str:
    """The lines train prints at the end: the headline, its chance level, the test score."""
    lines = [f"\nvalidation {headline}: {_number(final.get(headline))} "
             f"(best epoch {best_epoch} of {epochs}, {seconds:.0f} s)"]
    if f"chance_{headline}" in final:  # majority class, constant score, empty mask...
        lines.append(f"chance level: {_number(final[f'chance_{headline}'])} "
                     f"(what a model that learned nothing scores)")
    if test is None:
        lines.append("these are validation numbers: the same rows chose the best checkpoint; "
                     f"set {test_key or 'a test split'} for a score on data training never saw")
    else:
        lines.append(f"test {headline}: {_number(test.get(headline))} on {test['samples']} "
                     f"samples of {test['data']} (scored once, after training)")
        if f"chance_{headline}" in test:
            lines.append(f"test chance level: {_number(test[f'chance_{headline}'])}")
    return "\n".join(lines)


def _test_key(config: Config) -> str | None:
    """The template's test-split key: data.test_dir (folders) or data.test_path (a table)."""
    for key in ("data.test_dir", "data.test_path"):
        try:
            get(config, key)
        except ConfigError:
            continue
        return key
    return None


def find_test_split(config: Config) -> Path | None:
    """The configured test data, checked to exist; None when the key is "" or absent."""
    key = _test_key(config)
    named = str(get(config, key)) if key else ""
    if not key or not named:
        return None
    path = Path(named)
    if not path.exists() and not path.is_absolute() and key == "data.test_path":
        path = Path(get(config, "data.dir")) / named  # a bare table name, like data.path
    if not path.exists():
        raise DataError(f"{key} = {named!r} does not exist (set {key} = \"\" for no test split)")
    return path


def score_test_split(template: contract.Template, config: Config, path: Path, net: keras.Model,
                     meta: dict[str, Any], batch_size: int, plots_dir: Path) -> dict[str, Any]:
    """The report on the test data, encoded with the run's meta; scored once, at the end."""
    batches = template.data.load_eval(config, path, meta, batch_size=batch_size)
    return {"data": str(path), "samples": batches.num_samples,
            **template.report.report(net, batches, meta, plots_dir)}


@contextmanager
def _stop_on_signals(request_stop: Callable[[str], None], enabled: bool) -> Iterator[None]:
    """While training: SIGTERM and Ctrl-C save at the end of the current step and stop.

    A second Ctrl-C exits at once (code 130) without saving. The previous handlers
    come back afterwards, so Ctrl-C during the final report interrupts as usual.
    """
    if not enabled:
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            if presses:
                os.write(2, b"\ninterrupted again: exiting without saving\n")
                os._exit(130)
            presses.append(signum)
            os.write(2, b"\nCtrl-C: saving a checkpoint after this step "
                        b"(press Ctrl-C again to quit at once)\n")
        request_stop("Ctrl-C" if signum == signal.SIGINT else "SIGTERM")

    presses: list[int] = []
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _number(value: Any) -> str:
    """A metric for the summary line; None means undefined on this data."""
    return "undefined" if value is None else f"{float(value):.4f}"


def make_optimizer(config: Config, plan: strategy.Plan, steps_per_epoch: int, *,
                   epochs: int | None = None, scale: float = 1.0
                   ) -> keras.optimizers.Optimizer:
    """AdamW (or SGD) with linear warm-up then cosine decay, from config; the schedule spans
    ``epochs`` (default train.epochs) and peaks at the plan's learning rate x ``scale``."""
    epochs = int(get(config, "train.epochs")) if epochs is None else epochs
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total - 1, math.ceil(float(get(config, "train.warmup_epochs")) * steps_per_epoch))
    peak = plan.learning_rate * scale
    rate: float | keras.optimizers.schedules.LearningRateSchedule = peak
    if choice(config, "train.schedule", ("cosine", "constant")) == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup > 0 else peak,
            decay_steps=max(1, total - warmup), alpha=0.01,
            warmup_target=peak if warmup > 0 else None,
            warmup_steps=warmup)
    name = choice(config, "train.optimizer", ("adamw", "adam", "sgd"))
    decay = float(get(config, "train.weight_decay"))
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=decay or None)
    if name == "adam":
        return keras.optimizers.Adam(rate)
    return keras.optimizers.AdamW(rate, weight_decay=decay)
