"""Tests of the card-transaction simulator (appgen.datasets.transactions)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    """Import the installed module, or the source file when appgen is not installed."""
    try:
        from appgen.datasets import transactions

        return transactions
    except ImportError:
        spec = importlib.util.spec_from_file_location(
            "appgen_datasets_transactions", ROOT / "datasets" / "transactions.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
        return module


tx = _load()


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def default_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("default") / "transactions.csv"
    summary = tx.write_transactions(out)
    assert "\n" not in summary and "20,000" in summary
    return out


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    tx.write_transactions(first, size=3000, seed=7, fraud_rate=0.01)
    tx.write_transactions(second, size=3000, seed=7, fraud_rate=0.01)
    tx.write_transactions(other, size=3000, seed=8, fraud_rate=0.01)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_columns_and_types(default_file: Path) -> None:
    header, rows = _read(default_file)
    assert tuple(header) == tx.COLUMNS
    assert len(rows) == tx.DEFAULT_SIZE
    assert len({row["transaction_id"] for row in rows}) == len(rows)
    previous = datetime.min
    for row in rows:
        when = datetime.fromisoformat(row["timestamp"])
        assert when >= previous  # the file is in time order
        previous = when
        assert int(row["hour"]) == when.hour
        assert row["customer_id"].startswith("C") and row["merchant_id"].startswith("M")
        assert row["merchant_category"] in tx.CATEGORIES
        assert row["channel"] in tx.CHANNELS
        assert row["country"] in tx.COUNTRIES
        assert float(row["amount"]) > 0
        assert row["card_present"] == ("0" if row["channel"] == "online" else "1")
        if row["channel"] == "atm":
            assert row["merchant_category"] == "cash"
        assert int(row["tx_count_1h"]) >= 0
        assert row["is_fraud"] in ("0", "1")
        # Only a customer's first transaction has no history.
        assert (row["seconds_since_prev"] == "") == (row["amount_to_mean"] == "")
        if row["seconds_since_prev"]:
            assert int(row["seconds_since_prev"]) >= 0 and float(row["amount_to_mean"]) > 0


@pytest.mark.parametrize(("size", "rate"), [(20_000, 0.002), (10_000, 0.05), (5_000, 0.3)])
def test_fraud_rate_is_as_asked(size: int, rate: float) -> None:
    columns = tx.simulate(tx.SimulationConfig(size=size, fraud_rate=rate, seed=3))
    assert len(columns["is_fraud"]) == size
    assert abs(columns["is_fraud"].mean() - rate) <= max(1.5 / size, 0.05 * rate)
    assert np.array_equal(columns["is_fraud"], (columns["pattern"] > 0).astype(np.int8))


def test_every_fraud_pattern_is_present_and_looks_like_itself() -> None:
    columns = tx.simulate(tx.SimulationConfig(size=40_000, fraud_rate=0.01, seed=1))
    pattern = columns["pattern"]
    counts = np.bincount(pattern, minlength=len(tx.PATTERNS))
    assert (counts > 0).all(), dict(zip(tx.PATTERNS, counts.tolist(), strict=True))
    legit = pattern == 0

    # Card testing: bursts of small online amounts at one merchant within minutes.
    testing = pattern == tx.PATTERNS.index("card_testing")
    assert (columns["channel"][testing] == "online").all()
    assert np.median(columns["amount"][testing]) < 0.2 * np.median(columns["amount"][legit])
    bursts: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for customer, merchant, stamp in zip(
        columns["customer_id"][testing],
        columns["merchant_id"][testing],
        columns["timestamp"][testing],
        strict=True,
    ):
        bursts[customer, merchant].append(datetime.fromisoformat(stamp))
    assert all(len(times) >= 4 for times in bursts.values())
    minutes = [(max(times) - min(times)).total_seconds() / 60 for times in bursts.values()]
    assert np.median(minutes) < 15
    assert columns["tx_count_1h"][testing].mean() > 5 * columns["tx_count_1h"][legit].mean()

    # Account takeover: high amounts for the customer, mostly abroad or off hours.
    takeover = pattern == tx.PATTERNS.index("account_takeover")
    ratio = columns["amount_to_mean"]
    assert np.nanmedian(ratio[takeover]) > 2.5 * np.nanmedian(ratio[legit])
    abroad = columns["country"] != _home_country_of_rows(columns)
    assert abroad[takeover].mean() > 0.5 > 0.1 > abroad[legit].mean()
    night = columns["hour"] < 6
    assert night[takeover].mean() > 2 * night[legit].mean()

    # Unusual merchant or geography: abroad, or at a risky online category.
    unusual = pattern == tx.PATTERNS.index("unusual_merchant_geo")
    risky = np.isin(columns["merchant_category"], ["gambling", "digital_goods", "jewelry"])
    assert (abroad | risky)[unusual].mean() > 0.6
    assert (abroad | risky)[legit].mean() < 0.2


def _home_country_of_rows(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The customer's most frequent country among their card-present legitimate rows."""
    seen: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    keep = (columns["pattern"] == 0) & (columns["card_present"] == 1)
    for customer, country in zip(
        columns["customer_id"][keep], columns["country"][keep], strict=True
    ):
        seen[customer][country] += 1
    home = {customer: max(counts, key=counts.__getitem__) for customer, counts in seen.items()}
    return np.array([home.get(customer, "") for customer in columns["customer_id"]], dtype=object)


