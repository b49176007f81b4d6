"""Evaluation metrics against naive reference implementations and known cases."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import simulate_transactions
from rtt_models.evaluation.metrics import (
    HIGHER_IS_BETTER,
    brier_score,
    calibration_table,
    evaluable_horizons,
    evaluate_model,
    evaluate_predictions,
    evaluate_scores,
    harrell_c_index,
    integrated_brier_score,
    integrated_calibration_index,
    metric_family,
    predict_for_evaluation,
    roc_auc,
    score_days_since_last_purchase,
    score_purchase_count,
    top_k_precision,
)
from rtt_models.features import split_calibration_holdout
from rtt_models.models import make_model

WINDOW = 10


def make_truth(days, event, occasions=None) -> pd.DataFrame:
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=bool)
    index = pd.Index([f"c{i:03d}" for i in range(days.size)], name="customer_id")
    if occasions is None:
        occasions = event.astype(int)
    return pd.DataFrame(
        {"days_to_next": days, "event": event, "n_occasions_holdout": np.asarray(occasions, dtype=np.int64)},
        index=index,
    )


def random_truth(rng, n, window=WINDOW) -> pd.DataFrame:
    """Integer days in 1..window with many ties; censored customers sit at the window's end."""
    event = rng.random(n) < 0.6
    days = np.where(event, rng.integers(1, window + 1, n), window)
    return make_truth(days, event, np.where(event, rng.integers(1, 4, n), 0))


def naive_c_index(times, events, time_scores) -> float:
    """Harrell's C by looping over pairs: shorter time with an event, or a tie where only the later one is censored."""
    correct = comparable = 0.0
    for i, j in itertools.permutations(range(len(times)), 2):
        if not events[i]:
            continue
        if times[i] < times[j] or (times[i] == times[j] and not events[j]):
            comparable += 1
            if time_scores[i] < time_scores[j]:
                correct += 1
            elif time_scores[i] == time_scores[j]:
                correct += 0.5
    return correct / comparable


def naive_auc(labels, scores) -> float:
    """Share of (positive, negative) pairs ranked right, ties counting one half."""
    pairs = [(p, q) for p in np.flatnonzero(labels) for q in np.flatnonzero(~labels)]
    wins = 0.0
    for p, q in pairs:
        if scores[p] > scores[q]:
            wins += 1.0
        elif scores[p] == scores[q]:
            wins += 0.5
    return wins / len(pairs)


def naive_ibs(curves, times, days, events, window) -> float:
    """Brier score day by day with explicit loops, integrated by the trapezoid rule."""
    by_day = []
    for t_index, t in enumerate(times):
        total = 0.0
        for i in range(len(days)):
            no_purchase_yet = 0.0 if (events[i] and days[i] <= t) else 1.0
            total += (curves[i, t_index] - no_purchase_yet) ** 2
        by_day.append(total / len(days))
    area = sum((by_day[k] + by_day[k + 1]) / 2 * (times[k + 1] - times[k]) for k in range(len(times) - 1))
    return area / window


def oracle_outputs(truth, horizons, window):
    """Predictions that know the holdout: probability 1 for buyers, survival a step at the purchase day."""
    days = truth["days_to_next"].to_numpy()
    event = truth["event"].to_numpy()
    predictions = pd.DataFrame(index=truth.index)
    for h in horizons:
        predictions[f"p_purchase_{h}d"] = (event & (days <= h)).astype(float)
    predictions[f"expected_occasions_{window}d"] = truth["n_occasions_holdout"].astype(float)
    grid = np.arange(window + 1)
    survival = pd.DataFrame(
        (~(event[:, None] & (days[:, None] <= grid[None, :]))).astype(float), index=truth.index, columns=grid
    )
    return predictions, survival


# ------------------------------------------------------------- C-index


@pytest.mark.parametrize(
    ("times", "events", "scores"),
    [
        pytest.param([1, 2, 3, 4], [1, 1, 1, 0], [1, 2, 3, 4], id="perfect"),
        pytest.param([2, 2, 5, 5], [1, 1, 1, 0], [3, 1, 2, 2], id="ties-in-time"),
        pytest.param([1, 3, 5, 7, 9], [1, 0, 1, 1, 0], [2, 2, 2, 5, 1], id="ties-in-score"),
        pytest.param([4, 4, 4, 10, 10], [1, 0, 1, 1, 0], [1, 1, 7, 3, 3], id="ties-in-both"),
    ],
)
def test_c_index_matches_pair_loop(times, events, scores):
    expected = naive_c_index(times, np.asarray(events, bool), scores)
    assert harrell_c_index(times, events, scores) == pytest.approx(expected, abs=1e-12)


