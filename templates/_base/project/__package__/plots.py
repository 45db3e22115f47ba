"""Plots every template shares: training curves and a confusion matrix."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: training runs on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .rundir import write_via  # noqa: E402


def training_curves(history_csv: Path, out: Path) -> Path | None:
    """One panel per metric (train and validation) from history.csv."""
    if not history_csv.is_file():
        return None
    with history_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    epochs = [float(row["epoch"]) for row in rows]
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 3.4))
    for axis, name in zip(axes, names, strict=False):
        axis.plot(epochs, [float(r[name]) for r in rows], label="train")
        if f"val_{name}" in rows[0]:
            axis.plot(epochs, [float(r[f"val_{name}"]) for r in rows], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    axes[-1].plot(epochs, [float(r.get("learning_rate", "nan") or "nan") for r in rows])
    axes[-1].set_title("learning rate")
    axes[-1].set_xlabel("epoch")
    return save_figure(fig, out)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                     out: Path) -> Path:
    """Row-normalised confusion matrix with counts in each cell."""
    size = len(class_names)
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (true.astype(int), predicted.astype(int)), 1)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(4.0, 0.5 * size + 2)
    fig, axis = plt.subplots(figsize=(side, side))
    axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(size), class_names, rotation=45, ha="right")
    axis.set_yticks(range(size), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if size <= 30:
        for i in range(size):
            for j in range(size):
                axis.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                          color="white" if rates[i, j] > 0.5 else "black")
    axis.set_title("confusion matrix (validation)")
    return save_figure(fig, out)


def save_figure(fig: plt.Figure, out: Path) -> Path:
    """Save and close ``fig`` (written to a fresh file and renamed, never through a symlink)."""
    fig.tight_layout()
    try:
        write_via(out, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)
    return out
