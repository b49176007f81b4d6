"""Tests of the simulated transaction log against the parameters that made it."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from rtt_models.data.simulate import DEFAULT_SEGMENTS, SegmentSpec, SimulatedData, simulate_transactions

NO_ARTEFACTS = {"split_rate": 0.0, "refund_rate": 0.0, "duplicate_rate": 0.0}


@pytest.fixture(scope="module")
def simulated() -> SimulatedData:
    """Default settings with 20,000 customers, seed 1."""
    return simulate_transactions(20_000, seed=1)


def purchase_days(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return one row per customer and day with a positive net amount, sorted."""
    day = transactions["timestamp"].dt.normalize()
    net = transactions.groupby([transactions["customer_id"], day])["amount"].sum()
    days = net[net > 0].reset_index()[["customer_id", "timestamp"]]
    return days.rename(columns={"timestamp": "day"}).sort_values(["customer_id", "day"], ignore_index=True)


# ------------------------------------------------------------ determinism


def test_same_seed_gives_identical_frames():
    first = simulate_transactions(2_000, seed=7)
    second = simulate_transactions(2_000, seed=7)

    pd.testing.assert_frame_equal(first.transactions, second.transactions)
    pd.testing.assert_frame_equal(first.customers, second.customers)
    assert first.window_start == second.window_start
    assert first.window_end == second.window_end


def test_different_seeds_differ():
    first = simulate_transactions(2_000, seed=7)
    second = simulate_transactions(2_000, seed=8)

    assert not first.customers["purchase_rate_per_day"].equals(second.customers["purchase_rate_per_day"])
    assert len(first.transactions) != len(second.transactions)
    assert not first.transactions["amount"].head(100).equals(second.transactions["amount"].head(100))


# ----------------------------------------------------------------- schema