def test_c_index_matches_pair_loop_random():
    rng = np.random.default_rng(7)
    truth = random_truth(rng, 60)
    scores = rng.integers(0, 6, 60).astype(float)
    expected = naive_c_index(truth["days_to_next"].to_numpy(), truth["event"].to_numpy(), scores)
    assert harrell_c_index(truth["days_to_next"], truth["event"], scores) == pytest.approx(expected, abs=1e-12)


def test_c_index_without_events_is_nan(caplog):
    with caplog.at_level(logging.WARNING, logger="rtt_models"):
        assert math.isnan(harrell_c_index([10, 10], [False, False], [1.0, 2.0]))
    assert "no customer bought" in caplog.text


def test_c_index_rejects_nan_scores():
    with pytest.raises(ValueError, match="1 are NaN or infinite"):
        harrell_c_index([1, 2], [True, True], [1.0, np.nan])


# ------------------------------------------------- AUC, Brier, calibration


def test_auc_matches_pair_counting():
    rng = np.random.default_rng(3)
    labels = rng.random(80) < 0.4
    scores = rng.integers(0, 8, 80) / 8
    assert roc_auc(labels, scores) == pytest.approx(naive_auc(labels, scores), abs=1e-12)


def test_auc_with_one_outcome_is_nan():
    assert math.isnan(roc_auc([True, True, True], [0.1, 0.5, 0.9]))


def test_brier_counts_purchase_on_window_edge():
    # A purchase on the window's last day is "bought within h = window";
    # a customer censored at the window's end has not bought.
    truth = make_truth([WINDOW, WINDOW, 3], [True, False, True])
    predictions = pd.DataFrame(
        {f"p_purchase_{WINDOW}d": [0.5, 0.2, 1.0], "expected_days_to_next": [9.0, 10.0, 2.0]}, index=truth.index
    )
    metrics = evaluate_predictions(predictions, None, truth, [WINDOW], WINDOW)
    assert metrics[f"base_rate_{WINDOW}d"] == pytest.approx(2 / 3)
    assert metrics[f"brier_{WINDOW}d"] == pytest.approx((0.5**2 + 0.2**2 + 0.0) / 3)
    assert brier_score([True, False, True], [0.5, 0.2, 1.0]) == metrics[f"brier_{WINDOW}d"]
    assert "ibs" not in metrics


def test_calibration_table_and_ici_by_hand():
    bought = [0, 1, 1, 1]
    predicted = [0.9, 0.1, 0.2, 0.8]
    table = calibration_table(bought, predicted, n_groups=2)
    assert table["n"].tolist() == [2, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.15, 0.85])
    assert table["observed_rate"].tolist() == pytest.approx([1.0, 0.5])
    # |0.15 - 1.0| * 2 + |0.85 - 0.5| * 2, over 4 customers.
    assert integrated_calibration_index(bought, predicted, n_groups=2) == pytest.approx((0.85 * 2 + 0.35 * 2) / 4)


def test_calibration_deciles_of_unequal_size():
    table = calibration_table(np.zeros(23), np.linspace(0, 1, 23))
    assert len(table) == 10
    assert table["n"].sum() == 23
    assert set(table["n"]) == {2, 3}


def test_calibration_keeps_ties_together():
    table = calibration_table([0, 1, 1, 0, 1, 1], [0.2, 0.2, 0.2, 0.2, 0.7, 0.9], n_groups=3)
    # Ranks 0, 0, 0, 0, 4, 5 fall in groups 0, 0, 0, 0, 2, 2 of three.
    assert table["n"].tolist() == [4, 2]
    assert table["observed_rate"].tolist() == [0.5, 1.0]


# ------------------------------------------------------------------ IBS


def test_integrated_brier_matches_loop():
    rng = np.random.default_rng(11)
    truth = random_truth(rng, 25)
    raw = rng.random((25, WINDOW + 1))
    curves = np.minimum.accumulate(np.c_[np.ones(25), raw[:, 1:]], axis=1)
    survival = pd.DataFrame(curves, index=truth.index, columns=np.arange(WINDOW + 1))
    expected = naive_ibs(curves, np.arange(WINDOW + 1), truth["days_to_next"].to_numpy(),
                         truth["event"].to_numpy(), WINDOW)
    got = integrated_brier_score(survival, truth["days_to_next"], truth["event"], WINDOW)
    assert got == pytest.approx(expected, rel=1e-12)


def test_integrated_brier_needs_window_end():
    truth = make_truth([1, 2], [True, True])
    survival = pd.DataFrame(np.ones((2, 5)), index=truth.index, columns=np.arange(5))
    with pytest.raises(ValueError, match=r"day 0 and day 10.*range\(0, 10 \+ 1\)"):
        integrated_brier_score(survival, truth["days_to_next"], truth["event"], WINDOW)


