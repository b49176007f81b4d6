"""Tests of the gradient-boosted log-gap regression."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.features import EPISODE_COVARIATES, build_episodes, build_features, split_calibration_holdout
from rtt_models.models import make_model
from rtt_models.models.regression import LogGapRegressionModel

TRUE_MEDIAN_DAYS = {1: 10.0, 5: 20.0}


def _two_group_episodes(n: int, seed: int, censoring_mean_days: float | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Episodes whose gaps are log-normal with median 10 days after 1 occasion and 20 days after 5.

    Returns the episodes and the uncensored gaps in days. With
    ``censoring_mean_days``, each gap is censored at an independent
    exponential time with that mean, in whole days.
    """
    rng = np.random.default_rng(seed)
    n_occasions = rng.choice([1, 5], size=n)
    median_days = np.where(n_occasions == 1, TRUE_MEDIAN_DAYS[1], TRUE_MEDIAN_DAYS[5])
    gap_days = np.ceil(median_days * np.exp(0.5 * rng.standard_normal(n)))
    if censoring_mean_days is None:
        duration_days, event = gap_days, np.ones(n, dtype=bool)
    else:
        censoring_days = np.floor(rng.exponential(censoring_mean_days, size=n))
        event = gap_days <= censoring_days
        duration_days = np.where(event, gap_days, censoring_days)
    episodes = pd.DataFrame(
        {"customer_id": np.arange(n), "duration": duration_days, "event": event, "n_occasions": n_occasions}
    )
    return episodes, gap_days


def _group_customers(elapsed_days: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"elapsed_days": [elapsed_days, elapsed_days], "n_occasions": [1, 5]},
        index=pd.Index(["one-occasion", "five-occasions"], name="customer_id"),
    )


@pytest.fixture(scope="module")
def simulated():
    """Features and episodes of 400 simulated customers at a mid-window cut-off."""
    log = simulate_transactions(400, seed=1).transactions
    return build_features(log, "2023-06-30"), build_episodes(log, "2023-06-30")


# ------------------------------------------------------------ recovery


def test_regression_recovers_doubled_gaps():
    episodes, _ = _two_group_episodes(3000, seed=0, censoring_mean_days=None)
    model = LogGapRegressionModel(covariates=["n_occasions"]).fit(None, episodes)
    medians = model.predict(_group_customers(), [30])["median_days_to_next"]

    # Gaps are log-normals with medians 10 and 20 rounded up to whole days, so their medians
    # lie between 10 and 11 days and between 20 and 21 days.
    assert medians["one-occasion"] == pytest.approx(10.5, rel=0.1)
    assert medians["five-occasions"] == pytest.approx(20.5, rel=0.1)
    assert medians["five-occasions"] / medians["one-occasion"] == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize("censoring", ["ipcw", "events_only"])
def test_regression_median_under_censoring(censoring):
    # The Kaplan-Meier residual distribution absorbs a shift common to all customers.
    episodes, _ = _two_group_episodes(4000, seed=2, censoring_mean_days=25.0)
    model = LogGapRegressionModel(covariates=["n_occasions"], censoring=censoring).fit(None, episodes)
    medians = model.predict(_group_customers(), [30])["median_days_to_next"]
    assert medians["one-occasion"] == pytest.approx(10.5, rel=0.12)
    assert medians["five-occasions"] == pytest.approx(20.5, rel=0.12)


def test_ipcw_removes_short_gap_bias():
    episodes, gap_days = _two_group_episodes(4000, seed=2, censoring_mean_days=25.0)
    customers = _group_customers()
    ipcw = LogGapRegressionModel(covariates=["n_occasions"], censoring="ipcw").fit(None, episodes)
    events_only = LogGapRegressionModel(covariates=["n_occasions"], censoring="events_only").fit(None, episodes)

    for n_occasions, label in [(1, "one-occasion"), (5, "five-occasions")]:
        true_mean_log = np.log(gap_days[episodes["n_occasions"] == n_occasions]).mean()
        assert ipcw.predict_log_gap(customers)[label] == pytest.approx(true_mean_log, abs=0.06), label
        assert events_only.predict_log_gap(customers)[label] < true_mean_log - 0.08, label


def test_regression_conditional_on_elapsed():
    # S(t | e) must equal S0(e + t) / S0(e) read from the fresh-gap curve of the same customer.
    episodes, _ = _two_group_episodes(3000, seed=4, censoring_mean_days=40.0)
    model = LogGapRegressionModel(covariates=["n_occasions"]).fit(None, episodes)
    elapsed_days, times = 12.0, np.array([0.0, 1.0, 3.0, 10.0, 25.0])
    fresh = model.predict_survival(_group_customers(0.0), np.concatenate([[elapsed_days], elapsed_days + times]))
    waited = model.predict_survival(_group_customers(elapsed_days), times)
    expected = fresh.to_numpy()[:, 1:] / fresh.to_numpy()[:, [0]]
    assert np.allclose(waited.to_numpy(), expected, rtol=1e-12)
    assert not np.allclose(waited.to_numpy(), fresh.to_numpy()[:, 1:])


def test_regression_flat_beyond_longest_residual():
    episodes, _ = _two_group_episodes(2000, seed=5, censoring_mean_days=30.0)
    model = LogGapRegressionModel(covariates=["n_occasions"]).fit(None, episodes)
    survival = model.predict_survival(_group_customers(10_000.0), [0, 30, 365])
    assert np.allclose(survival.to_numpy(), 1.0)


