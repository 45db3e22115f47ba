"""``python -m PACKAGE evaluate``: score a trained run on its validation data or new data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import contract, rundir
from .config import get, load_config


def run_evaluation(run_path: Path, data_path: Path | None) -> dict[str, Any]:
    """Evaluate the run's best checkpoint; write RUN/evaluation.json and return it."""
    run = rundir.open_existing(run_path)
    config = load_config(run.config)
    meta = rundir.read_meta(run)
    batch_size = int(get(config, "train.batch_size"))
    template = contract.load()
    if data_path is not None:
        batches = template.data.load_eval(config, data_path, meta, batch_size=batch_size)
        source = str(data_path)
    elif template.load_validation is not None:
        # What training learned from its data (a vocabulary) is in meta: the validation
        # split is encoded with it, never re-learned from today's training files.
        batches = template.load_validation(config, meta, batch_size=batch_size)
        source = "validation split"
    else:
        batches = template.data.load_splits(config, batch_size=batch_size).val
        source = "validation split"
    trained = run.read_metrics().get("final") or {}  # train's report on its validation split
    net = rundir.load_model(rundir.model_checkpoint(run))
    results = {"data": source, "samples": batches.num_samples,
               **template.report.report(net, batches, contract.other_data_meta(meta, trained),
                                        run.plots / "evaluation")}
    rundir.atomic_write_json(run.path / "evaluation.json", results)
    for key, value in results.items():
        if isinstance(value, float):
            print(f"{key:>24}: {value:.4f}")
    print(f"written {run.path / 'evaluation.json'}; plots in {run.plots / 'evaluation'}")
    return results
