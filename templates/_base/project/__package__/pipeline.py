"""Batches of in-memory numpy arrays for ``fit``, the same on every backend.

Images stay uint8 here: they cross to the device at a quarter of the float32
size and are normalised and augmented inside the compiled model. No tf.data,
so the JAX backend works on machines without TensorFlow.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

# (this process, number of processes): set once by the strategy on multi-host runs.
_PROCESS_SHARD = (0, 1)

BatchTransform = Callable[[Any, Any, np.random.Generator], tuple[Any, Any]]


def one_hot(labels: Any, num_classes: int) -> np.ndarray:
    """float32 one-hot rows for integer class indices (callers check the range)."""
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


class Batches(keras.utils.PyDataset):
    """Shuffled (training) or ordered (evaluation) batches of ``(inputs, targets)``.

    ``inputs`` and ``targets`` are arrays or dicts of arrays with the same first dimension.
    Training batches drop the remainder so every step has the same shape and
    XLA compiles once; evaluation batches keep every sample on a single process.

    With several processes (multi-host training) every process builds the same
    global batches from the same seed and yields only its own slice of each, so
    the global batch is the same whatever the number of processes. Evaluation
    then drops the remainder too, so every process runs the same number of steps.
    """

    def __init__(self, inputs: Any, targets: Any, batch_size: int, *,
                 training: bool, seed: int = 0, transform: BatchTransform | None = None,
                 workers: int = 1, **kwargs: Any) -> None:
        super().__init__(workers=workers, use_multiprocessing=False,
                         max_queue_size=max(8, 2 * workers), **kwargs)
        self.inputs = inputs
        self.targets = targets
        self.batch_size = int(batch_size)
        self.training = training
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.shard_index, self.shard_count = _PROCESS_SHARD
        count = _length(targets)
        if count == 0:
            raise ValueError("no samples to batch")
        if training and count < self.batch_size:
            self.batch_size = count  # tiny datasets: one full batch rather than none
        self.order = np.arange(count)
        self.on_epoch_end()

    def __len__(self) -> int:
        count = _length(self.targets)
        if self.training or self.shard_count > 1:
            return count // self.batch_size
        return math.ceil(count / self.batch_size)

    @property
    def num_samples(self) -> int:
        return _length(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        picked = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.shard_count > 1:
            local = len(picked) // self.shard_count
            picked = picked[self.shard_index * local:(self.shard_index + 1) * local]
        inputs = _take(self.inputs, picked)
        targets = _take(self.targets, picked)
        if self.transform is not None and self.training:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            inputs, targets = self.transform(inputs, targets, rng)
        return inputs, targets

    def start_at_epoch(self, epoch: int) -> None:
        """Shuffle as an uninterrupted run would for ``epoch`` (used by --resume)."""
        self.epoch = epoch
        self.on_epoch_end()

    def unsharded(self) -> Batches:
        """The same batches in full, for work one process does alone (reports)."""
        whole = copy.copy(self)
        whole.shard_index, whole.shard_count = 0, 1
        return whole

    def on_epoch_end(self) -> None:
        if self.training:
            rng = np.random.default_rng((self.seed, self.epoch))
            self.order = rng.permutation(_length(self.targets))
        self.epoch += 1


def set_process_shard(index: int, count: int) -> None:
    """Make Batches built from now on yield process ``index``'s slice of ``count``."""
    global _PROCESS_SHARD
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is outside 0..{count - 1}")
    _PROCESS_SHARD = (index, count)


def _length(arrays: Any) -> int:
    return len(next(iter(arrays.values()))) if isinstance(arrays, dict) else len(arrays)


def _take(inputs: Any, picked: np.ndarray) -> Any:
    if isinstance(inputs, dict):
        return {key: value[picked] for key, value in inputs.items()}
    return inputs[picked]


def stratified_split(labels: np.ndarray, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with about ``fraction`` of every class in val."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        take = max(1, round(len(members) * fraction)) if len(members) > 1 else 0
        val.append(members[:take])
        train.append(members[take:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


class Splits:
    """What a template's ``data.load_splits`` returns."""

    def __init__(self, train: Batches, val: Batches, meta: dict[str, Any]) -> None:
        self.train = train
        self.val = val
        self.meta = meta