def test_max_rows_bounds_training():
    episodes, _ = _two_group_episodes(3000, seed=6, censoring_mean_days=None)
    model = LogGapRegressionModel(covariates=["n_occasions"], max_rows=500, residual_fraction=0.2).fit(None, episodes)
    assert model.n_residual_rows_ == 100
    assert model.n_training_rows_ == 400


def test_default_covariates_are_episode_covariates(simulated):
    features, episodes = simulated
    model = LogGapRegressionModel(max_iter=20).fit(features, episodes)
    assert model.covariates_ == list(EPISODE_COVARIATES)
    assert model.feature_names_in_ == ["elapsed_days", *EPISODE_COVARIATES]


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"censoring": "drop"}, "'censoring' parameter", id="censoring-unknown"),
        pytest.param({"max_iter": 0}, "'max_iter' parameter", id="max-iter-zero"),
        pytest.param({"learning_rate": 0.0}, "'learning_rate' parameter", id="learning-rate-zero"),
        pytest.param({"residual_fraction": 1.0}, "'residual_fraction' parameter", id="residual-fraction-one"),
        pytest.param({"max_rows": 5}, "'max_rows' parameter", id="max-rows-tiny"),
        pytest.param({"random_state": -1}, "'random_state' parameter", id="random-state-negative"),
    ],
)
def test_regression_invalid_settings(settings, message):
    episodes, _ = _two_group_episodes(100, seed=0, censoring_mean_days=None)
    with pytest.raises(ValueError, match=message):
        LogGapRegressionModel(covariates=["n_occasions"], **settings).fit(None, episodes)


def test_regression_too_few_gaps():
    episodes, _ = _two_group_episodes(15, seed=0, censoring_mean_days=None)
    with pytest.raises(ValueError, match="at least 20 completed gaps, but the episodes contain 15"):
        LogGapRegressionModel(covariates=["n_occasions"]).fit(None, episodes)


def test_regression_missing_covariate():
    episodes, _ = _two_group_episodes(100, seed=0, censoring_mean_days=None)
    with pytest.raises(ValueError, match="missing episodes columns \\['spend_mean'\\]"):
        LogGapRegressionModel(covariates=["n_occasions", "spend_mean"]).fit(None, episodes)


def test_regression_needs_episodes(simulated):
    features, _ = simulated
    with pytest.raises(ValueError, match="episodes is None"):
        LogGapRegressionModel().fit(features)


# ------------------------------------------------------- shared contract


def test_regression_registered_by_name():
    assert type(make_model("gb_regression", max_iter=10)) is LogGapRegressionModel


def test_regression_not_fitted_error(simulated):
    features, _ = simulated
    with pytest.raises(NotFittedError):
        LogGapRegressionModel().predict_survival(features, [0, 30])


def test_regression_survival_curves_valid(simulated):
    features, episodes = simulated
    survival = LogGapRegressionModel(max_iter=50).fit(features, episodes).predict_survival(features, range(0, 366, 5))
    values = survival.to_numpy()
    assert np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()
    assert np.allclose(values[:, 0], 1.0)
    assert (np.diff(values, axis=1) <= 1e-12).all()


def test_regression_purchase_probability_rises(simulated):
    features, episodes = simulated
    predicted = LogGapRegressionModel(max_iter=50).fit(features, episodes).predict(features, [7, 30, 90])
    assert (predicted["p_purchase_30d"] >= predicted["p_purchase_7d"]).all()
    assert (predicted["p_purchase_90d"] >= predicted["p_purchase_30d"]).all()


def test_regression_clone_refit_identical(simulated):
    features, episodes = simulated
    model = LogGapRegressionModel(max_iter=50)
    first = clone(model).fit(features, episodes).predict_survival(features, [0, 10, 60])
    second = clone(model).fit(features, episodes).predict_survival(features, [0, 10, 60])
    pd.testing.assert_frame_equal(first, second)


def test_regression_row_order_invariant(simulated):
    features, episodes = simulated
    rng = np.random.default_rng(11)
    shuffled_features = features.iloc[rng.permutation(len(features))]
    shuffled_episodes = episodes.iloc[rng.permutation(len(episodes))]
    model = LogGapRegressionModel(max_iter=50)
    reference = clone(model).fit(features, episodes).predict_survival(features, [0, 10, 60])
    shuffled = clone(model).fit(shuffled_features, shuffled_episodes).predict_survival(shuffled_features, [0, 10, 60])
    pd.testing.assert_frame_equal(shuffled.loc[reference.index], reference)


# ---------------------------------------------------------------- real data


def test_regression_on_cdnow_holdout(shared_data_dir):
    # CDNOW reference split (cut-off 1997-09-30, 90-day holdout). When written the model scored
    # AUC 0.755 and a mean P(purchase within 90 days) of 0.172 against 0.178 observed.
    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_master.txt", format="cdnow")
    split = split_calibration_holdout(log, "1997-09-30", 90)
    episodes = build_episodes(log, "1997-09-30")

    started = time.perf_counter()
    model = LogGapRegressionModel().fit(split.features, episodes)
    fit_seconds = time.perf_counter() - started
    survival = model.predict_survival(split.features, [90])
    purchase = 1.0 - survival.iloc[:, 0]
    bought = split.truth.loc[survival.index, "event"].to_numpy()

    assert fit_seconds < 20
    assert roc_auc_score(bought, purchase) > 0.72
    assert purchase.mean() == pytest.approx(bought.mean(), abs=0.03)
