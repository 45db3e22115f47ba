"""``python -m PACKAGE bench``: throughput of the real input pipeline and training step.

For each variant (precision x XLA) it builds the template's model, trains for
``bench.steps`` steps from the same pipeline ``train`` uses, and reports
steady-state samples/s, step time, compile time and model-FLOPs utilisation.
The pipeline alone is measured too: it must outrun the device.
Results go to ``bench.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import data, model, rundir, strategy
from .config import Config, get, load_config
from .errors import ConfigError
from .latency import format_latency, latency
from .measures import at_input_shape, forward_flops, peak_flops, pipeline_throughput


class _StepClock(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.marks.append(time.perf_counter())


def run_bench(config_path: Path, overrides: list[str], out: Path,
              run_path: Path | None = None) -> dict[str, Any]:
    """Measure every variant and inference latency; write ``out`` (bench.json).

    With ``run_path``, latency is measured on that run's trained model instead of
    a freshly built one of the same architecture.
    """
    config = load_config(config_path, overrides)
    base = strategy.choose_plan(config, strategy.describe_environment())
    splits = data.load_splits(config, batch_size=base.global_batch)
    steps = int(get(config, "bench.steps"))
    warmup = int(get(config, "bench.warmup_steps"))
    if steps < 1 or warmup < 1:
        raise ConfigError("bench.steps and bench.warmup_steps must be at least 1")

    results: dict[str, Any] = {
        "device": base.device_summary, "backend": base.backend,
        "global_batch": base.global_batch,
        "pipeline_samples_per_s": pipeline_throughput(splits.train, steps + warmup),
        "variants": [],
    }
    for precision, jit in variants(config, base):
        plan = strategy.with_overrides(base, precision=precision, jit_compile=jit)
        result = measure(config, plan, splits, steps, warmup)
        if "tokens_per_sample" in splits.meta:  # sequence models: tokens/s is the usual unit
            result["tokens_per_s"] = round(result["samples_per_s"]
                                           * float(splits.meta["tokens_per_sample"]), 1)
        results["variants"].append(result)
        print(_row(results["variants"][-1]), flush=True)
    results["inference"] = measure_inference(config, base, splits, run_path)
    print(format_latency(results["inference"]), flush=True)
    rundir.atomic_write_text(out, json.dumps(results, indent=2) + "\n")
    print(f"pipeline alone: {results['pipeline_samples_per_s']:,.0f} samples/s; wrote {out}")
    return results


def variants(config: Config, base: strategy.Plan) -> list[tuple[str, bool]]:
    """Which (precision, XLA) pairs to train: ``bench.variants`` is "auto", "none" or a list
    like "float32:true,mixed_bfloat16:true". Auto: float32 vs the chosen mixed precision,
    XLA on and off where the backend allows it."""
    asked = str(get(config, "bench.variants"))
    if asked == "none":
        return []
    if asked != "auto":
        pairs = []
        for item in asked.split(","):
            precision, _, jit = item.strip().partition(":")
            if precision not in strategy.PRECISIONS[1:] or jit not in ("true", "false"):
                raise ConfigError(f"bench.variants: {item!r} is not PRECISION:true|false")
            pairs.append((precision, jit == "true"))
        return pairs
    precisions = ["float32"] + ([base.precision] if base.precision != "float32" else [])
    jits = [True] if base.backend == "jax" else [False, True]
    return [(p, j) for p in precisions for j in jits]


def measure(config: Config, plan: strategy.Plan, splits: Any, steps: int, warmup: int
            ) -> dict[str, Any]:
    """Train at least ``warmup + steps`` steps from the real pipeline; time the last ones.

    Steps run ``plan.steps_per_execution`` at a time, as in ``train``; the clock
    ticks once per execution.
    """
    keras.mixed_precision.set_global_policy(plan.precision)
    keras.utils.set_random_seed(plan.seed)
    net = model.build_model(config, splits.meta)
    per_epoch = len(splits.train)
    spe = max(1, min(plan.steps_per_execution, per_epoch))
    net.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=plan.jit_compile,
                steps_per_execution=spe, **model.compile_args(config, splits.meta))
    warm_runs = -(-warmup // spe)
    timed_runs = max(2, -(-steps // spe))
    runs_per_epoch = per_epoch // spe
    epochs = -(-(warm_runs + timed_runs) // runs_per_epoch)
    clock = _StepClock()
    started = time.perf_counter()
    net.fit(splits.train, epochs=epochs, steps_per_epoch=runs_per_epoch * spe,
            callbacks=[clock], verbose=0)
    marks = clock.marks[:warm_runs + timed_runs]
    compile_s = marks[0] - started
    step_s = float(np.median(np.diff(marks[warm_runs - 1:]))) / spe
    samples_per_s = plan.global_batch / step_s
    flops, source = training_flops_per_sample(net, splits.train[0][0])
    peak = peak_flops(plan.device_summary, plan.precision)
    return {
        "precision": plan.precision, "jit_compile": bool(net.jit_compile),
        "steps_per_execution": spe,
        "samples_per_s": round(samples_per_s, 1), "step_ms": round(step_s * 1e3, 3),
        "compile_s": round(compile_s, 2), "train_flops_per_sample": flops,
        "flops_counted_by": source,
        "mfu": round(flops * samples_per_s / peak, 4) if peak and flops else None,
    }


def training_flops_per_sample(net: keras.Model, sample_inputs: Any) -> tuple[int, str]:
    """3x the forward FLOPs per sample: XLA's own count on JAX, else counted from layers."""
    if keras.backend.backend() == "jax":
        try:
            return 3 * _xla_forward_flops(net, sample_inputs), "xla"
        except Exception as err:  # cost analysis is best effort across jax versions
            print(f"note: XLA cost analysis unavailable ({type(err).__name__}); "
                  "counting FLOPs from layer shapes")
    try:
        return 3 * forward_flops(net), "layers"
    except ValueError:  # a fully convolutional model: unknown spatial dimensions
        pass
    try:
        return 3 * forward_flops(at_input_shape(net, sample_inputs)), "layers"
    except Exception as err:  # a model clone_model cannot rebuild: report no MFU, not a crash
        print(f"note: FLOPs not counted ({type(err).__name__}: {err}); MFU not reported")
        return 0, "unknown"


