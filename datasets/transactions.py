"""Simulated card transactions with injected fraud, for the ``fraud`` template.

No real fraud data ships with appgen, so this module simulates it:

1. Customers get a behaviour profile (home country, typical spend level and
   spread, active hours, preferred channels and merchant categories, an
   occasional trip abroad); merchants get a category, a country and a risk rank.
2. Legitimate transactions are drawn from those profiles, including short
   shopping sessions, trips abroad and large one-off purchases, so every
   fraud signal has legitimate look-alikes.
3. Fraud is injected at ``fraud_rate`` as three patterns: card-testing bursts,
   account takeover and unusual merchant or geography.
4. Behaviour features are computed causally per customer in time order, as a
   bank would see them when scoring: the label is not in any feature, the
   signal lies in how a transaction differs from the customer's history.

``write_creditcard_schema`` writes the widely used public credit-card schema
(``Time, V1..V28, Amount, Class``) instead, so the template can be tested on it.
Everything is vectorised with numpy; the output is byte-identical for a seed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZE = 20_000

COLUMNS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "channel",
    "country",
    "amount",
    "card_present",
    "hour",
    "seconds_since_prev",
    "tx_count_1h",
    "amount_to_mean",
    "is_fraud",
)

PATTERNS = ("legit", "card_testing", "account_takeover", "unusual_merchant_geo")

CHANNELS = ("pos", "online", "atm", "contactless")
POS, ONLINE, ATM, CONTACTLESS = range(4)
# Population-level channel preference; each customer draws a Dirichlet around it.
CHANNEL_BASE = np.array([3.0, 2.5, 0.5, 3.0])
CONTACTLESS_LIMIT = 100.0  # above this a tap is refused and the card is inserted (pos)

# Countries with the share of customers living there; the tail mostly appears
# through travel and online merchants, so rare countries are not fraud by themselves.
COUNTRIES = (
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "BR", "IN", "MX",
    "PT", "PL", "SE", "IE", "JP", "SG", "TH", "ZA", "AE", "TR",
)  # fmt: skip
HOME_WEIGHT = np.array(
    [30, 12, 10, 9, 6, 6, 5, 6, 5, 4, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float
)
TRAVEL_WEIGHT = np.array(
    [10, 8, 6, 9, 9, 8, 4, 3, 2, 2, 2, 4, 5, 2, 2, 2, 3, 2, 4, 1, 2, 3], dtype=float
)

# Merchant categories: log-amount mean and spread, and which channels they serve
# (pos, online, atm, contactless). Population preference comes last.
CATEGORIES = (
    "grocery", "restaurant", "fuel", "retail", "electronics", "travel",
    "entertainment", "digital_goods", "pharmacy", "jewelry", "gambling", "cash",
)  # fmt: skip
CAT_LOG_MEAN = np.array([3.4, 3.2, 3.8, 3.9, 5.1, 5.6, 3.4, 2.4, 3.1, 5.4, 3.7, 4.6])
CAT_LOG_SD = np.array([0.55, 0.55, 0.35, 0.8, 0.85, 0.9, 0.6, 0.9, 0.6, 0.9, 0.9, 0.5])
CAT_CHANNELS = np.array(
    [
        [1, 1, 0, 1],  # grocery
        [1, 1, 0, 1],  # restaurant
        [1, 0, 0, 1],  # fuel
        [1, 1, 0, 1],  # retail
        [1, 1, 0, 1],  # electronics
        [1, 1, 0, 0],  # travel
        [1, 1, 0, 1],  # entertainment
        [0, 1, 0, 0],  # digital_goods
        [1, 1, 0, 1],  # pharmacy
        [1, 1, 0, 0],  # jewelry
        [0, 1, 0, 0],  # gambling
        [0, 0, 1, 0],  # cash
    ],
    dtype=float,
)
CAT_BASE = np.array([8, 6, 3, 5, 0.8, 0.6, 2, 3, 1.5, 0.25, 0.4, 1.0])
CASH = CATEGORIES.index("cash")
FRAUD_CATS = tuple(CATEGORIES.index(c) for c in ("electronics", "jewelry", "digital_goods"))
CT_CATS = tuple(CATEGORIES.index(c) for c in ("digital_goods", "entertainment", "retail"))

# Share of the fraud rows given to each pattern (card testing, ATO, unusual).
PATTERN_SHARE = (0.3, 0.4, 0.3)
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulationConfig:
    """Options of the simulator; validated when created.

    Attributes:
        size: Number of rows written (legitimate plus fraudulent).
        seed: Seed of the random generator; the same seed gives the same file.
        fraud_rate: Share of rows that are fraud, in (0, 0.5).
        days: Length of the simulated period.
        start: First day of the period (ISO date); timestamps are UTC.
        customers: Number of customers; by default about one per 80 rows.
        merchants: Number of merchants; by default about one per 150 rows, and at
            least one per (category, country) pair.
    """

    size: int = DEFAULT_SIZE
    seed: int = 0
    fraud_rate: float = 0.002
    days: int = 90
    start: str = "2024-01-01"
    customers: int | None = None
    merchants: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int | np.integer):
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if self.size <= 0:
            raise ValueError(f"size must be a positive number of rows, got {self.size}")
        if not 0.0 < float(self.fraud_rate) < 0.5:
            raise ValueError(
                f"fraud_rate must be strictly between 0 and 0.5, got {self.fraud_rate!r}"
            )
        if self.days <= 0:
            raise ValueError(f"days must be positive, got {self.days}")
        try:
            np.datetime64(self.start, "D")
        except ValueError as error:
            raise ValueError(
                f"start must be an ISO date like 2024-01-01, got {self.start!r}"
            ) from error
        for name in ("customers", "merchants"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")

    @property
    def n_customers(self) -> int:
        return self.customers or max(20, self.size // 80)

    @property
    def n_merchants(self) -> int:
        minimum = len(CATEGORIES) * len(COUNTRIES)  # every (category, country) has one
        return max(minimum, self.merchants or self.size // 150)


# --------------------------------------------------------------------------- profiles


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one column index per row of ``weights`` (rows need not sum to 1)."""
    cumulative = np.cumsum(weights, axis=1)
    draw = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative < draw[:, None]).sum(axis=1), weights.shape[1] - 1)