def test_transaction_columns_and_types(simulated):
    transactions = simulated.transactions

    assert list(transactions.columns) == ["customer_id", "timestamp", "amount", "segment", "channel"]
    assert transactions["timestamp"].dtype == np.dtype("datetime64[ns]")
    assert transactions["amount"].dtype == np.float64
    assert transactions["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert set(transactions["segment"]) == {segment.name for segment in DEFAULT_SEGMENTS}
    assert set(transactions["channel"]) == {"web", "store", "app"}
    assert transactions["timestamp"].is_monotonic_increasing
    assert (transactions["amount"] != 0).all()
    assert np.allclose(transactions["amount"], transactions["amount"].round(2))


def test_timestamps_inside_window_with_time_of_day(simulated):
    timestamps = simulated.transactions["timestamp"]

    assert simulated.window_start == pd.Timestamp("2022-01-01")
    assert simulated.window_end == pd.Timestamp("2024-01-01")
    assert timestamps.min() >= simulated.window_start
    assert timestamps.max() < simulated.window_end
    assert (timestamps != timestamps.dt.normalize()).mean() > 0.99

    # Shop hours: most purchases between 08:00 and 22:00, few between 01:00 and 05:00.
    hour = timestamps.dt.hour
    assert hour.between(8, 21).mean() > 0.85
    assert hour.between(1, 4).mean() < 0.03


def test_customers_frame_matches_transactions(simulated):
    customers = simulated.customers
    transactions = simulated.transactions

    assert len(customers) == 20_000
    assert customers.index.name == "customer_id"
    assert customers.index.is_unique
    assert customers.index[0] == "C000001"
    assert customers.index[-1] == "C020000"
    assert set(transactions["customer_id"]) == set(customers.index)
    assert customers["n_rows"].sum() == len(transactions)
    pd.testing.assert_series_equal(
        transactions.groupby("customer_id").size().sort_index(), customers["n_rows"], check_names=False
    )
    first_row = transactions.groupby("customer_id")["timestamp"].min()
    assert (first_row.reindex(customers.index) == customers["acquisition_date"]).all()


def test_segment_ground_truth_follows_specs(simulated):
    customers = simulated.customers

    for spec in DEFAULT_SEGMENTS:
        members = customers[customers["segment"] == spec.name]
        share_sd = math.sqrt(spec.share * (1 - spec.share) / len(customers))
        assert abs(len(members) / len(customers) - spec.share) < 4 * share_sd, spec.name
        assert (members["regularity_k"] == spec.regularity_k).all(), spec.name

        # Gamma mean of the purchase rate: standard error mean / sqrt(shape * n).
        rate_sd = spec.rate_mean_per_day / math.sqrt(spec.rate_shape * len(members))
        assert abs(members["purchase_rate_per_day"].mean() - spec.rate_mean_per_day) < 4 * rate_sd, spec.name


def test_customer_ids_pad_to_six_digits():
    data = simulate_transactions(12, seed=0)

    assert list(data.customers.index[:2]) == ["C000001", "C000002"]
    assert data.customers.index[-1] == "C000012"


# ------------------------------------------------------- purchase process


def test_repeat_rate_matches_gamma_mean():
    """Poisson customers without dropout, all acquired on day 0, over 730 days.

    Each customer's repeat count is negative binomial with mean m * D and
    variance m * D + (m * D)**2 / r, for mean rate m, gamma shape r and
    exposure D = 730 days, which sets the tolerance on the mean of
    count / D.
    """
    mean_rate, shape, n_customers, exposure_days = 0.05, 2.0, 5_000, 730.0
    segments = (SegmentSpec("poisson", 1.0, mean_rate, shape),)
    data = simulate_transactions(n_customers, seed=3, acquisition_days=1, segments=segments, **NO_ARTEFACTS)

    repeats = data.customers["n_rows"] - 1
    observed_rate = (repeats / exposure_days).mean()
    rate_sd = math.sqrt((mean_rate / exposure_days + mean_rate**2 / shape) / n_customers)
    assert abs(observed_rate - mean_rate) < 4 * rate_sd
    assert data.customers["dropout_date"].isna().all()

    # Given each customer's own rate, the total count is Poisson.
    expected_total = (data.customers["purchase_rate_per_day"] * exposure_days).sum()
    assert abs(repeats.sum() - expected_total) < 4 * math.sqrt(expected_total) + 0.01 * expected_total


def test_rows_per_purchase_follow_artefact_rates(simulated):
    """Rows per purchase are (1 + split_rate) * (1 + refund_rate + duplicate_rate)."""
    purchases = simulated.customers["n_purchases"].sum()
    rows = len(simulated.transactions)
    split_rate, refund_rate, duplicate_rate = 0.03, 0.02, 0.001

    expected = (1 + split_rate) * (1 + refund_rate + duplicate_rate)
    ratio_sd = math.sqrt(
        (split_rate * (1 - split_rate) + refund_rate * (1 - refund_rate) + duplicate_rate) / purchases
    )
    assert abs(rows / purchases - expected) < 4 * ratio_sd


def test_rows_per_customer_at_documented_rate_scales():
    """Documented sizes: 7.6 rows per customer at rate_scale 1.0, 10.0 at 1.37."""
    for rate_scale, rows_per_customer in [(1.0, 7.6), (1.37, 10.0)]:
        data = simulate_transactions(20_000, seed=2, rate_scale=rate_scale)
        assert abs(len(data.transactions) / 20_000 - rows_per_customer) < 0.35, rate_scale


def test_rate_scale_multiplies_true_rates():
    base = simulate_transactions(1_000, seed=4)
    doubled = simulate_transactions(1_000, seed=4, rate_scale=2.0)

    np.testing.assert_allclose(
        doubled.customers["purchase_rate_per_day"], 2.0 * base.customers["purchase_rate_per_day"], rtol=1e-12
    )
    assert doubled.customers["n_purchases"].sum() > 1.6 * base.customers["n_purchases"].sum()


def test_regular_segment_has_lower_gap_cv(simulated):
    """Erlang-4 gaps have CV 0.5, exponential gaps CV 1.

    The test compares the median per-customer sample CV over customers with
    at least 10 gaps. The sample CV of exponential gaps is biased low for
    short series, so the bound for the Poisson segments is 0.85.
    """
    days = purchase_days(simulated.transactions)
    gaps = days.groupby("customer_id")["day"].diff().dt.days.dropna()
    gap_stats = gaps.groupby(days.loc[gaps.index, "customer_id"]).agg(["mean", "std", "size"])
    gap_stats = gap_stats[gap_stats["size"] >= 10]
    cv = (gap_stats["std"] / gap_stats["mean"]).groupby(simulated.customers["segment"]).median()

    assert cv["replenishment"] < 0.6
    assert cv["frequent"] > 0.85
    assert cv["occasional"] > 0.85


def test_december_share_exceeds_average_month(simulated):
    without_season = simulate_transactions(20_000, seed=1, season_amplitude=0.0)

    december_share = (simulated.transactions["timestamp"].dt.month == 12).mean()
    flat_december_share = (without_season.transactions["timestamp"].dt.month == 12).mean()
    assert december_share > 1.5 / 12
    # Without the season December is still above 1/12, because customers
    # acquired during the first year make the active base grow until December.
    assert december_share > 1.3 * flat_december_share


def test_acquisition_spread_over_first_year(simulated):
    acquisition_days = (simulated.customers["acquisition_date"] - simulated.window_start).dt.days

    assert acquisition_days.min() >= 0
    assert acquisition_days.max() < 365
    quarter_counts = np.bincount((acquisition_days // 92).clip(upper=3), minlength=4)
    expected = len(acquisition_days) * np.array([92, 92, 92, 89]) / 365
    assert np.all(np.abs(quarter_counts - expected) < 4 * np.sqrt(expected))


# ---------------------------------------------------------------- dropout


def test_no_purchase_after_dropout_day(simulated):
    customers = simulated.customers
    last_day = simulated.transactions.groupby("customer_id")["timestamp"].max().dt.normalize()
    dropped = customers["dropout_date"].notna()

    assert 0.3 < dropped.mean() < 0.8
    assert (last_day[dropped[dropped].index] <= customers.loc[dropped, "dropout_date"].dt.normalize()).all()
    assert (customers.loc[dropped, "dropout_date"] >= customers.loc[dropped, "acquisition_date"]).all()
    assert (customers.loc[dropped, "dropout_date"] < simulated.window_end).all()


def test_dropped_customers_stop_buying(simulated):
    """Customers who dropped out in the first year buy nothing in the second."""
    customers = simulated.customers
    early = customers.index[customers["dropout_date"] < pd.Timestamp("2023-01-01")]
    second_year = simulated.transactions[simulated.transactions["timestamp"] >= pd.Timestamp("2023-01-02")]
    active_second_year = set(second_year["customer_id"])

    assert len(early) > 1_000
    assert active_second_year.isdisjoint(early)


def test_segment_without_dropout_never_drops():
    segments = (
        SegmentSpec("loyal", 0.5, 0.02, 4.0),
        SegmentSpec("churning", 0.5, 0.02, 4.0, dropout_mean_per_day=0.01, dropout_shape=4.0),
    )
    customers = simulate_transactions(2_000, seed=5, segments=segments).customers

    assert customers.loc[customers["segment"] == "loyal", "dropout_date"].isna().all()
    assert (customers.loc[customers["segment"] == "loyal", "dropout_rate_per_day"] == 0).all()
    # Mean lifetime 100 days: nearly every churning customer drops out within the window.
    assert customers.loc[customers["segment"] == "churning", "dropout_date"].notna().mean() > 0.95


# ------------------------------------------------------------------ spend


def test_spend_matches_gamma_gamma_means():
    """Population mean spend p * gamma / (q - 1) = 6 * 15 / 3 = 30."""
    data = simulate_transactions(5_000, seed=6, **NO_ARTEFACTS)
    customers = data.customers

    population_sd = 30 / math.sqrt(2 * len(customers))  # CV of 1 / nu is 1 / sqrt(q - 2) with q = 4.
    assert abs(customers["mean_spend"].mean() - 30) < 4 * population_sd

    # Per-occasion spend is gamma with shape 6 (CV 0.41) around the customer's mean.
    expected_total = (customers["n_purchases"] * customers["mean_spend"]).sum()
    ratio = data.transactions["amount"].sum() / expected_total
    assert abs(ratio - 1) < 4 * (1 / math.sqrt(6)) * math.sqrt(
        (customers["n_purchases"] * customers["mean_spend"] ** 2).sum()
    ) / expected_total
    assert (data.transactions["amount"] >= 0.01).all()


# ------------------------------------------------------ recording artefacts


def test_refunds_never_exceed_same_day_purchases(simulated):
    transactions = simulated.transactions
    keys = [transactions["customer_id"], transactions["timestamp"].dt.normalize()]
    purchased = transactions["amount"].clip(lower=0).groupby(keys).sum()
    refunded = (-transactions["amount"]).clip(lower=0).groupby(keys).sum()

    refund_rows = (transactions["amount"] < 0).sum()
    positive_rows = (transactions["amount"] > 0).sum()
    assert abs(refund_rows / positive_rows - 0.02) < 4 * math.sqrt(0.02 * 0.98 / positive_rows)
    assert (refunded <= purchased + 1e-9).all()
    assert (purchased[refunded > 0] > 0).all()
    # Full refunds leave days whose net amount is zero.
    assert ((refunded > 0) & np.isclose(purchased, refunded)).sum() > 100


def test_refund_comes_after_purchase_on_same_day(simulated):
    transactions = simulated.transactions
    refunds = transactions[transactions["amount"] < 0]
    purchases = transactions[transactions["amount"] > 0]
    first_purchase = purchases.groupby([purchases["customer_id"], purchases["timestamp"].dt.normalize()])[
        "timestamp"
    ].min()

    keys = pd.MultiIndex.from_arrays([refunds["customer_id"], refunds["timestamp"].dt.normalize()])
    assert (refunds["timestamp"].to_numpy() >= first_purchase.reindex(keys).to_numpy()).all()


def test_same_day_rows_and_exact_duplicates_exist(simulated):
    transactions = simulated.transactions
    positive = transactions[transactions["amount"] > 0]
    rows_per_day = positive.groupby([positive["customer_id"], positive["timestamp"].dt.normalize()]).size()
    duplicates = transactions.duplicated().sum()
    purchase_rows = simulated.customers["n_purchases"].sum() * 1.03

    assert (rows_per_day >= 2).mean() > 0.02
    assert abs(duplicates - 0.001 * purchase_rows) < 4 * math.sqrt(0.001 * purchase_rows)


def test_no_artefacts_when_rates_are_zero():
    data = simulate_transactions(2_000, seed=9, **NO_ARTEFACTS)

    assert (data.transactions["amount"] > 0).all()
    assert not data.transactions.duplicated().any()
    assert (data.customers["n_rows"] == data.customers["n_purchases"]).all()


# ------------------------------------------------------------- speed, size


def test_ten_thousand_customers_under_two_seconds():
    started = time.perf_counter()
    data = simulate_transactions(10_000, seed=0)
    elapsed = time.perf_counter() - started

    assert len(data.customers) == 10_000
    assert elapsed < 2.0


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"n_customers": 0}, r"n_customers must be an integer >= 1, got 0", id="no-customers"),
        pytest.param({"n_customers": 2.5}, r"n_customers must be an integer >= 1, got 2\.5", id="float-customers"),
        pytest.param({"seed": -1}, r"seed must be an integer >= 0, got -1", id="negative-seed"),
        pytest.param({"seed": True}, r"seed must be an integer >= 0, got True", id="bool-seed"),
        pytest.param({"days": 0}, r"days must be an integer between 1 and 36500, got 0", id="no-days"),
        pytest.param(
            {"days": 100, "acquisition_days": 200},
            r"acquisition_days must be an integer between 1 and 100, got 200",
            id="acquisition-beyond-window",
        ),
        pytest.param(
            {"rate_scale": 0.0}, r"rate_scale must be a finite number > 0\.0 and <= 100\.0, got 0\.0", id="zero-scale"
        ),
        pytest.param({"rate_scale": 1e6}, r"rate_scale must be .* <= 100\.0, got 1000000\.0", id="huge-scale"),
        pytest.param(
            {"rate_scale": float("nan")}, r"rate_scale must be a finite number > 0\.0 and <= 100\.0, got nan", id="nan-scale"
        ),
        pytest.param(
            {"season_amplitude": -0.5}, r"season_amplitude must be a finite number >= 0.0", id="negative-season"
        ),
        pytest.param({"spend_q": 1.0}, r"spend_q must be a finite number > 1.0, got 1\.0", id="infinite-spend"),
        pytest.param(
            {"refund_rate": 1.5}, r"refund_rate must be a finite number >= 0.0 and <= 1.0, got 1\.5", id="refund-rate"
        ),
        pytest.param(
            {"start": "2022-01-01 10:30"}, r"start must be a date without time of day", id="start-with-time"
        ),
        pytest.param(
            {"start": pd.Timestamp("2022-01-01", tz="UTC")}, r"without time of day or time zone", id="start-with-tz"
        ),
        pytest.param({"start": "first of May"}, r"start must be a date such as '2022-01-01'", id="start-unparsable"),
    ],
)
def test_invalid_setting_raises(settings, message):
    with pytest.raises(ValueError, match=message):
        simulate_transactions(**{"n_customers": 10, **settings})


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        pytest.param((), r"segments must be a non-empty tuple of SegmentSpec", id="empty"),
        pytest.param(("frequent",), r"segments\[0\] must be a SegmentSpec, got str", id="not-a-spec"),
        pytest.param(
            (SegmentSpec("a", 0.5, 0.1, 1.0), SegmentSpec("b", 0.4, 0.1, 1.0)),
            r"segment shares must sum to 1, got 0\.9; rescale the shares",
            id="shares-sum",
        ),
        pytest.param(
            (SegmentSpec("a", 0.5, 0.1, 1.0), SegmentSpec("a", 0.5, 0.1, 1.0)),
            r"segment names must be unique, got \['a', 'a'\]",
            id="duplicate-names",
        ),
        pytest.param(
            (SegmentSpec("a", 1.0, 0.1, 1.0, regularity_k=0),),
            r"segment 'a' regularity_k must be an integer between 1 and 100, got 0",
            id="zero-k",
        ),
        pytest.param(
            (SegmentSpec("a", 1.0, -0.1, 1.0),),
            r"segment 'a' rate_mean_per_day must be a finite number > 0\.0, got -0\.1",
            id="negative-rate",
        ),
        pytest.param(
            (SegmentSpec("a", 1.0, 0.1, 1.0, dropout_mean_per_day=-1.0),),
            r"segment 'a' dropout_mean_per_day must be a finite number >= 0\.0",
            id="negative-dropout",
        ),
    ],
)
def test_invalid_segments_raise(segments, message):
    with pytest.raises(ValueError, match=message):
        simulate_transactions(10, segments=segments)