def test_behaviour_features_only_use_the_customers_past(tmp_path: Path) -> None:
    out = tmp_path / "small.csv"
    tx.write_transactions(out, size=4000, seed=5, fraud_rate=0.02, customers=40)
    _, rows = _read(out)
    history: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for row in rows:  # the file is in time order, so history holds only earlier rows
        when, amount = datetime.fromisoformat(row["timestamp"]), float(row["amount"])
        past = history[row["customer_id"]]
        if not past:
            assert row["seconds_since_prev"] == "" and row["amount_to_mean"] == ""
        else:
            assert int(row["seconds_since_prev"]) == (when - past[-1][0]).total_seconds()
            in_hour = sum((when - then).total_seconds() <= 3600 for then, _ in past)
            assert int(row["tx_count_1h"]) == in_hour
            mean = sum(value for _, value in past) / len(past)
            assert float(row["amount_to_mean"]) == pytest.approx(amount / mean, abs=1e-4)
        past.append((when, amount))


def test_numeric_features_carry_learnable_but_imperfect_signal() -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = tx.simulate(tx.SimulationConfig(size=100_000, fraud_rate=0.01, seed=11))
    since = columns["seconds_since_prev"].astype(float)
    since[since < 0] = 30 * 86_400
    ratio = np.nan_to_num(columns["amount_to_mean"], nan=1.0)
    features = np.column_stack(
        [
            np.log1p(columns["amount"]),
            columns["card_present"],
            columns["hour"],
            np.log1p(since),
            columns["tx_count_1h"],
            np.log(ratio),
        ]
    )
    label = columns["is_fraud"]
    cut = int(0.7 * len(label))  # train on the past, score the future
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features[:cut], label[:cut])
    pr_auc = average_precision_score(label[cut:], model.predict_proba(features[cut:])[:, 1])
    positive_rate = label[cut:].mean()
    assert 3 * positive_rate < pr_auc < 0.8, (pr_auc, positive_rate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"fraud_rate": 0.0}, "fraud_rate"),
        ({"fraud_rate": 0.5}, "fraud_rate"),
        ({"fraud_rate": -0.1}, "fraud_rate"),
        ({"days": 0}, "days"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_arguments_raise_clear_errors(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tx.write_transactions(tmp_path / "out.csv", **kwargs)
    with pytest.raises(TypeError):
        tx.write_transactions(tmp_path / "out.csv", sizes=10)
    assert list(tmp_path.iterdir()) == []


def test_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".csv or .parquet"):
        tx.write_transactions(tmp_path / "out.txt", size=100)
    parquet = tmp_path / "out.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        with pytest.raises(ValueError, match="pyarrow"):
            tx.write_transactions(parquet, size=100)
        assert not parquet.exists()
    else:
        import pyarrow.parquet as pq

        tx.write_transactions(parquet, size=500)
        table = pq.read_table(parquet)
        assert tuple(table.column_names) == tx.COLUMNS and table.num_rows == 500
    assert [path.name for path in tmp_path.iterdir()] in ([], ["out.parquet"])


def test_a_folder_gets_the_default_file_name(tmp_path: Path) -> None:
    # A new project's data/ folder is passed as the output, like other providers.
    data = tmp_path / "data"
    summary = tx.write_transactions(data, size=200)
    assert (data / "transactions.csv").is_file() and "transactions.csv" in summary
    tx.write_creditcard_schema(data, size=200)
    assert sorted(path.name for path in data.iterdir()) == ["creditcard.csv", "transactions.csv"]


def test_no_temporary_file_is_left_on_success_or_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data" / "tx.csv"
    tx.write_transactions(out, size=1000)
    tx.write_transactions(out, size=1200)  # overwrites in place
    assert [path.name for path in out.parent.iterdir()] == ["tx.csv"]
    before = out.read_bytes()

    def broken_lines(columns: dict[str, np.ndarray]) -> Iterator[str]:
        yield "half a row\n"
        raise OSError("disk full")

    monkeypatch.setattr(tx, "_csv_lines", broken_lines)
    with pytest.raises(OSError, match="disk full"):
        tx.write_transactions(out, size=1000)
    assert [path.name for path in out.parent.iterdir()] == ["tx.csv"]
    assert out.read_bytes() == before  # the old file is untouched


def test_scales_without_python_loops_per_row() -> None:
    # 200k rows must simulate quickly; 1M rows take a few seconds in all.
    import time

    start = time.perf_counter()
    columns = tx.simulate(tx.SimulationConfig(size=200_000, seed=2))
    assert len(columns["amount"]) == 200_000
    assert time.perf_counter() - start < 5.0


def test_creditcard_schema(tmp_path: Path) -> None:
    out, again = tmp_path / "creditcard.csv", tmp_path / "again.csv"
    summary = tx.write_creditcard_schema(out, size=5000, seed=4, fraud_rate=0.02)
    tx.write_creditcard_schema(again, size=5000, seed=4, fraud_rate=0.02)
    assert out.read_bytes() == again.read_bytes()
    assert "5,000" in summary and "\n" not in summary
    header, rows = _read(out)
    assert header == ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]
    assert len(rows) == 5000
    label = np.array([int(row["Class"]) for row in rows])
    assert set(label.tolist()) == {0, 1} and label.mean() == pytest.approx(0.02, abs=0.002)
    v14 = np.array([float(row["V14"]) for row in rows])
    assert v14[label == 1].mean() < v14[label == 0].mean() - 1.0
    time = np.array([float(row["Time"]) for row in rows])
    assert (np.diff(time) >= 0).all() and time.max() < 2 * 86_400
    with pytest.raises(ValueError, match="size"):
        tx.write_creditcard_schema(tmp_path / "bad.csv", size=0)
    with pytest.raises(ValueError, match=".csv"):
        tx.write_creditcard_schema(tmp_path / "bad.parquet", size=10)


def test_registered_as_a_provider() -> None:
    datasets = pytest.importorskip("appgen.datasets", exc_type=ImportError)
    assert datasets.get_writer("transactions").__name__ == "write_transactions"