@dataclass
class _Customers:
    home: np.ndarray  # country index
    level: np.ndarray  # typical spend, multiplies category amounts
    spread: np.ndarray  # multiplies category spread
    hour_centre: np.ndarray  # hours, 0-24
    hour_width: np.ndarray  # hours
    channel_pref: np.ndarray  # (n, channels)
    category_pref: np.ndarray  # (n, categories)
    activity: np.ndarray  # share of all transactions
    trip_start: np.ndarray  # seconds; trips abroad move card-present spending
    trip_end: np.ndarray
    trip_country: np.ndarray


def _customers(rng: np.random.Generator, n: int, span: int) -> _Customers:
    home = rng.choice(len(COUNTRIES), size=n, p=HOME_WEIGHT / HOME_WEIGHT.sum())
    centre = rng.choice([10.0, 14.0, 18.0, 21.0], size=n, p=[0.25, 0.35, 0.3, 0.1])
    trip_country = rng.choice(len(COUNTRIES), size=n, p=TRAVEL_WEIGHT / TRAVEL_WEIGHT.sum())
    trip_country = np.where(trip_country == home, (trip_country + 1) % len(COUNTRIES), trip_country)
    travels = rng.random(n) < 0.3
    trip_start = rng.integers(0, span, size=n)
    trip_len = rng.integers(2, 15, size=n) * SECONDS_PER_DAY
    return _Customers(
        home=home,
        level=rng.lognormal(0.0, 0.45, size=n),
        spread=rng.uniform(0.75, 1.25, size=n),
        hour_centre=centre + rng.normal(0.0, 1.5, size=n),
        hour_width=rng.uniform(2.0, 4.5, size=n),
        channel_pref=rng.dirichlet(CHANNEL_BASE, size=n),
        category_pref=rng.dirichlet(CAT_BASE, size=n),
        activity=rng.gamma(1.5, 1.0, size=n),
        trip_start=np.where(travels, trip_start, -1),
        trip_end=np.where(travels, trip_start + trip_len, -1),
        trip_country=trip_country,
    )


