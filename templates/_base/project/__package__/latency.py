"""Inference latency: single-sample p50 / p99 and samples/s at batch 1 and a large batch.

After warm-up it times ``calls`` single-sample calls (the real-time case: one
camera frame or one transaction in, one answer out), then whole batches of
``large_batch`` samples (offline throughput). Each call goes through the
compiled predict function and returns numpy, so the time includes the host <->
device copies a serving process would pay.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def latency(model: Any, sample_inputs: Any, *, calls: int = 200, warmup: int = 20,
            large_batch: int = 64) -> dict[str, Any]:
    """Batch-1 latency percentiles, and samples/s at batch 1 and at ``large_batch``.

    ``sample_inputs`` is one batch of model inputs (an array or a dict of arrays).
    """
    if calls < 1 or warmup < 1 or large_batch < 1:
        raise ValueError("calls, warmup and large_batch must be at least 1")
    one = _take(sample_inputs, np.arange(1))
    for _ in range(warmup):
        model.predict_on_batch(one)
    seconds = np.empty(calls)
    for index in range(calls):
        started = time.perf_counter()
        _to_numpy(model.predict_on_batch(one))
        seconds[index] = time.perf_counter() - started

    size = len(next(iter(sample_inputs.values())) if isinstance(sample_inputs, dict)
               else sample_inputs)
    big = _take(sample_inputs, np.arange(large_batch) % size)
    for _ in range(3):
        model.predict_on_batch(big)  # compiles for this shape
    repeats = max(5, -(-calls // large_batch))
    started = time.perf_counter()
    for _ in range(repeats):
        _to_numpy(model.predict_on_batch(big))
    big_seconds = (time.perf_counter() - started) / repeats
    return {
        "calls_timed": calls,
        "batch1_p50_ms": round(float(np.percentile(seconds, 50)) * 1e3, 3),
        "batch1_p99_ms": round(float(np.percentile(seconds, 99)) * 1e3, 3),
        "batch1_samples_per_s": round(float(1.0 / seconds.mean()), 1),
        "large_batch": large_batch,
        "large_batch_samples_per_s": round(large_batch / big_seconds, 1),
    }


def format_latency(result: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (f"inference batch 1 over {result['calls_timed']} calls: "
            f"p50 {result['batch1_p50_ms']:.2f} ms, p99 {result['batch1_p99_ms']:.2f} ms "
            f"({result['batch1_samples_per_s']:,.0f} samples/s); batch {result['large_batch']}: "
            f"{result['large_batch_samples_per_s']:,.0f} samples/s")


def _take(inputs: Any, picked: np.ndarray) -> Any:
    if isinstance(inputs, dict):
        return {key: np.asarray(value)[picked] for key, value in inputs.items()}
    return np.asarray(inputs)[picked]


def _to_numpy(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return {key: np.asarray(value) for key, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(value) for value in outputs]
    return np.asarray(outputs)
