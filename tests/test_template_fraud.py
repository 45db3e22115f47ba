"""End to end: generate the fraud project and use it as a new user would."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from project_runner import JAX_ONLY, generate, last_line, run_project, train_ok

pytestmark = pytest.mark.slow

QUICK = ("--set", "train.epochs=1", "--set", "train.batch_size=512", "--set", "model.hidden=[32]")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("fraud"), "fraud_demo", "fraud")


@pytest.mark.parametrize("backend", ["tensorflow", JAX_ONLY])
def test_train_then_score_raw_rows(project: Path, tmp_path: Path, backend: str) -> None:
    run = tmp_path / "run"
    result = run_project(project, "train", "--run-dir", str(run), *QUICK, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"backend {backend.removesuffix('-only')}" in result.stdout
    assert "validation pr_auc" in result.stdout
    assert re.search(r"positive rate train 0\.\d+%, val 0\.\d+%", result.stdout)
    # Timestamped rows: the latest ones validate; customer and merchant ids are no features.
    assert "time-ordered split by 'timestamp' (found automatically" in result.stdout
    assert "identifiers, not features (kept for predict's output): transaction_id, " \
           "customer_id, merchant_id" in result.stdout
    assert "these are validation numbers" in result.stdout

    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    assert metrics["epochs_completed"] == 1 and metrics["monitor"] == "val_pr_auc"
    assert 0.0 < final["pr_auc"] <= 1.0 and 0.0 < final["baseline_pr_auc"] <= 1.0
    assert 0.5 < final["roc_auc"] <= 1.0 and 0.0 <= final["threshold"] <= 1.0
    assert final["positives"] >= 1
    # one epoch: the epoch's exact PR-AUC is the report's (issue 15, item 14)
    assert metrics["best"]["val_pr_auc"] == pytest.approx(final["pr_auc"], abs=1e-9)
    for name in ("pr_curve", "roc_curve", "score_histograms", "threshold_cost",
                 "training_curves"):
        assert (run / "plots" / f"{name}.png").stat().st_size > 1000
    meta = json.loads((run / "meta.json").read_text())
    assert meta["id_columns"] == ["transaction_id", "customer_id", "merchant_id"]
    assert meta["time_column"] == "timestamp" and metrics["scored_on"] == "validation"
    if backend == "tensorflow":
        return  # the project's own tests score with TensorFlow; here the JAX run scores

    # New rows with an unseen channel and a missing amount: scored, counted, nothing lost.
    with (project / "data" / "transactions.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[:301]
    header = rows[0]
    rows[1][header.index("channel")] = "teleport"
    rows[2][header.index("amount")] = ""
    new = tmp_path / "new.csv"
    with new.open("w", newline="") as handle:
        csv.writer(handle).writerows([[v for i, v in enumerate(r) if header[i] != "is_fraud"]
                                      for r in rows])
    result = run_project(project, "predict", "--run-dir", str(run), str(new),
                         "--out", str(tmp_path / "scores"), backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "channel 1" in result.stdout and "amount 1" in result.stdout
    scored = list(csv.DictReader((tmp_path / "scores" / "new.scores.csv").open()))
    assert len(scored) == 300 and scored[0]["transaction_id"] == rows[1][0]
    assert all((float(r["score"]) >= final["threshold"]) == (r["decision"] == "1")
               for r in scored)


def test_public_creditcard_schema_needs_no_configuration(project: Path, tmp_path: Path) -> None:
    from appgen.datasets.transactions import write_creditcard_schema

    table = tmp_path / "creditcard.csv"
    write_creditcard_schema(table, size=6000, fraud_rate=0.01)
    held_out = tmp_path / "creditcard_test.csv"
    write_creditcard_schema(held_out, size=2000, seed=1, fraud_rate=0.01)
    run = tmp_path / "run"
    result = run_project(project, "train", "--run-dir", str(run), *QUICK,
                         "--set", f'data.path="{table}"', "--set", "data.max_rows=6000",
                         "--set", f'data.test_path="{held_out}"')
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["target"]["column"] == "Class" and len(meta["features"]["numeric"]) == 30
    assert meta["time_column"] == "Time"  # the schema's seconds column orders the split
    # The held-out table is scored once, after training, at the threshold chosen on validation.
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["scored_on"] == "test" and test["samples"] == 2000
    assert test["at_trained_threshold"]["threshold"] == metrics["final"]["threshold"]
    assert f"test pr_auc: {test['pr_auc']:.4f} on 2000 samples" in result.stdout
    assert (run / "plots" / "test" / "pr_curve.png").is_file()


def test_target_that_is_not_binary_fails_in_one_line(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,is_fraud\n" + "".join(f"{i},{i % 3}\n" for i in range(60)))
    result = run_project(project, "train", "--run-dir", str(tmp_path / "r"),
                         "--set", f'data.path="{bad}"')
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert str(bad) in line and "not binary" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "checkpoints" / "last.keras").exists()


def test_exported_saved_model_scores_raw_rows_like_predict(project: Path, tmp_path: Path) -> None:
    """The SavedModel takes the CSV's strings as they are and agrees with ``predict``."""
    rows = raw_rows(3000)
    table = tmp_path / "raw.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = tmp_path / "run"
    train_ok(project, run, *QUICK, "--set", f'data.path="{table}"', "--set", 'data.target="label"',
             "--set", "data.min_category_count=1")
    kinds = json.loads((run / "meta.json").read_text())["features"]["kinds"]
    assert kinds == {"when": "timestamp", "amount": "numeric", "online": "boolean",
                     "shop": "categorical"}
    result = run_project(project, "export", "--run-dir", str(run), "--format", "saved_model")
    assert result.returncode == 0, result.stderr[-3000:]

    rows[0]["shop"] = "a-shop-never-seen"  # unknown category: out-of-vocabulary, still scored
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run_project(project, "predict", "--run-dir", str(run), str(table),
                         "--out", str(tmp_path / "scores"))
    assert result.returncode == 0, result.stderr[-3000:]
    expected = [(float(r["score"]), int(r["decision"]))
                for r in csv.DictReader((tmp_path / "scores" / "raw.scores.csv").open())]

    import tensorflow as tf

    exported = run / "export" / "saved_model"
    served = tf.saved_model.load(str(exported))
    columns = json.loads((exported / "columns.json").read_text())["columns"]
    assert sorted(columns) == sorted(kinds)
    out = served.serve({key: tf.constant([r[c] for r in rows]) for c, key in columns.items()})
    np.testing.assert_allclose(out["score"].numpy(), [s for s, _ in expected], atol=1e-6)
    assert out["decision"].numpy().tolist() == [d for _, d in expected]
    default = served.signatures["serving_default"](
        **{key: tf.constant([rows[5][c]]) for c, key in columns.items()})
    assert abs(float(default["score"][0]) - expected[5][0]) < 1e-6


