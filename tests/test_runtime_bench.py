"""Pieces of ``bench`` that need no model: pipeline timing and the peak-FLOPs table."""

from __future__ import annotations

import time

from runtime import load

bench = load("measures")


class CountingBatches:
    """Batches of 10 samples that record which indices were asked for."""

    def __init__(self, length: int, delay: float = 0.0) -> None:
        self.length = length
        self.delay = delay
        self.asked: list[int] = []

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        self.asked.append(index)
        time.sleep(self.delay)
        return [0] * 10, [0] * 10


def test_pipeline_throughput_skips_warmup_and_times_long_enough() -> None:
    batches = CountingBatches(length=5)
    rate = bench.pipeline_throughput(batches, 3, warmup=2, min_seconds=0.0)
    assert batches.asked == [0, 1, 2, 3, 4]  # two untimed, then three timed, wrapping around
    assert rate > 0

    slow = CountingBatches(length=4, delay=0.01)
    rate = bench.pipeline_throughput(slow, 1, warmup=1, min_seconds=0.1)
    timed = len(slow.asked) - 1
    assert timed >= 5  # kept going until 0.1 s had passed, not just the one batch asked for
    assert rate < 10 / 0.01  # each batch of 10 samples took at least 10 ms


def test_peak_flops_know_the_reference_cards_and_not_the_cpu() -> None:
    h100 = bench.peak_flops("NVIDIA H100 80GB HBM3", "mixed_bfloat16")
    assert h100 is not None and h100 > bench.peak_flops("NVIDIA H100 80GB HBM3", "float32")
    assert bench.peak_flops("cpu", "float32") is None


def test_forward_flops_counts_dense_and_convolution_work() -> None:
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions x 3*3*3*4 MACs
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 4*5 MACs
    net = keras.Model(inputs, outputs)
    assert bench.forward_flops(net) == 2 * (8 * 8 * 3 * 3 * 3 * 4) + 2 * (4 * 5)


def test_fully_convolutional_models_are_counted_at_the_input_shape() -> None:
    import keras
    import numpy as np
    import pytest

    inputs = keras.Input((None, None, 1), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    outputs = keras.layers.Conv2D(1, 1)(x)
    net = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="unknown output shape"):
        bench.forward_flops(net)
    fixed = bench.at_input_shape(net, np.zeros((2, 16, 16, 1), np.uint8))
    positions = 16 * 16
    assert bench.forward_flops(fixed) == 2 * positions * (3 * 3 * 1 * 2 + 1 * 1 * 2 * 1)
