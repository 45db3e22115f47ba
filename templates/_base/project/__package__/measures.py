"""Measurements ``bench`` makes that need no template code: pipeline speed and FLOPs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

# Dense peak FLOP/s per device name fragment: (half precision, TF32/float32).
PEAK_FLOPS = {
    "H200": (989e12, 494e12), "H100": (989e12, 494e12), "A100": (312e12, 156e12),
    "L40S": (362e12, 183e12), "L4": (121e12, 60e12), "A10": (125e12, 62e12),
    "V100": (125e12, 15.7e12), "T4": (65e12, 8.1e12),
}


def pipeline_throughput(batches: Any, count: int, *, warmup: int = 2,
                        min_seconds: float = 0.5) -> float:
    """Samples/s of the input pipeline alone (what the device could be fed).

    The first ``warmup`` batches (first touches of memory, lazy caches) are not
    timed; then at least ``count`` batches and at least ``min_seconds`` are, so a
    fast pipeline is not judged on a few milliseconds of a busy machine.
    """
    for index in range(warmup):
        batches[index % len(batches)]
    started = time.perf_counter()
    samples = index = 0
    while index < count or time.perf_counter() - started < min_seconds:
        batch = batches[(warmup + index) % len(batches)]  # (inputs, targets[, weights])
        samples += len(batch[1])
        index += 1
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
    if any(dim is None for dim in out_shape[1:]):
        raise ValueError(f"layer {layer.name!r} has an unknown output shape {out_shape}; "
                         "count on a model built at a fixed input shape (at_input_shape)")
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


def at_input_shape(net: Any, sample_inputs: Any) -> Any:
    """A copy of a functional ``net`` built for ``sample_inputs``' exact shape.

    Fully convolutional models (U-Nets) take any image size, so their layers'
    output shapes have unknown dimensions and cannot be counted; the copy's can.
    """
    import keras

    if isinstance(sample_inputs, dict):
        inputs = {name: keras.Input(np.shape(value)[1:], dtype=str(np.asarray(value).dtype),
                                    name=name) for name, value in sample_inputs.items()}
    else:
        sample = np.asarray(sample_inputs)
        inputs = keras.Input(sample.shape[1:], dtype=str(sample.dtype))
    return keras.models.clone_model(net, input_tensors=inputs)
