"""Real-time inference figures: single-frame latency (p50 / p99) and frames/s.

    python -m PACKAGE.latency --run-dir RUN [--frames 200]     # writes RUN/latency.json

``latency(model, sample_batch)`` is the measurement itself, also used by ``bench``:
after warm-up it times ``frames`` single-frame calls (batch 1, the real-time case: one
camera frame in, one command out) and then whole batches of ``large_batch`` frames
(offline throughput). Each call goes through the compiled predict function and
returns numpy, so the time includes the host <-> device copies a controller would pay.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def latency(model: Any, sample_batch: np.ndarray, *, frames: int = 200, warmup: int = 20,
            large_batch: int = 64) -> dict[str, Any]:
    """Batch-1 latency percentiles and frames/s at batch 1 and at ``large_batch``."""
    if frames < 1 or warmup < 1 or large_batch < 1:
        raise ValueError("frames, warmup and large_batch must be at least 1")
    sample_batch = np.asarray(sample_batch)
    one = sample_batch[:1]
    for _ in range(warmup):
        model.predict_on_batch(one)
    seconds = np.empty(frames)
    for index in range(frames):
        started = time.perf_counter()
        np.asarray(model.predict_on_batch(one))
        seconds[index] = time.perf_counter() - started

    repeats = -(-large_batch // len(sample_batch))
    big = np.concatenate([sample_batch] * repeats)[:large_batch]
    for _ in range(3):
        model.predict_on_batch(big)  # compiles for this shape
    calls = max(5, -(-frames // large_batch))
    started = time.perf_counter()
    for _ in range(calls):
        np.asarray(model.predict_on_batch(big))
    big_seconds = (time.perf_counter() - started) / calls
    return {
        "frames_timed": frames,
        "batch1_p50_ms": round(float(np.percentile(seconds, 50)) * 1e3, 3),
        "batch1_p99_ms": round(float(np.percentile(seconds, 99)) * 1e3, 3),
        "batch1_mean_ms": round(float(seconds.mean()) * 1e3, 3),
        "batch1_frames_per_s": round(float(1.0 / seconds.mean()), 1),
        "large_batch": large_batch,
        "large_batch_frames_per_s": round(large_batch / big_seconds, 1),
    }


def format_latency(result: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (f"latency batch 1 over {result['frames_timed']} frames: "
            f"p50 {result['batch1_p50_ms']:.2f} ms, p99 {result['batch1_p99_ms']:.2f} ms "
            f"({result['batch1_frames_per_s']:,.0f} frames/s); batch {result['large_batch']}: "
            f"{result['large_batch_frames_per_s']:,.0f} frames/s")


def run_latency(run_path: Path, frames: int | None = None) -> dict[str, Any]:
    """Measure the run's best model on random frames of its input size; write latency.json."""
    from . import rundir
    from .config import get, load_config

    run = rundir.open_existing(run_path)
    config = load_config(run.config)
    os.environ.setdefault("KERAS_BACKEND", str(get(config, "runtime.backend")))
    import keras

    from . import augment  # noqa: F401  (registers the custom layers load_model needs)

    meta = rundir.read_meta(run)
    net = keras.models.load_model(rundir.model_checkpoint(run))
    frames = frames or int(get(config, "predict.latency_frames"))
    sample = np.random.default_rng(0).integers(0, 256, (8, *meta["image_shape"]), dtype=np.uint8)
    result = {"backend": keras.backend.backend(), "model": net.name,
              **latency(net, sample, frames=frames,
                        warmup=int(get(config, "predict.latency_warmup")),
                        large_batch=int(get(config, "predict.latency_batch")))}
    rundir.atomic_write_json(run.path / "latency.json", result)
    print(format_latency(result))
    print(f"written {run.path / 'latency.json'}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.latency",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=None, help="timed batch-1 frames")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .errors import ProjectError

    try:
        run_latency(args.run_dir, args.frames)
    except ProjectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