@dataclass
class _Merchants:
    category: np.ndarray
    country: np.ndarray
    risk: np.ndarray  # in [0, 1]; fraud concentrates on the riskiest
    group_start: np.ndarray  # (categories, countries) -> first merchant of that group
    group_size: np.ndarray


def _merchants(rng: np.random.Generator, n: int) -> _Merchants:
    n_cat, n_country = len(CATEGORIES), len(COUNTRIES)
    # Every (category, country) pair gets one merchant; the rest follow category
    # popularity and where customers and travellers are.
    base_cat = np.repeat(np.arange(n_cat), n_country)
    base_country = np.tile(np.arange(n_country), n_cat)
    extra = n - len(base_cat)
    country_w = HOME_WEIGHT + TRAVEL_WEIGHT
    extra_cat = rng.choice(n_cat, size=extra, p=CAT_BASE / CAT_BASE.sum())
    extra_country = rng.choice(n_country, size=extra, p=country_w / country_w.sum())
    category = np.concatenate([base_cat, extra_cat])
    country = np.concatenate([base_country, extra_country])
    risk = rng.beta(1.0, 12.0, size=n)
    # Within a group the riskiest merchant comes first, so a skewed draw picks it.
    order = np.lexsort((-risk, country, category))
    category, country, risk = category[order], country[order], risk[order]
    group = category * n_country + country
    group_size = np.bincount(group, minlength=n_cat * n_country)
    group_start = np.concatenate([[0], np.cumsum(group_size)[:-1]])
    return _Merchants(
        category=category,
        country=country,
        risk=risk,
        group_start=group_start.reshape(n_cat, n_country),
        group_size=group_size.reshape(n_cat, n_country),
    )


def _pick_merchant(
    rng: np.random.Generator,
    merchants: _Merchants,
    category: np.ndarray,
    country: np.ndarray,
    skew: float,
) -> np.ndarray:
    """Pick a merchant per row in (category, country); ``skew`` > 1 favours risky ones."""
    size = merchants.group_size[category, country]
    offset = np.floor(rng.random(len(category)) ** skew * size).astype(np.int64)
    return merchants.group_start[category, country] + np.minimum(offset, size - 1)


def _amounts(
    rng: np.random.Generator, category: np.ndarray, scale: np.ndarray, spread: np.ndarray
) -> np.ndarray:
    log_amount = (
        CAT_LOG_MEAN[category]
        + np.log(scale)
        + CAT_LOG_SD[category] * spread * (rng.standard_normal(len(category)))
    )
    amount = np.clip(np.exp(log_amount), 0.5, 25_000.0)
    cash = category == CASH
    amount[cash] = np.maximum(20.0, np.round(amount[cash] / 20.0) * 20.0)
    return np.round(amount, 2)


# --------------------------------------------------------------------------- simulation