# ------------------------------------------------------------- top k


def test_top_k_precision_by_hand():
    at_risk = np.array([True, False, True, True, False, False, False, False, False, False])
    lapse = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0])
    assert top_k_precision(at_risk, lapse, 10) == 1.0
    assert top_k_precision(at_risk, lapse, 20) == 0.5
    assert top_k_precision(at_risk, lapse, 30) == pytest.approx(2 / 3)


def test_top_k_precision_splits_ties_evenly():
    at_risk = np.array([True, False, True, False])
    # Two customers tied at the top for one place: each counts one half.
    assert top_k_precision(at_risk, np.array([1.0, 1.0, 0.0, 0.0]), 25) == 0.5
    assert top_k_precision(at_risk, np.zeros(4), 50) == 0.5


def test_top_k_rejects_zero_percent():
    with pytest.raises(ValueError, match=r"top_k_percent values must lie in \(0, 100\], got 0"):
        top_k_precision(np.array([True]), np.array([1.0]), 0)


# --------------------------------------------------- evaluate_predictions


def test_oracle_scores_perfectly():
    rng = np.random.default_rng(5)
    truth = random_truth(rng, 200)
    predictions, survival = oracle_outputs(truth, [3, WINDOW], WINDOW)
    metrics = evaluate_predictions(predictions, survival, truth, [3, WINDOW], WINDOW, top_k_percent=(10, 20))
    assert metrics["c_index"] == 1.0
    assert metrics["ibs"] == 0.0
    for h in (3, WINDOW):
        assert metrics[f"auc_{h}d"] == 1.0
        assert metrics[f"brier_{h}d"] == 0.0
        assert metrics[f"ici_{h}d"] == 0.0
    assert metrics["count_ratio"] == 1.0
    assert metrics["count_mae"] == 0.0
    assert metrics["precision_top10"] == 1.0
    assert metrics["lift_top20"] == pytest.approx(1 / (1 - metrics[f"base_rate_{WINDOW}d"]))
    assert metrics["n_customers"] == 200


def test_constant_model_scores_chance():
    rng = np.random.default_rng(6)
    truth = random_truth(rng, 300)
    predictions = pd.DataFrame(
        {"p_purchase_5d": 0.3, f"p_purchase_{WINDOW}d": 0.6, f"expected_occasions_{WINDOW}d": 1.0},
        index=truth.index,
    )
    survival = pd.DataFrame(np.tile(np.linspace(1, 0.4, WINDOW + 1), (300, 1)), index=truth.index,
                            columns=np.arange(WINDOW + 1))
    metrics = evaluate_predictions(predictions, survival, truth, [5, WINDOW], WINDOW)
    assert metrics["auc_5d"] == 0.5
    assert metrics[f"auc_{WINDOW}d"] == 0.5
    assert metrics["c_index"] == 0.5
    assert metrics["lift_top10"] == pytest.approx(1.0)
    assert metrics["precision_top10"] == pytest.approx(1 - metrics[f"base_rate_{WINDOW}d"])
    # One group of identical predictions: the ICI is |0.6 - observed rate|.
    assert metrics[f"ici_{WINDOW}d"] == pytest.approx(abs(0.6 - metrics[f"base_rate_{WINDOW}d"]))
    assert metrics["count_ratio"] == pytest.approx(300 / truth["n_occasions_holdout"].sum())


def test_horizons_beyond_window_are_skipped_and_named(caplog):
    truth = random_truth(np.random.default_rng(8), 50)
    predictions, survival = oracle_outputs(truth, [5], WINDOW)
    with caplog.at_level(logging.WARNING, logger="rtt_models"):
        metrics = evaluate_predictions(predictions, survival, truth, [5, 30, 400], WINDOW)
    assert "horizons [30, 400] days are longer than the 10-day holdout window" in caplog.text
    assert "auc_5d" in metrics
    assert not any(key.endswith(("_30d", "_400d")) for key in metrics)


def test_evaluable_horizons_sorted_and_unique():
    assert evaluable_horizons([90, 30, 30], 100) == [30, 90]
    with pytest.raises(ValueError, match="horizons must be whole days >= 1"):
        evaluable_horizons([0.5], 100)


def test_missing_customers_raise():
    truth = make_truth([1, 2, 3], [True, True, False])
    predictions = pd.DataFrame({"p_purchase_2d": [0.1, 0.2]}, index=truth.index[:2])
    with pytest.raises(ValueError, match=r"no row for 1 of the 3 customers.*\['c002'\]"):
        evaluate_predictions(predictions, None, truth, [2], WINDOW)