def raw_rows(count: int) -> list[dict[str, object]]:
    """Rows as a CSV holds them: timestamps with T or space, NA, yes/no/Y, blanks."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        fraud = rng.random() < 0.05
        stamp = f"2024-0{1 + index % 9}-{1 + index % 28:02d}{' ' if index % 2 else 'T'}" \
                f"{(3 if fraud else 12) + index % 5:02d}:{index % 60:02d}:07"
        rows.append({
            "tx": f"T{index}", "when": "" if index % 97 == 0 else stamp,
            "amount": "NA" if index % 31 == 0 else f"{rng.lognormal(6 if fraud else 3, 1):.2f}",
            "online": ["yes", "no", "Y", "", "false"][index % 5],
            "shop": "" if index % 53 == 0 else f"s{rng.integers(0, 8 if fraud else 30)}",
            "label": int(fraud)})
    return rows


def test_parquet_tables_train_and_score(project: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = raw_rows(2000)
    table = pa.table({
        "tx": [r["tx"] for r in rows],
        "when": pa.array([np.datetime64(str(r["when"]).replace(" ", "T")) if r["when"] else None
                          for r in rows], pa.timestamp("s")),
        "amount": [None if r["amount"] == "NA" else float(str(r["amount"])) for r in rows],
        "shop": [r["shop"] or None for r in rows],
        "label": [bool(r["label"]) for r in rows]})
    path = tmp_path / "raw.parquet"
    pq.write_table(table, path)
    run = tmp_path / "run"
    train_ok(project, run, *QUICK, "--set", f'data.path="{path}"', "--set", 'data.target="label"',
             "--set", "data.min_category_count=1")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["features"]["kinds"] == {"when": "timestamp", "amount": "numeric",
                                         "shop": "categorical"}
    result = run_project(project, "predict", "--run-dir", str(run), str(path),
                         "--out", str(tmp_path / "scores"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"amount \d+", result.stdout)  # the missing amounts were counted
    scored = list(csv.DictReader((tmp_path / "scores" / "raw.scores.csv").open()))
    assert len(scored) == 2000 and scored[7]["tx"] == "T7"
