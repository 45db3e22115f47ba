"""A logistic-regression baseline on the same features, in numpy.

It sees what the network sees (standardised numeric features and one weight
per category id, i.e. one-hot categoricals) and is fitted on the same training
rows with plain, unweighted log loss. ``report`` puts its PR-AUC beside the
network's: a network that does not beat it is not worth serving. It is fitted
once, by ``train``, and saved in RUN/meta.json; ``evaluate`` reads it back
(``check_baseline``) and never fits it again.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .errors import RunDirError


def fit_logistic_regression(inputs: dict[str, np.ndarray], labels: np.ndarray,
                            features: dict[str, Any], *, seed: int, epochs: int = 4,
                            batch_size: int = 2048, learning_rate: float = 0.02,
                            l2: float = 1e-4) -> dict[str, Any]:
    """Fit by mini-batch Adam with cosine decay; returns JSON-ready weights."""
    started = time.perf_counter()
    x = standardise(inputs.get("numeric"), features, len(labels))
    ids = [inputs[spec["input"]][:, 0] for spec in features["categorical"]]
    sizes = [len(spec["vocabulary"]) + 2 for spec in features["categorical"]]
    y = labels.astype(np.float64)
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    # Parameters in one vector: bias, numeric weights, then each category table.
    theta = np.zeros(1 + x.shape[1] + sum(sizes))
    theta[0] = np.log(rate / (1 - rate))
    offsets = np.cumsum([1 + x.shape[1], *sizes])
    first, second = np.zeros_like(theta), np.zeros_like(theta)
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(y))
    total = epochs * (len(y) // batch_size)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y) - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            error = _sigmoid(_logits(theta, x[rows], [c[rows] for c in ids], offsets)) - y[rows]
            grad = np.empty_like(theta)
            grad[0] = error.mean()
            grad[1:offsets[0]] = x[rows].T @ error / len(rows)
            for column, begin, size in zip(ids, offsets[:-1], sizes, strict=True):
                grad[begin:begin + size] = np.bincount(column[rows], weights=error,
                                                       minlength=size) / len(rows)
            grad[1:] += l2 * theta[1:]
            step += 1
            first = 0.9 * first + 0.1 * grad
            second = 0.999 * second + 0.001 * grad**2
            lr = learning_rate * 0.5 * (1 + np.cos(np.pi * step / max(1, total)))
            theta -= lr * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    tables = {spec["input"]: _round(theta[begin:begin + size])
              for spec, begin, size in zip(features["categorical"], offsets[:-1], sizes,
                                           strict=True)}
    return {"bias": float(theta[0]), "weights": _round(theta[1:offsets[0]]), "tables": tables,
            "fit_seconds": round(time.perf_counter() - started, 2)}


def check_baseline(baseline: Any, features: dict[str, Any], width: int) -> dict[str, Any]:
    """The saved baseline (RUN/meta.json, untrusted) when its types and shapes fit the run.

    ``width`` is the number of columns of the ``numeric`` input. A hand-edited or
    mismatched file is a RunDirError naming the field, never a numpy broadcast error
    or a silently different baseline.
    """
    def fail(what: str) -> RunDirError:
        return RunDirError(f"meta.json: baseline {what}; retrain to write it again")

    if not isinstance(baseline, dict):
        raise fail("must be an object")
    if not _finite_numbers([baseline.get("bias")]):
        raise fail("bias must be a finite number")
    if not _finite_numbers(baseline.get("weights")) or len(baseline["weights"]) != width:
        raise fail(f"weights must be {width} finite numbers (one per numeric feature)")
    stats = features.get("normalization")
    if not isinstance(stats, dict) or not all(
            _finite_numbers(stats.get(key)) and len(stats[key]) == width
            for key in ("mean", "variance")) or min(stats["variance"], default=1.0) <= 0:
        raise fail(f"standardisation (features.normalization) must hold {width} means and "
                   "positive variances")
    tables = baseline.get("tables")
    if not isinstance(tables, dict) or set(tables) != {
            spec["input"] for spec in features["categorical"]}:
        raise fail("tables must name exactly the categorical inputs")
    for spec in features["categorical"]:
        size = len(spec["vocabulary"]) + 2
        if not _finite_numbers(tables[spec["input"]]) or len(tables[spec["input"]]) != size:
            raise fail(f"table {spec['input']} must be {size} finite numbers "
                       "(missing, unknown, then one per vocabulary entry)")
    return baseline


def _finite_numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        type(v) in (int, float) and np.isfinite(v) for v in values)


def baseline_scores(inputs: dict[str, np.ndarray], features: dict[str, Any],
                    baseline: dict[str, Any]) -> np.ndarray:
    """Probabilities of the fitted baseline for encoded ``inputs``."""
    count = len(next(iter(inputs.values())))
    x = standardise(inputs.get("numeric"), features, count)
    logits = baseline["bias"] + x @ np.asarray(baseline["weights"], dtype=np.float64)
    for spec in features["categorical"]:
        table = np.asarray(baseline["tables"][spec["input"]], dtype=np.float64)
        logits = logits + table[inputs[spec["input"]][:, 0]]
    return _sigmoid(logits)


def standardise(numeric: np.ndarray | None, features: dict[str, Any], count: int) -> np.ndarray:
    """(x - mean) / std with the training statistics, clipped to +-8 against outliers."""
    if numeric is None:
        return np.zeros((count, 0))
    stats = features["normalization"]
    scale = np.sqrt(np.asarray(stats["variance"]))
    return np.clip((numeric - np.asarray(stats["mean"])) / scale, -8.0, 8.0)


def _logits(theta: np.ndarray, x: np.ndarray, ids: list[np.ndarray], offsets: np.ndarray
            ) -> np.ndarray:
    logits = theta[0] + x @ theta[1:offsets[0]]
    for column, begin in zip(ids, offsets[:-1], strict=True):
        logits = logits + theta[begin + column]
    return logits


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def _round(values: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") for v in values]
