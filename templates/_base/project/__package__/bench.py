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

# Dense peak FLOP/s per device name fragment: (half precision, TF32/float32).
PEAK_FLOPS = {
    "H200": (989e12, 494e12), "H100": (989e12, 494e12), "A100": (312e12, 156e12),
    "L40S": (362e12, 183e12), "L4": (121e12, 60e12), "A10": (125e12, 62e12),
    "V100": (125e12, 15.7e12), "T4": (65e12, 8.1e12),
}


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
    env = strategy.describe_environment()
    base = strategy.choose_plan(config, env)
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
    for precision, jit in variants(config, env, base):
        plan = strategy.with_overrides(base, precision=precision, jit_compile=jit)
        results["variants"].append(measure(config, plan, splits, steps, warmup))
        print(_row(results["variants"][-1]), flush=True)
    results["inference"] = measure_inference(config, base, splits, run_path)
    print(format_latency(results["inference"]), flush=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"pipeline alone: {results['pipeline_samples_per_s']:,.0f} samples/s; wrote {out}")
    return results


def variants(config: Config, env: strategy.Environment, base: strategy.Plan
             ) -> list[tuple[str, bool]]:
    """float32 vs the chosen precision, XLA on and off where the backend allows it."""
    asked = get(config, "bench.variants")
    if asked != "auto":
        return [(str(p), bool(j)) for p, j in (v.split(":") for v in asked)]
    precisions = ["float32"] + ([base.precision] if base.precision != "float32" else [])
    jits = [True] if base.backend == "jax" else [False, True]
    return [(p, j) for p in precisions for j in jits]


def measure(config: Config, plan: strategy.Plan, splits: Any, steps: int, warmup: int
            ) -> dict[str, Any]:
    """Train ``warmup + steps`` steps and time the last ``steps``."""
    keras.mixed_precision.set_global_policy(plan.precision)
    keras.utils.set_random_seed(plan.seed)
    net = model.build_model(config, splits.meta)
    net.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=plan.jit_compile,
                steps_per_execution=1, **model.compile_args(config, splits.meta))
    clock = _StepClock()
    total = warmup + steps
    batches_per_epoch = len(splits.train)
    epochs = -(-total // batches_per_epoch)
    started = time.perf_counter()
    net.fit(splits.train, epochs=epochs, steps_per_epoch=min(total, batches_per_epoch),
            callbacks=[clock], verbose=0)
    marks = clock.marks[:total]
    compile_s = marks[0] - started
    timed = np.diff(marks[warmup - 1:])
    step_s = float(np.median(timed))
    samples_per_s = plan.global_batch / step_s
    flops = 3 * forward_flops(net)  # forward + backward ~ 3x forward
    peak = peak_flops(plan.device_summary, plan.precision)
    return {
        "precision": plan.precision, "jit_compile": bool(net.jit_compile),
        "samples_per_s": round(samples_per_s, 1), "step_ms": round(step_s * 1e3, 3),
        "compile_s": round(compile_s, 2), "train_flops_per_sample": flops,
        "mfu": round(flops * samples_per_s / peak, 4) if peak and flops else None,
    }


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


def pipeline_throughput(batches: Any, count: int) -> float:
    """Samples/s of the input pipeline alone (what the device could be fed)."""
    started = time.perf_counter()
    samples = 0
    for index in range(count):
        batch = batches[index % len(batches)]  # (inputs, targets[, sample_weights])
        samples += len(batch[1])
    return round(samples / (time.perf_counter() - started), 1)


def peak_flops(device_summary: str, precision: str) -> float | None:
    """Dense peak FLOP/s of the device for ``precision``; None when unknown (CPU)."""
    for fragment, (half, single) in PEAK_FLOPS.items():
        if fragment in device_summary:
            return half if precision.startswith("mixed") else single
    return None


def forward_flops(layer: Any) -> int:
    """Multiply-adds x 2 of one forward pass per sample, counted from layer shapes.

    Counts convolutions, dense and einsum-dense layers, where nearly all the
    work of CNNs, MLPs and Transformers is. Attention score products (a few
    percent at sequence 128) are not counted, so MFU errs low. Recurses into
    nested models.
    """
    total = 0
    for sub in getattr(layer, "layers", []) or []:
        total += forward_flops(sub)
    if getattr(layer, "layers", None):
        return total
    kernel = getattr(layer, "kernel", None)
    try:
        out_shape = layer.output.shape
    except (AttributeError, ValueError):
        return 0
    if kernel is None or out_shape is None:
        return 0
    kernel_size = int(np.prod(kernel.shape))
    name = type(layer).__name__
    if name.startswith(("Conv", "DepthwiseConv", "SeparableConv")) and "Transpose" not in name:
        return 2 * int(np.prod(out_shape[1:-1])) * kernel_size
    if name in ("Dense", "EinsumDense"):
        # The kernel's trailing dims that reappear in the output are produced per
        # position; the rest are contracted over.
        shared = 0
        while (shared < min(len(kernel.shape), len(out_shape) - 1)
               and kernel.shape[-1 - shared] == out_shape[-1 - shared]):
            shared += 1
        contracted = kernel_size // max(1, int(np.prod(kernel.shape[len(kernel.shape) - shared:])))
        return 2 * int(np.prod(out_shape[1:])) * contracted
    if "Transpose" in name:
        positions = int(np.prod(layer.input.shape[1:-1]))
        return 2 * positions * kernel_size
    return 0


def _row(result: dict[str, Any]) -> str:
    mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "n/a (CPU)"
    return (f"{result['precision']:>15} XLA {'on ' if result['jit_compile'] else 'off'} "
            f"{result['samples_per_s']:>12,.1f} samples/s  {result['step_ms']:>9.2f} ms/step  "
            f"compile {result['compile_s']:>6.1f} s  MFU {mfu}")