def _xla_forward_flops(net: keras.Model, sample_inputs: Any) -> int:
    import jax

    trainable = [v.value for v in net.trainable_variables]
    frozen = [v.value for v in net.non_trainable_variables]

    def forward(trainable: Any, frozen: Any, inputs: Any) -> Any:
        return net.stateless_call(trainable, frozen, inputs, training=False)[0]

    analysis = jax.jit(forward).lower(trainable, frozen, sample_inputs).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    batch = len(next(iter(sample_inputs.values())) if isinstance(sample_inputs, dict)
                else sample_inputs)
    flops = float((analysis or {}).get("flops", 0.0))
    if flops <= 0:
        raise ValueError("no flops in the cost analysis")
    return int(flops / batch)


def measure_inference(config: Config, plan: strategy.Plan, splits: Any,
                      run_path: Path | None) -> dict[str, Any]:
    """Single-sample latency and batch throughput of the model, on real validation inputs."""
    keras.mixed_precision.set_global_policy(plan.precision)
    if run_path is not None:
        net = rundir.load_model(rundir.model_checkpoint(rundir.open_existing(run_path)))
    else:
        net = model.build_model(config, splits.meta)
    return {"model": "trained" if run_path else "untrained", "precision": plan.precision,
            **latency(net, splits.val[0][0], calls=int(get(config, "bench.latency_calls")),
                      warmup=int(get(config, "bench.latency_warmup")),
                      large_batch=int(get(config, "bench.latency_batch")))}


def _row(result: dict[str, Any]) -> str:
    mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "n/a (CPU)"
    tokens = f" ({result['tokens_per_s']:,.0f} tokens/s)" if "tokens_per_s" in result else ""
    return (f"{result['precision']:>15} XLA {'on ' if result['jit_compile'] else 'off'} "
            f"{result['samples_per_s']:>12,.1f} samples/s{tokens}  "
            f"{result['step_ms']:>9.2f} ms/step  "
            f"compile {result['compile_s']:>6.1f} s  MFU {mfu}")
