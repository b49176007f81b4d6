"""Per-customer features, episodes and holdout splits on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import DataQualityReport, load_transactions
from rtt_models.features import EPISODE_COVARIATES, build_episodes, build_features, split_calibration_holdout


def customer_x() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["X", "X", "X", "X"],
            "timestamp": ["2023-03-04 09:00", "2023-03-04 17:30", "2023-03-10", "2023-03-31"],
            "amount": [12.0, 8.0, 30.0, 5.0],
        }
    )


def customer_y() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["Y", "Y", "Y", "Y"],
            "timestamp": ["2023-06-01", "2023-06-12", "2023-06-12", "2023-06-25"],
            "amount": [50.0, 30.0, -30.0, 20.0],
        }
    )


def test_customer_x_hand_computed():
    row = build_features(customer_x(), as_of="2023-04-30").loc["X"]
    assert row["n_occasions"] == 3
    assert row["frequency"] == 2
    assert row["recency_days"] == 27
    assert row["tenure_days"] == 57
    assert row["elapsed_days"] == 30
    assert row["gap_mean_days"] == 13.5
    assert row["spend_mean_repeat"] == 17.5
    # Gaps 6 and 21 days: median 13.5, slope 15 days per gap, sample std 10.607.
    assert row["gap_median_days"] == 13.5
    assert row["gap_trend"] == 15.0
    assert row["gap_std_days"] == pytest.approx(np.std([6, 21], ddof=1))
    assert row["log_gap_mean"] == pytest.approx(np.log([6, 21]).mean())
    assert row["gap_min_days"] == 6
    assert row["gap_max_days"] == 21
    assert row["gap_last_days"] == 21
    assert row["spend_total"] == 55.0
    assert row["spend_last"] == 5.0
    assert row["overdue_ratio"] == pytest.approx(30 / 13.5)
    assert row["last_purchase_date"] == pd.Timestamp("2023-03-31")


def test_customer_x_any_row_order_same_row():
    expected = build_features(customer_x(), as_of="2023-04-30")
    for seed in range(5):
        shuffled = customer_x().sample(frac=1.0, random_state=seed)
        pd.testing.assert_frame_equal(build_features(shuffled, as_of="2023-04-30"), expected)


def test_customer_y_net_zero_day_excluded():
    report = DataQualityReport()
    row = build_features(customer_y(), as_of="2023-06-30", report=report).loc["Y"]
    assert row["n_occasions"] == 2
    assert row["frequency"] == 1
    assert row["recency_days"] == 24
    assert row["tenure_days"] == 29
    assert row["spend_mean_repeat"] == 20
    assert report.repairs["days_excluded"] == 1
    assert report.repairs["refund_rows_netted"] == 1


def test_customer_y_rule_all_counts_net_zero_day():
    row = build_features(customer_y(), as_of="2023-06-30", occasion_rule="all").loc["Y"]
    assert row["n_occasions"] == 3
    assert row["spend_mean_repeat"] == 10.0


def test_customer_z_month_first_without_cutoff():
    frame = pd.DataFrame({"customer_id": ["Z"] * 3, "date": ["11/20/2023", "12/05/2023", "01/15/2024"]})
    features = build_features(load_transactions(frame, date_format="%m/%d/%Y"))
    assert features.attrs["as_of"] == "2024-01-15"
    assert features.loc["Z", "frequency"] == 2
    assert features.loc["Z", "recency_days"] == 56
    assert np.isnan(features.loc["Z", "spend_total"])


def test_date_only_cutoff_includes_whole_day():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2023-01-01 10:00", "2023-01-05 23:59"],
                          "amount": [1.0, 1.0]})
    assert build_features(frame, as_of="2023-01-05").loc["a", "n_occasions"] == 2
    assert build_features(frame, as_of="2023-01-05 12:00").loc["a", "n_occasions"] == 1


def test_refund_after_cutoff_does_not_reduce_earlier_day():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a"],
                          "timestamp": ["2023-01-01", "2023-01-05 10:00", "2023-01-05 18:00"],
                          "amount": [5.0, 10.0, -10.0]})
    assert build_features(frame, as_of="2023-01-05 12:00").loc["a", "n_occasions"] == 2
    assert build_features(frame, as_of="2023-01-05").loc["a", "n_occasions"] == 1


def test_undefined_values_are_nan_for_one_time_buyer():
    frame = pd.DataFrame({"customer_id": ["a"], "date": ["2023-01-01"], "amount": [3.0]})
    row = build_features(frame, as_of="2023-01-11").loc["a"]
    assert row["elapsed_days"] == 10
    assert row["tenure_days"] == 10
    for column in ("gap_mean_days", "gap_median_days", "gap_std_days", "gap_trend", "spend_mean_repeat",
                   "overdue_ratio", "log_gap_mean"):
        assert np.isnan(row[column]), column


def test_regular_customer_has_zero_spread():
    days = pd.date_range("2023-01-01", periods=6, freq="7D")
    frame = pd.DataFrame({"customer_id": "r", "timestamp": days, "amount": 1.0})
    row = build_features(frame).loc["r"]
    assert row["gap_std_days"] == 0.0
    assert row["gap_cv"] == 0.0
    assert row["gap_trend"] == 0.0
    assert row["log_gap_std"] == pytest.approx(0.0, abs=1e-12)


def test_passthrough_takes_latest_value_regardless_of_order():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a"], "date": ["2023-01-01", "2023-02-01", "2023-03-01"],
                          "amount": [1.0, 1.0, 1.0], "tier": ["bronze", "silver", "gold"]})
    log = load_transactions(frame.iloc[::-1], columns={"passthrough": ["tier"]})
    assert build_features(log).loc["a", "tier"] == "gold"
    assert build_features(log, as_of="2023-02-15").loc["a", "tier"] == "silver"


def test_episodes_of_customer_x():
    episodes = build_episodes(customer_x(), as_of="2023-04-30")
    assert episodes["duration"].tolist() == [6.0, 21.0, 30.0]
    assert episodes["event"].tolist() == [True, True, False]
    assert episodes["n_occasions"].tolist() == [1, 2, 3]
    assert episodes["gap_last_days"].iloc[1:].tolist() == [6.0, 21.0]
    assert np.isnan(episodes["gap_mean_days"].iloc[0])
    assert episodes["spend_total"].tolist() == [20.0, 50.0, 55.0]
    assert (episodes["elapsed_days"] == 0).all()


def test_last_episode_matches_features():
    frame = pd.concat([customer_x(), customer_y()])
    episodes = build_episodes(frame, as_of="2023-06-30")
    features = build_features(frame, as_of="2023-06-30")
    last = episodes.groupby("customer_id").tail(1).set_index("customer_id")
    pd.testing.assert_frame_equal(last[list(EPISODE_COVARIATES)], features[list(EPISODE_COVARIATES)],
                                  check_names=False)
    assert (last["duration"] == features["elapsed_days"]).all()


def test_split_truth_counts_days_from_day_after_cutoff():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"],
                          "date": ["2023-01-01", "2023-01-02", "2023-01-04", "2023-01-01", "2023-01-03"],
                          "amount": [5.0, 6.0, 7.0, 5.0, 9.0]})
    split = split_calibration_holdout(frame, "2023-01-01", window_days=3)
    truth = split.truth
    assert truth.loc["a", "days_to_next"] == 1
    assert truth.loc["a", "n_occasions_holdout"] == 2
    assert truth.loc["a", "spend_per_occasion_holdout"] == 6.5
    assert truth.loc["b", "event"] == False  # noqa: E712 (numpy bool)
    assert truth.loc["b", "days_to_next"] == 3
    assert split.new_customers.index.tolist() == ["c"]
    assert split.report.repairs["customers_first_seen_after_cutoff"] == 1
    assert split.features.index.tolist() == ["a", "b"]
    shorter = split_calibration_holdout(frame, "2023-01-01", window_days=2).truth
    assert shorter.loc["a", "n_occasions_holdout"] == 1


def test_split_rejects_bad_window():
    with pytest.raises(ValueError, match="window_days must be a whole number of days >= 1, got 0"):
        split_calibration_holdout(customer_x(), "2023-03-31", window_days=0)


def test_cutoff_outside_supported_dates_rejected():
    with pytest.raises(Exception, match=r"cannot read the cut-off 'June': write it as YYYY-MM-DD"):
        build_features(customer_x(), as_of="June")
    with pytest.raises(Exception, match=r"cannot read the cut-off '01/02/2023'.*day-first and month-first"):
        build_features(customer_x(), as_of="01/02/2023")
    with pytest.raises(Exception, match=r"reads as 0001-01-01.*outside the dates pandas supports"):
        build_features(customer_x(), as_of="0001-01-01")


def test_customer_ranges_give_same_statistics():
    # Features are computed on ranges of customers in threads, so any split must give the same arrays.
    from rtt_models.data import form_occasions
    from rtt_models.data.threads import balanced_cuts
    from rtt_models.features.history import customer_statistic_columns, last_gap_medians

    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "customer_id": rng.choice([f"c{i}" for i in range(40)], 600),
        "timestamp": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 200, 600), unit="D"),
        "amount": rng.choice([-10.0, 5.0, 12.5, 40.0], 600),
    })
    occasions = form_occasions(load_transactions(frame), start=None, end=pd.Timestamp("2024-01-01"))
    whole = customer_statistic_columns(occasions)
    whole["gap_median_days"] = last_gap_medians(occasions)
    for n_parts in (2, 3, 7):
        cuts = balanced_cuts(occasions.starts, n_parts)
        parts = [occasions.customer_range(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        assert sum(len(part.customer_ids) for part in parts) == len(occasions.customer_ids)
        for name, values in whole.items():
            if name == "gap_median_days":
                joined = np.concatenate([last_gap_medians(part) for part in parts])
            else:
                joined = np.concatenate([customer_statistic_columns(part)[name] for part in parts])
            np.testing.assert_array_equal(joined, values, err_msg=f"{name} with {n_parts} parts")


def test_balanced_cuts_split_rows_evenly():
    from rtt_models.data.threads import balanced_cuts

    offsets = np.array([0, 10, 20, 30, 40])
    assert balanced_cuts(offsets, 2).tolist() == [0, 2, 4]
    # One customer with most rows leaves an empty range instead of splitting the customer.
    skewed = np.array([0, 1, 100, 101])
    assert balanced_cuts(skewed, 3).tolist() == [0, 2, 2, 3]
