"""Tests of the gradient-boosted discrete-time hazard model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from threadpoolctl import threadpool_limits

from rtt_models.models import make_model
from rtt_models.models.hazard import (
    DEFAULT_BIN_EDGES_DAYS,
    GradientBoostedHazardModel,
    _log_survival_at,
    person_period_rows,
)

WINDOW_DAYS = 540
GEOMETRIC_RATES = (0.02, 0.05, 0.1)
PERIODS_DAYS = (20, 35, 50)


def simulate_histories(n_customers, kind, seed):
    """Simulate whole-day purchase histories and cut them at day WINDOW_DAYS.

    ``kind="geometric"``: gaps are geometric with daily purchase probability
    ``daily_rate`` in GEOMETRIC_RATES (memoryless). ``kind="periodic"``: gaps
    are uniform on ``period_days - 2 .. period_days + 2``. The generating
    parameter is the only covariate.

    Returns
    -------
    episodes : DataFrame
        One row per occasion on or before the cut-off.
    features : DataFrame
        One row per customer, indexed by customer_id, with ``elapsed_days``.
    true_p30 : Series
        Exact P(purchase within 30 days | elapsed) per customer.
    """
    rng = np.random.default_rng(seed)
    max_gaps = 80
    if kind == "geometric":
        parameter = rng.choice(GEOMETRIC_RATES, size=n_customers)
        gaps = rng.geometric(parameter[:, None], size=(n_customers, max_gaps))
        column = "daily_rate"
    else:
        parameter = rng.choice(PERIODS_DAYS, size=n_customers).astype(float)
        gaps = parameter[:, None] + rng.integers(-2, 3, size=(n_customers, max_gaps))
        column = "period_days"

    # Occasion days: a first purchase in the first 180 days, then the gaps.
    first = rng.integers(0, 180, size=n_customers)
    days = first[:, None] + np.concatenate([np.zeros((n_customers, 1), dtype=int), np.cumsum(gaps, axis=1)], axis=1)
    observed = days <= WINDOW_DAYS
    next_day = np.concatenate([days[:, 1:], np.full((n_customers, 1), 10**9)], axis=1)

    customer, position = np.nonzero(observed)
    start = days[customer, position]
    following = next_day[customer, position]
    episodes = pd.DataFrame(
        {
            "customer_id": customer,
            "occasion_date": pd.Timestamp("2020-01-01") + pd.to_timedelta(start, unit="D"),
            "duration": np.minimum(following, WINDOW_DAYS) - start,
            "event": following <= WINDOW_DAYS,
            column: parameter[customer],
        }
    ).astype({"duration": float})

    last_day = np.where(observed, days, -1).max(axis=1)
    elapsed = WINDOW_DAYS - last_day
    features = pd.DataFrame({column: parameter, "elapsed_days": elapsed.astype(float)})
    features.index = pd.Index(np.arange(n_customers), name="customer_id")

    if kind == "geometric":
        true_p30 = 1.0 - (1.0 - parameter) ** 30
    else:
        offsets = np.arange(-2, 3)
        gap_values = parameter[:, None] + offsets[None, :]
        at_risk = (gap_values > elapsed[:, None]).sum(axis=1)
        within = ((gap_values > elapsed[:, None]) & (gap_values <= elapsed[:, None] + 30)).sum(axis=1)
        true_p30 = within / at_risk
    return episodes, features, pd.Series(true_p30, index=features.index)


def assert_calibrated(predicted, truth, groups, tolerance):
    """Mean predicted and true probability agree overall and within each group."""
    assert abs(predicted.mean() - truth.mean()) < tolerance
    gaps = (predicted.groupby(groups).mean() - truth.groupby(groups).mean()).abs()
    assert gaps.max() < tolerance, gaps.round(3).to_dict()


def prediction_deciles(predicted):
    return pd.qcut(predicted.rank(method="first"), 10, labels=False)


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """Run the boosting on one OpenMP thread.

    On a 2-core machine shared with other test processes, two spinning
    OpenMP threads made each fit about 4 times slower. The fitted trees do
    not depend on the thread count.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def geometric():
    return simulate_histories(1500, "geometric", seed=0)