def _legit(
    rng: np.random.Generator,
    n: int,
    span: int,
    customers: _Customers,
    merchants: _Merchants,
) -> dict[str, np.ndarray]:
    activity = customers.activity / customers.activity.sum()
    customer = rng.choice(len(activity), size=n, p=activity)
    # A time of day around the customer's active hours, on any day of the period.
    hour = (
        customers.hour_centre[customer] + customers.hour_width[customer] * (rng.standard_normal(n))
    ) % 24.0
    day = rng.integers(0, max(1, span // SECONDS_PER_DAY), size=n)
    time = day * SECONDS_PER_DAY + (hour * 3600.0).astype(np.int64)
    # Shopping sessions: some transactions follow the customer's previous one by
    # minutes, so short gaps and small bursts are not fraud by themselves.
    order = np.lexsort((time, customer))
    customer, time = customer[order], time[order]
    follow = (rng.random(n) < 0.12) & np.r_[False, customer[1:] == customer[:-1]]
    gap = 20 + rng.exponential(420.0, size=n).astype(np.int64)
    time[follow] = np.minimum(time[np.flatnonzero(follow) - 1] + gap[follow], span - 1)

    channel = _choice_rows(rng, customers.channel_pref[customer])
    category = np.empty(n, dtype=np.int64)
    for code in range(len(CHANNELS)):
        rows = np.flatnonzero(channel == code)
        weights = customers.category_pref[customer[rows]] * CAT_CHANNELS[:, code]
        category[rows] = _choice_rows(rng, weights)

    amount = _amounts(rng, category, customers.level[customer], customers.spread[customer])
    # A large one-off purchase now and then (a sofa, a flight): the legitimate
    # look-alike of an account takeover's high amounts.
    splurge = rng.random(n) < 0.01
    amount[splurge] = np.round(amount[splurge] * rng.uniform(3.0, 12.0, size=splurge.sum()), 2)
    channel[(channel == CONTACTLESS) & (amount > CONTACTLESS_LIMIT)] = POS

    # Card-present spending happens where the customer is; online merchants are
    # sometimes abroad.
    country = customers.home[customer].copy()
    on_trip = (time >= customers.trip_start[customer]) & (time < customers.trip_end[customer])
    present = channel != ONLINE
    country[present & on_trip] = customers.trip_country[customer[present & on_trip]]
    abroad_online = (~present) & (rng.random(n) < 0.12)
    country_w = HOME_WEIGHT + TRAVEL_WEIGHT
    country[abroad_online] = rng.choice(
        len(COUNTRIES), size=abroad_online.sum(), p=country_w / country_w.sum()
    )
    merchant = _pick_merchant(rng, merchants, category, country, skew=1.0)
    return {
        "customer": customer,
        "time": time,
        "merchant": merchant,
        "category": category,
        "channel": channel,
        "country": country,
        "amount": amount,
        "pattern": np.zeros(n, dtype=np.int8),
    }


def _split_events(rng: np.random.Generator, rows: int, low: int, high: int) -> np.ndarray:
    """Sizes in [low, high] of events that together have exactly ``rows`` rows."""
    if rows < low:
        return np.zeros(0, dtype=np.int64)
    sizes = rng.integers(low, high + 1, size=rows // low + 1)
    count = int(np.searchsorted(np.cumsum(sizes), rows, side="left")) + 1
    sizes = sizes[:count]
    sizes[-1] -= sizes.sum() - rows
    if sizes[-1] < low and count > 1:  # fold a short last event into the one before
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    return sizes


def _event_rows(
    rng: np.random.Generator, sizes: np.ndarray, span: int, mean_gap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event index per row, time of each row and the event's start, for bursts of events."""
    if len(sizes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    event = np.repeat(np.arange(len(sizes)), sizes)
    start = rng.integers(0, span, size=len(sizes))
    gaps = 1 + rng.exponential(mean_gap, size=len(event)).astype(np.int64)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    gaps[first] = 0
    offsets = np.cumsum(gaps)
    offsets -= np.repeat(offsets[first], sizes)
    return event, np.minimum(start[event] + offsets, span - 1), start


def _victims(rng: np.random.Generator, customers: _Customers, n: int) -> np.ndarray:
    weights = customers.activity / customers.activity.sum()
    return rng.choice(len(weights), size=n, p=weights)


def _foreign(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    """A country other than ``home``, uniformly: fraud spreads over rare countries too."""
    shift = rng.integers(1, len(COUNTRIES), size=len(home))
    return (home + shift) % len(COUNTRIES)


def _card_testing(
    rng: np.random.Generator, rows: int, span: int, customers: _Customers, merchants: _Merchants
) -> dict[str, np.ndarray]:
    """Many small online amounts within minutes, at one merchant, on a stolen card."""
    sizes = _split_events(rng, rows, 4, 16)
    event, time, _ = _event_rows(rng, sizes, span, mean_gap=30.0)
    n_events, n = len(sizes), len(event)
    victim = _victims(rng, customers, n_events)
    category = rng.choice(CT_CATS, size=n_events, p=[0.7, 0.15, 0.15])
    country = np.where(
        rng.random(n_events) < 0.5, customers.home[victim], _foreign(rng, customers.home[victim])
    )
    merchant = _pick_merchant(rng, merchants, category, country, skew=4.0)
    round_amount = rng.choice([0.5, 1.0, 1.0, 2.0, 5.0], size=n)
    amount = np.where(rng.random(n) < 0.5, round_amount, np.round(rng.uniform(0.5, 9.0, n), 2))
    return {
        "customer": victim[event],
        "time": time,
        "merchant": merchant[event],
        "category": category[event],
        "channel": np.full(n, ONLINE),
        "country": country[event],
        "amount": amount,
        "pattern": np.full(n, 1, dtype=np.int8),
    }


def _account_takeover(
    rng: np.random.Generator, rows: int, span: int, customers: _Customers, merchants: _Merchants
) -> dict[str, np.ndarray]:
    """A few high amounts at an unusual hour, often abroad and on a new channel."""
    sizes = _split_events(rng, rows, 1, 4)
    event, time, start = _event_rows(rng, sizes, span, mean_gap=1200.0)
    n_events, n = len(sizes), len(event)
    victim = _victims(rng, customers, n_events)
    # Move the takeover to the victim's off hours most of the time.
    off_hours = rng.random(n_events) < 0.65
    hour = (customers.hour_centre[victim] + 12.0 + rng.normal(0.0, 2.0, n_events)) % 24.0
    day_start = start - start % SECONDS_PER_DAY
    shift = np.where(off_hours, day_start + (hour * 3600).astype(np.int64) - start, 0)
    time = np.clip(time + shift[event], 0, span - 1)

    channel = rng.choice([ONLINE, ATM, POS], size=n_events, p=[0.6, 0.25, 0.15])
    abroad = rng.random(n_events) < 0.7
    country = np.where(abroad, _foreign(rng, customers.home[victim]), customers.home[victim])
    category = np.where(channel == ATM, CASH, rng.choice(FRAUD_CATS, size=n_events))
    category = category[event]
    merchant = _pick_merchant(rng, merchants, category, country[event], skew=3.0)
    level = customers.level[victim[event]] * rng.lognormal(np.log(4.0), 0.6, size=n)
    amount = _amounts(rng, category, level / np.exp(CAT_LOG_MEAN[category] - 3.8), np.ones(n))
    return {
        "customer": victim[event],
        "time": time,
        "merchant": merchant,
        "category": category,
        "channel": channel[event],
        "country": country[event],
        "amount": amount,
        "pattern": np.full(n, 2, dtype=np.int8),
    }


def _unusual_merchant_geo(
    rng: np.random.Generator, rows: int, span: int, customers: _Customers, merchants: _Merchants
) -> dict[str, np.ndarray]:
    """Single ordinary-looking payments on a cloned card abroad or at a risky merchant."""
    victim = _victims(rng, customers, rows)
    time = rng.integers(0, span, size=rows)
    cloned = rng.random(rows) < 0.5
    channel = np.where(cloned, POS, ONLINE)
    country = np.where(cloned, _foreign(rng, customers.home[victim]), customers.home[victim])
    online_cats = [CATEGORIES.index(c) for c in ("gambling", "digital_goods", "jewelry", "retail")]
    present_cats = [CATEGORIES.index(c) for c in ("retail", "electronics", "fuel", "jewelry")]
    category = np.where(
        cloned, rng.choice(present_cats, size=rows), rng.choice(online_cats, size=rows)
    )
    merchant = _pick_merchant(rng, merchants, category, country, skew=5.0)
    amount = _amounts(
        rng, category, customers.level[victim] * rng.uniform(0.8, 2.5, rows), np.ones(rows)
    )
    return {
        "customer": victim,
        "time": time,
        "merchant": merchant,
        "category": category,
        "channel": channel,
        "country": country,
        "amount": amount,
        "pattern": np.full(rows, 3, dtype=np.int8),
    }


def _fraud_counts(size: int, fraud_rate: float) -> tuple[int, int, int]:
    """Rows of each pattern; at least one fraud row so the file is usable."""
    total = max(1, round(size * fraud_rate)) if size > 1 else 0
    testing = round(total * PATTERN_SHARE[0])
    if testing < 4:  # a burst needs at least four rows
        testing = 0
    takeover = round((total - testing) * PATTERN_SHARE[1] / sum(PATTERN_SHARE[1:]))
    return testing, takeover, total - testing - takeover


def _behaviour_features(
    customer: np.ndarray, time: np.ndarray, amount: np.ndarray
) -> dict[str, np.ndarray]:
    """Features per row from the customer's earlier rows only; rows sorted by customer, time."""
    n = len(customer)
    first = np.r_[True, customer[1:] != customer[:-1]]
    start_index = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    seconds_since_prev = np.r_[-1, np.diff(time)]
    seconds_since_prev[first] = -1  # no previous transaction: written as an empty field
    # Earlier transactions of the same customer in the hour before this one.
    key = customer.astype(np.int64) * (1 << 40) + time
    window_start = np.searchsorted(key, key - 3600, side="left")
    tx_count_1h = np.arange(n) - np.maximum(window_start, start_index)
    # Amount over the mean of the customer's earlier amounts.
    cumulative = np.cumsum(amount)
    previous_sum = cumulative - amount - (cumulative - amount)[start_index]
    previous_count = np.arange(n) - start_index
    with np.errstate(divide="ignore", invalid="ignore"):
        amount_to_mean = np.where(first, np.nan, amount * previous_count / previous_sum)
    return {
        "seconds_since_prev": seconds_since_prev,
        "tx_count_1h": tx_count_1h,
        "amount_to_mean": amount_to_mean,
    }


def simulate(config: SimulationConfig) -> dict[str, np.ndarray]:
    """Simulate the transactions described by ``config``.

    Returns:
        Numpy columns named as ``COLUMNS`` (ids, categories and the timestamp as
        strings; ``seconds_since_prev`` is -1 and ``amount_to_mean`` NaN on a
        customer's first transaction), plus ``pattern``: the index in
        ``PATTERNS`` of the fraud pattern of each row (0 for legitimate rows),
        which is not written to the file.
    """
    rng = np.random.default_rng(config.seed)
    span = config.days * SECONDS_PER_DAY
    customers = _customers(rng, config.n_customers, span)
    merchants = _merchants(rng, config.n_merchants)
    testing, takeover, unusual = _fraud_counts(config.size, config.fraud_rate)
    parts = [
        _legit(rng, config.size - testing - takeover - unusual, span, customers, merchants),
        _card_testing(rng, testing, span, customers, merchants),
        _account_takeover(rng, takeover, span, customers, merchants),
        _unusual_merchant_geo(rng, unusual, span, customers, merchants),
    ]
    rows = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    order = np.lexsort((rows["time"], rows["customer"]))
    rows = {name: column[order] for name, column in rows.items()}
    rows.update(_behaviour_features(rows["customer"], rows["time"], rows["amount"]))
    # The file is in time order; within a second, by customer and then by the
    # per-customer order the features were computed in.
    order = np.lexsort((np.arange(config.size), rows["customer"], rows["time"]))
    rows = {name: column[order] for name, column in rows.items()}

    time = rows.pop("time")
    start = np.datetime64(config.start, "D").astype("datetime64[s]")
    width = len(str(config.size))
    rows["transaction_id"] = np.array([f"T{i:0{width}d}" for i in range(1, config.size + 1)])
    rows["timestamp"] = (start + time.astype("timedelta64[s]")).astype(str)
    rows["hour"] = (time // 3600) % 24
    rows["customer_id"] = _labels("C", config.n_customers)[rows.pop("customer")]
    rows["merchant_id"] = _labels("M", config.n_merchants)[rows.pop("merchant")]
    rows["merchant_category"] = np.array(CATEGORIES, dtype=object)[rows.pop("category")]
    channel = rows.pop("channel")
    rows["channel"] = np.array(CHANNELS, dtype=object)[channel]
    rows["country"] = np.array(COUNTRIES, dtype=object)[rows["country"]]
    rows["card_present"] = (channel != ONLINE).astype(np.int8)
    rows["is_fraud"] = (rows["pattern"] > 0).astype(np.int8)
    return {name: rows[name] for name in (*COLUMNS, "pattern")}


def _labels(prefix: str, n: int) -> np.ndarray:
    width = len(str(n))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


# --------------------------------------------------------------------------- writing


def _resolve_output(out: Path, default_name: str, suffixes: Sequence[str]) -> Path:
    """The file to write: ``out`` itself, or ``default_name`` inside it when it is a folder.

    Providers are also called with a folder (a new project's ``data/``), so a path
    without a suffix, or an existing folder, gets the default file name.
    """
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / default_name
    if out.suffix.lower() not in suffixes:
        raise ValueError(f"out must end in {' or '.join(suffixes)}, got {str(out)!r}")
    if out.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        # ValueError, like every other unusable argument, so the CLI reports it cleanly.
        raise ValueError(
            f"writing {out.name} needs pyarrow, which is not installed: "
            "pip install pyarrow, or give a path ending in .csv"
        )
    return out


def _optional(values: np.ndarray, missing: np.ndarray, fmt: str) -> list[str]:
    return [
        "" if gone else fmt % value
        for value, gone in zip(values.tolist(), missing.tolist(), strict=True)
    ]


def _csv_lines(columns: dict[str, np.ndarray]) -> Iterable[str]:
    ssp = columns["seconds_since_prev"]
    ratio = columns["amount_to_mean"]
    fields = [
        columns["transaction_id"].tolist(),
        columns["timestamp"].tolist(),
        columns["customer_id"].tolist(),
        columns["merchant_id"].tolist(),
        columns["merchant_category"].tolist(),
        columns["channel"].tolist(),
        columns["country"].tolist(),
        columns["amount"].tolist(),
        columns["card_present"].tolist(),
        columns["hour"].tolist(),
        _optional(ssp, ssp < 0, "%d"),
        columns["tx_count_1h"].tolist(),
        _optional(ratio, np.isnan(ratio), "%.4f"),
        columns["is_fraud"].tolist(),
    ]
    line = "%s,%s,%s,%s,%s,%s,%s,%.2f,%d,%d,%s,%d,%s,%d\n"
    return (line % row for row in zip(*fields, strict=True))


def _write_parquet(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ssp, ratio = columns["seconds_since_prev"], columns["amount_to_mean"]
    table = pa.table(
        {
            **{name: pa.array(columns[name].tolist(), pa.string()) for name in COLUMNS[:7]},
            "amount": pa.array(columns["amount"]),
            "card_present": pa.array(columns["card_present"]),
            "hour": pa.array(columns["hour"]),
            "seconds_since_prev": pa.array(ssp, mask=ssp < 0),
            "tx_count_1h": pa.array(columns["tx_count_1h"]),
            "amount_to_mean": pa.array(ratio, mask=np.isnan(ratio)),
            "is_fraud": pa.array(columns["is_fraud"]),
        }
    )
    pq.write_table(table, path)


def _atomic_write(out: Path, header: Sequence[str], lines: Iterable[str]) -> None:
    """Write a CSV next to ``out`` under a temporary name, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(header) + "\n")
            batch: list[str] = []
            for line in lines:
                batch.append(line)
                if len(batch) == 65_536:
                    handle.write("".join(batch))
                    batch.clear()
            handle.write("".join(batch))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_transactions(
    out: Path, *, size: int | None = None, seed: int = 0, fraud_rate: float = 0.002, **kw: Any
) -> str:
    """Write simulated card transactions with injected fraud to ``out``.

    Args:
        out: A ``.csv`` file, or ``.parquet`` when pyarrow is installed; a folder
            gets ``transactions.csv``.
        size: Number of rows; 20,000 by default.
        seed: Seed; the same arguments give a byte-identical file.
        fraud_rate: Share of fraudulent rows, in (0, 0.5).
        **kw: Other fields of ``SimulationConfig`` (days, start, customers, merchants).

    Returns:
        A one-line summary of what was written.
    """
    config = SimulationConfig(
        size=DEFAULT_SIZE if size is None else size, seed=seed, fraud_rate=fraud_rate, **kw
    )
    out = _resolve_output(out, "transactions.csv", (".csv", ".parquet"))
    columns = simulate(config)
    if out.suffix.lower() == ".parquet":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            _write_parquet(columns, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        _atomic_write(out, COLUMNS, _csv_lines(columns))
    frauds = int(columns["is_fraud"].sum())
    return (
        f"wrote {config.size:,} transactions ({frauds:,} fraud, {frauds / config.size:.3%}) "
        f"of {config.n_customers:,} customers at {config.n_merchants:,} merchants "
        f"over {config.days} days to {out}"
    )


# --------------------------------------------------------------------------- public schema

CREDITCARD_COLUMNS = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class")
# Components whose mean moves for fraud, and by how many standard deviations:
# a few strong (as V14, V17, V12 are in the public data) and several weak ones,
# sized so a logistic regression reaches a PR-AUC of about 0.5-0.75, as on the public data.
CREDITCARD_SHIFT = {14: -1.45, 17: -1.2, 12: -1.1, 10: -0.9, 4: 0.85, 11: 0.7, 3: -0.65,
                    16: -0.6, 7: -0.5, 2: 0.4, 1: -0.4, 9: -0.35, 18: -0.3, 21: 0.2}  # fmt: skip


def simulate_creditcard(
    size: int = DEFAULT_SIZE, seed: int = 0, fraud_rate: float = 0.0017
) -> dict[str, np.ndarray]:
    """Rows in the public credit-card schema: Time, V1..V28 (PCA-like), Amount, Class."""
    SimulationConfig(size=size, seed=seed, fraud_rate=fraud_rate)  # validates the arguments
    rng = np.random.default_rng(seed)
    label = np.zeros(size, dtype=np.int8)
    frauds = max(1, round(size * fraud_rate)) if size > 1 else 0
    label[rng.choice(size, size=frauds, replace=False)] = 1
    # Decreasing variances like principal components; a random mixing adds the
    # within-class correlation that the published components also show.
    std = np.linspace(1.95, 0.3, 28)
    mixing = np.eye(28) + rng.normal(0.0, 0.25, size=(28, 28)) * (rng.random((28, 28)) < 0.2)
    latent = rng.standard_normal((size, 28)) @ mixing.T
    latent /= latent.std(axis=0, keepdims=True)
    shift = np.zeros(28)
    for component, value in CREDITCARD_SHIFT.items():
        shift[component - 1] = value
    # Fraud is also more spread out, so it is not one tight blob.
    spread = np.where(label[:, None] == 1, 1.6, 1.0)
    features = (latent * spread + label[:, None] * shift) * std
    amount = np.round(
        np.where(label == 1, rng.lognormal(3.2, 1.6, size), rng.lognormal(3.1, 1.3, size)), 2
    )
    # Two days of seconds with a night-time dip, as in the public file.
    hour = (rng.normal(14.0, 4.5, size) % 24.0) + 24.0 * rng.integers(0, 2, size)
    time = np.sort(np.floor(hour * 3600.0))
    return {"Time": time, "V": features, "Amount": amount, "Class": label}


def write_creditcard_schema(
    out: Path, *, size: int | None = None, seed: int = 0, fraud_rate: float = 0.0017
) -> str:
    """Write a synthetic CSV in the public ``Time, V1..V28, Amount, Class`` schema.

    Args:
        out: A ``.csv`` file; a folder gets ``creditcard.csv``.
        size: Number of rows; 20,000 by default.
        seed: Seed; the same arguments give a byte-identical file.
        fraud_rate: Share of rows with ``Class`` 1, in (0, 0.5).

    Returns:
        A one-line summary of what was written.
    """
    size = DEFAULT_SIZE if size is None else size
    out = _resolve_output(out, "creditcard.csv", (".csv",))
    data = simulate_creditcard(size, seed, fraud_rate)
    line = "%.1f," + "%.6f," * 28 + "%.2f,%d\n"
    columns = [data["Time"], *data["V"].T, data["Amount"], data["Class"]]
    rows = zip(*(column.tolist() for column in columns), strict=True)
    _atomic_write(out, CREDITCARD_COLUMNS, (line % row for row in rows))
    positives = int(data["Class"].sum())
    return (
        f"wrote {size:,} rows in the Time, V1..V28, Amount, Class schema "
        f"({positives:,} with Class 1) to {out}"
    )