def test_missing_horizon_column_raises():
    truth = make_truth([1, 2, 3], [True, True, False])
    predictions = pd.DataFrame({"p_purchase_2d": [0.1, 0.2, 0.3]}, index=truth.index)
    with pytest.raises(ValueError, match=r"lack columns \['p_purchase_5d'\]"):
        evaluate_predictions(predictions, None, truth, [2, 5], WINDOW)


def test_count_metrics_skipped_without_window_column(caplog):
    truth = random_truth(np.random.default_rng(9), 40)
    predictions, survival = oracle_outputs(truth, [5], WINDOW)
    with caplog.at_level(logging.WARNING, logger="rtt_models"):
        metrics = evaluate_predictions(predictions.drop(columns=f"expected_occasions_{WINDOW}d"), survival,
                                       truth, [5], WINDOW)
    assert "count_ratio" not in metrics
    assert f"lack expected_occasions_{WINDOW}d" in caplog.text


def test_row_order_does_not_matter():
    truth = random_truth(np.random.default_rng(10), 80)
    predictions, survival = oracle_outputs(truth, [4, WINDOW], WINDOW)
    noisy = predictions.assign(p_purchase_4d=np.linspace(0.1, 0.9, 80))
    forward = evaluate_predictions(noisy, survival, truth, [4, WINDOW], WINDOW)
    shuffled = evaluate_predictions(noisy.iloc[::-1], survival.iloc[::-1], truth, [4, WINDOW], WINDOW)
    assert forward == shuffled


# ------------------------------------------------------- plain scores


def test_plain_score_scale_flip():
    truth = random_truth(np.random.default_rng(12), 120)
    score = pd.Series(np.random.default_rng(13).integers(0, 20, 120), index=truth.index)
    as_time = evaluate_scores(score, truth, [5], WINDOW, scale="time")
    as_risk = evaluate_scores(-score, truth, [5], WINDOW, scale="risk")
    assert as_time == pytest.approx(as_risk)
    expected = naive_c_index(truth["days_to_next"].to_numpy(), truth["event"].to_numpy(), score.to_numpy())
    assert as_time["c_index"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="scale must be 'time'"):
        evaluate_scores(score, truth, [5], WINDOW, scale="lapse")


def test_oracle_score_ranks_perfectly():
    truth = random_truth(np.random.default_rng(14), 100)
    score = truth["days_to_next"] + (~truth["event"]) * 0.5
    metrics = evaluate_scores(score, truth, [WINDOW], WINDOW)
    assert metrics["c_index"] == 1.0
    assert metrics[f"auc_{WINDOW}d"] == 1.0


# --------------------------------------------------- on simulated data


@pytest.fixture(scope="module")
def simulated_split():
    simulated = simulate_transactions(1500, seed=21)
    return split_calibration_holdout(simulated.transactions, "2023-09-30", 60)


def test_evaluate_model_on_simulated_split(simulated_split):
    model = make_model("bg_nbd").fit(simulated_split.features)
    metrics = evaluate_model(model, simulated_split, horizons=(30, 60, 90))
    expected_keys = {"c_index", "ibs", "count_ratio", "count_mae", "precision_top10", "lift_top10", "n_customers"}
    expected_keys |= {f"{m}_{h}d" for m in ("auc", "brier", "ici", "base_rate") for h in (30, 60)}
    assert set(metrics) == expected_keys
    assert all(np.isfinite(value) for value in metrics.values())
    assert 0.5 < metrics["c_index"] <= 1
    assert 0.5 < metrics["auc_30d"] <= 1
    assert 0 <= metrics["ibs"] < 0.25


def test_evaluate_model_equals_predictions_path(simulated_split):
    model = make_model("mean_gap").fit(simulated_split.features)
    predictions, survival = predict_for_evaluation(model, simulated_split.features, [30], 60)
    assert list(survival.columns) == list(range(61))
    assert "expected_occasions_60d" in predictions.columns
    direct = evaluate_predictions(predictions, survival, simulated_split.truth, [30], 60)
    assert evaluate_model(model, simulated_split, horizons=[30]) == direct


def test_baseline_scores_from_features(simulated_split):
    features = simulated_split.features
    assert score_days_since_last_purchase(features).equals(features["elapsed_days"].astype(float).rename(
        "days_since_last_purchase"))
    metrics = evaluate_scores(score_purchase_count(features), simulated_split.truth, [30], 60, scale="risk")
    assert 0.5 < metrics["c_index"] < 1


def test_metric_directions():
    assert metric_family("auc_30d") == "auc"
    assert metric_family("lift_top10") == "lift_top"
    assert metric_family("count_ratio") == "count_ratio"
    assert HIGHER_IS_BETTER[metric_family("brier_90d")] is False
    assert HIGHER_IS_BETTER[metric_family("c_index")] is True