@pytest.fixture(scope="module")
def small_model(geometric):
    episodes, _, _ = geometric
    return GradientBoostedHazardModel(covariates=["daily_rate"], max_iter=30).fit(None, episodes)


# ---------------------------------------------------------- expansion


def test_person_period_rows_hand_case():
    rows = person_period_rows(
        durations_days=np.array([5.0, 3.0, 0.0, 1.0, 9.0]),
        events=np.array([True, False, False, True, False]),
        bin_edges_days=np.array([0.0, 1.0, 2.0, 4.0]),
    )
    # Bins (0,1], (1,2], (2,4], then repeated 2-day periods (4,6], (6,8], ...
    np.testing.assert_array_equal(rows["episode"], [0, 0, 0, 0, 1, 1, 1, 3, 4, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(rows["bin_start_days"], [0, 1, 2, 4, 0, 1, 2, 0, 0, 1, 2, 4, 4, 4])
    np.testing.assert_array_equal(rows["label"], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    # The censored 3-day gap saw half of (2, 4]; the 9-day one half of (8, 10].
    np.testing.assert_array_equal(rows["weight"], [1, 1, 1, 1, 1, 1, 0.5, 1, 1, 1, 1, 1, 1, 0.5])


def test_person_period_rows_count_events(geometric):
    episodes, _, _ = geometric
    rows = person_period_rows(episodes["duration"].to_numpy(), episodes["event"].to_numpy(), DEFAULT_BIN_EDGES_DAYS)
    assert rows["label"].sum() == episodes["event"].sum()
    assert len(np.unique(rows["episode"])) == (episodes["duration"] > 0).sum()


def test_log_survival_interpolates_geometrically():
    edges = np.array([0.0, 1.0, 3.0])
    log_keep = np.log([[0.9, 0.8, 0.5]])
    at_days = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    survival = np.exp(_log_survival_at(log_keep, edges, at_days))
    expected = [1.0, 0.9, 0.9 * np.sqrt(0.8), 0.72, 0.72 * np.sqrt(0.5), 0.36]
    np.testing.assert_allclose(survival[0], expected, rtol=1e-12)


# -------------------------------------------------------- calibration


def test_geometric_gaps_calibrated_at_30_days(geometric):
    episodes, features, truth = geometric
    model = GradientBoostedHazardModel(covariates=["daily_rate"], max_person_period_rows=100_000).fit(None, episodes)
    predicted = model.predict(features, horizons=[30])["p_purchase_30d"]
    assert_calibrated(predicted, truth, features["daily_rate"], tolerance=0.05)
    assert_calibrated(predicted, truth, prediction_deciles(predicted), tolerance=0.05)


def test_periodic_gaps_calibrated_at_30_days():
    episodes, features, truth = simulate_histories(1500, "periodic", seed=1)
    model = GradientBoostedHazardModel(
        covariates=["period_days"], bin_edges_days=np.arange(0, 81), max_person_period_rows=100_000
    ).fit(None, episodes)
    predicted = model.predict_survival(features, [30]).iloc[:, 0].rsub(1.0)
    assert_calibrated(predicted, truth, prediction_deciles(predicted), tolerance=0.05)
    # Elapsed time matters here: a customer just past the period buys at once.
    assert np.corrcoef(predicted, truth)[0, 1] > 0.95


def test_row_bound_holds_and_stays_calibrated(geometric):
    episodes, features, truth = geometric
    model = GradientBoostedHazardModel(covariates=["daily_rate"], max_person_period_rows=40_000).fit(None, episodes)
    assert model.n_person_period_rows_total_ > 5 * 40_000
    assert model.n_person_period_rows_ == 40_000
    assert model.sampling_rates_["purchase"] == pytest.approx(20_000 / episodes["event"].sum())
    # Purchase rows are over-sampled; the inverse-rate weights undo it (without
    # them the 0.02 group was over-predicted by 0.5).
    assert model.sampling_rates_["purchase"] > 5 * model.sampling_rates_["no_purchase"]
    predicted = model.predict_survival(features, [30]).iloc[:, 0].rsub(1.0)
    assert_calibrated(predicted, truth, features["daily_rate"], tolerance=0.05)


# ------------------------------------------------------ contract invariants


def test_contract_invariants(small_model):
    rng = np.random.default_rng(2)
    features = pd.DataFrame(
        {"daily_rate": rng.choice(GEOMETRIC_RATES, size=40), "elapsed_days": rng.integers(0, 500, size=40)}
    )
    times = np.array([0, 1, 5, 14, 15.5, 30, 90, 365, 400, 800], dtype=float)

    survival = small_model.predict_survival(features, times).to_numpy()
    assert np.isfinite(survival).all()
    assert ((survival >= 0) & (survival <= 1)).all()
    np.testing.assert_array_equal(survival[:, 0], 1.0)
    assert (np.diff(survival, axis=1) <= 0).all()

    predicted = small_model.predict(features, horizons=[7, 30, 90])
    assert (predicted["p_purchase_7d"] <= predicted["p_purchase_30d"]).all()
    assert (predicted["p_purchase_30d"] <= predicted["p_purchase_90d"]).all()


def test_bin_hazards_cover_every_edge(small_model):
    features = pd.DataFrame({"daily_rate": [0.02, 0.1], "elapsed_days": [0.0, 3.0]}, index=["a", "b"])
    hazards = small_model.predict_bin_hazards(features)
    assert hazards.shape == (2, len(DEFAULT_BIN_EDGES_DAYS))
    assert list(hazards.columns) == list(map(float, DEFAULT_BIN_EDGES_DAYS))
    # A higher daily rate gives a higher hazard in the one-day bins.
    assert (hazards.loc["b", :13.0] > hazards.loc["a", :13.0]).all()


def test_clone_refit_is_identical(geometric, small_model):
    episodes, features, _ = geometric
    again = clone(small_model).fit(None, episodes)
    pd.testing.assert_frame_equal(small_model.predict(features.iloc[:50]), again.predict(features.iloc[:50]))


def test_sampled_fit_ignores_episode_order(geometric):
    episodes, features, _ = geometric
    settings = {"covariates": ["daily_rate"], "max_person_period_rows": 3000, "max_iter": 20}
    first = GradientBoostedHazardModel(**settings).fit(None, episodes)
    second = GradientBoostedHazardModel(**settings).fit(None, episodes.sample(frac=1.0, random_state=4))
    pd.testing.assert_frame_equal(first.predict(features.iloc[:50]), second.predict(features.iloc[:50]))


def test_row_order_does_not_change_output(geometric, small_model):
    _, features, _ = geometric
    subset = features.iloc[:60]
    shuffled = subset.sample(frac=1.0, random_state=5)
    pd.testing.assert_frame_equal(small_model.predict(shuffled).loc[subset.index], small_model.predict(subset))


def test_zero_durations_are_counted(geometric):
    episodes, _, _ = geometric
    model = GradientBoostedHazardModel(covariates=["daily_rate"], max_iter=5).fit(None, episodes)
    assert model.n_zero_duration_dropped_ == int((episodes["duration"] == 0).sum())
    assert model.n_zero_duration_dropped_ > 0


# ---------------------------------------------------------------- errors


def test_predict_before_fit_raises():
    features = pd.DataFrame({"daily_rate": [0.1], "elapsed_days": [1.0]})
    with pytest.raises(NotFittedError):
        GradientBoostedHazardModel(covariates=["daily_rate"]).predict(features)
    with pytest.raises(NotFittedError):
        GradientBoostedHazardModel(covariates=["daily_rate"]).predict_bin_hazards(features)


def test_fit_without_episodes_names_the_builder():
    with pytest.raises(ValueError, match=r"build_episodes\(transactions, as_of\)"):
        GradientBoostedHazardModel(covariates=["daily_rate"]).fit(None)


def test_fit_without_purchases_is_rejected():
    episodes = pd.DataFrame({"duration": [3.0, 4.0], "event": [False, False], "daily_rate": [0.1, 0.2]})
    with pytest.raises(ValueError, match="at least one observed next purchase"):
        GradientBoostedHazardModel(covariates=["daily_rate"]).fit(None, episodes)


@pytest.mark.parametrize(
    "settings, message",
    [
        pytest.param({"bin_edges_days": (1, 2, 3)}, "bin_edges_days must be finite, strictly increasing", id="edges_start"),
        pytest.param({"bin_edges_days": (0, 5, 5)}, "bin_edges_days must be finite, strictly increasing", id="edges_order"),
        pytest.param({"bin_edges_days": (0,)}, "at least two edges", id="edges_count"),
        pytest.param({"max_person_period_rows": 10}, "max_person_period_rows must be an integer >= 100, got 10", id="rows"),
        pytest.param({"max_iter": 0}, "max_iter must be an integer >= 1, got 0", id="max_iter"),
        pytest.param({"max_leaf_nodes": 1.5}, "max_leaf_nodes must be an integer >= 2, got 1.5", id="leaves"),
        pytest.param({"learning_rate": 0.0}, r"learning_rate must be a number in \(0, 1\], got 0.0", id="rate"),
        pytest.param({"random_state": 1.5}, "random_state must be an int or None, got 1.5", id="seed"),
    ],
)
def test_invalid_setting_is_rejected(settings, message):
    episodes = pd.DataFrame({"duration": [3.0, 4.0], "event": [True, False], "daily_rate": [0.1, 0.2]})
    with pytest.raises(ValueError, match=message):
        GradientBoostedHazardModel(**{"covariates": ["daily_rate"], **settings}).fit(None, episodes)


def test_make_model_builds_hazard():
    model = make_model("gb_hazard", max_iter=50)
    assert isinstance(model, GradientBoostedHazardModel)
    assert model.max_iter == 50


# ------------------------------------------------------- real feature code


def test_default_covariates_on_simulated_log():
    from rtt_models.data import simulate_transactions
    from rtt_models.features import EPISODE_COVARIATES, build_episodes, build_features

    simulated = simulate_transactions(800, seed=4)
    as_of = pd.Timestamp("2023-06-30")
    features = build_features(simulated.transactions, as_of=as_of)
    episodes = build_episodes(simulated.transactions, as_of=as_of)

    model = GradientBoostedHazardModel(max_iter=30).fit(features, episodes)
    assert model.covariates_ == list(EPISODE_COVARIATES)
    survival = model.predict_survival(features, [0, 30, 90])
    assert survival.index.equals(features.index)
    assert np.isfinite(survival.to_numpy()).all()


@pytest.mark.shared_data
def test_cdnow_reference_split_calibrated(shared_data_dir):
    from sklearn.metrics import roc_auc_score

    from rtt_models.data import load_transactions
    from rtt_models.features import build_episodes, build_features

    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_master.txt", format="cdnow")
    features = build_features(log, as_of="1997-09-30")
    episodes = build_episodes(log, as_of="1997-09-30")
    frame = log.frame
    holdout = frame[(frame["timestamp"] >= "1997-10-01") & (frame["timestamp"] < "1997-10-31")]
    bought = features.index.isin(holdout["customer_id"].unique())

    model = GradientBoostedHazardModel(max_person_period_rows=100_000).fit(features, episodes)
    p30 = 1.0 - model.predict_survival(features, [30]).iloc[:, 0]
    # Measured 0.78 (AUC of holdout purchase within 30 days, cut-off 1997-09-30).
    assert roc_auc_score(bought, p30) > 0.75
    assert p30.mean() == pytest.approx(bought.mean(), abs=0.02)
