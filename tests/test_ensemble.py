"""The survival ensemble: mixture contract, weights, internal backtest and settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.evaluation.metrics import integrated_brier_score
from rtt_models.features import build_episodes, build_features
from rtt_models.models import make_model
from rtt_models.models.ensemble import SurvivalEnsembleModel, mixture_weights_by_ibs, transactions_from_episodes

AS_OF = "2023-06-30"
TIMES = np.arange(0, 181, 15)
FAST_MEMBERS = ("bg_nbd", "pareto_nbd", "kaplan_meier")


@pytest.fixture(scope="module")
def calibration():
    """Features and episodes of 400 simulated customers at 2023-06-30 (seed 11)."""
    log = load_transactions(simulate_transactions(400, seed=11).transactions)
    return build_features(log, AS_OF), build_episodes(log, AS_OF)


@pytest.fixture(scope="module")
def backtested(calibration):
    features, episodes = calibration
    return SurvivalEnsembleModel(members=FAST_MEMBERS, weights="backtest").fit(features, episodes)


def test_single_member_equals_member(calibration):
    features, episodes = calibration
    member = make_model("pareto_nbd").fit(features)
    ensemble = SurvivalEnsembleModel(members=("pareto_nbd",), weights="backtest").fit(features, episodes)
    pd.testing.assert_frame_equal(ensemble.predict_survival(features, TIMES), member.predict_survival(features, TIMES))
    pd.testing.assert_frame_equal(ensemble.predict(features, (30, 90)), member.predict(features, (30, 90)))
    assert ensemble.backtest_scores_ is None


def test_survival_invariants(backtested, calibration):
    features, _ = calibration
    survival = backtested.predict_survival(features, TIMES).to_numpy()
    assert np.all(np.isfinite(survival))
    assert np.all((survival >= 0) & (survival <= 1))
    assert np.all(survival[:, 0] == 1.0)
    assert np.all(np.diff(survival, axis=1) <= 1e-12)


@pytest.mark.parametrize(
    "weights",
    [pytest.param(None, id="equal"), pytest.param((2.0, 1.0, 1.0), id="fixed"), pytest.param("backtest", id="backtest")],
)
def test_weights_sum_to_one(calibration, weights):
    features, episodes = calibration
    model = SurvivalEnsembleModel(members=FAST_MEMBERS, weights=weights).fit(features, episodes)
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(model.weights_ > 0)


def test_fixed_weights_are_normalised(calibration):
    features, episodes = calibration
    model = SurvivalEnsembleModel(members=FAST_MEMBERS, weights=(2.0, 1.0, 1.0)).fit(features, episodes)
    np.testing.assert_allclose(model.weights_, [0.5, 0.25, 0.25])


def test_mixture_is_weighted_mean(calibration):
    features, episodes = calibration
    ensemble = SurvivalEnsembleModel(members=("bg_nbd", "kaplan_meier"), weights=(0.25, 0.75)).fit(features, episodes)
    bg = make_model("bg_nbd").fit(features)
    km = make_model("kaplan_meier").fit(features, episodes)

    expected_survival = 0.25 * bg.predict_survival(features, TIMES) + 0.75 * km.predict_survival(features, TIMES)
    pd.testing.assert_frame_equal(ensemble.predict_survival(features, TIMES), expected_survival)
    ours, first, second = (m.predict(features, (30, 90)) for m in (ensemble, bg, km))
    np.testing.assert_allclose(
        ours["expected_occasions_90d"], 0.25 * first["expected_occasions_90d"] + 0.75 * second["expected_occasions_90d"]
    )
    # Only BG/NBD defines P(alive), so the weighted mean over definers is its value.
    np.testing.assert_allclose(ours["p_alive"], first["p_alive"])


def test_p_alive_nan_without_definer(calibration):
    features, episodes = calibration
    model = SurvivalEnsembleModel(members=("mean_gap", "kaplan_meier"), weights=None).fit(features, episodes)
    assert model.predict(features, (30,))["p_alive"].isna().all()


def test_clone_refit_identical(backtested, calibration):
    features, episodes = calibration
    refitted = clone(backtested).fit(features, episodes)
    np.testing.assert_array_equal(refitted.weights_, backtested.weights_)
    pd.testing.assert_frame_equal(refitted.predict(features, (30, 90)), backtested.predict(features, (30, 90)))


def test_row_order_irrelevant(backtested, calibration):
    features, episodes = calibration
    rng = np.random.default_rng(5)
    shuffled_features = features.iloc[rng.permutation(len(features))]
    shuffled_episodes = episodes.iloc[rng.permutation(len(episodes))].reset_index(drop=True)
    shuffled_episodes.attrs = dict(episodes.attrs)
    refitted = clone(backtested).fit(shuffled_features, shuffled_episodes)
    np.testing.assert_allclose(refitted.weights_, backtested.weights_, atol=1e-9)
    pd.testing.assert_frame_equal(
        refitted.predict(shuffled_features, (30, 90)).sort_index(),
        backtested.predict(features, (30, 90)).sort_index(),
        atol=1e-9,
    )


def test_backtest_beats_each_member_inner(backtested):
    scores = backtested.backtest_scores_
    assert list(scores.index) == [*FAST_MEMBERS, "ensemble"]
    assert scores.loc["ensemble", "ibs"] <= scores["ibs"].iloc[:-1].min() + 1e-12
    assert backtested.inner_cutoff_ < pd.Timestamp(AS_OF)


def test_weights_by_ibs_pick_the_truth():
    # Member 1 is the truth itself, member 0 a flat 0.5: all weight goes to member 1.
    grid = np.arange(0, 11, dtype=float)
    days_to_next = np.array([3.0, 10.0, 7.0, 10.0])
    event = np.array([True, False, True, True])
    not_yet = ~event[:, None] | (days_to_next[:, None] > grid[None, :])
    curves = np.stack([np.full(not_yet.shape, 0.5), not_yet.astype(float)])
    weights, member_ibs, mixture_ibs = mixture_weights_by_ibs(curves, not_yet, grid)
    np.testing.assert_allclose(weights, [0.0, 1.0], atol=1e-9)
    assert mixture_ibs == pytest.approx(0.0, abs=1e-12)
    # Each member's IBS equals the harness's integrated Brier score.
    for k in range(2):
        frame = pd.DataFrame(curves[k], columns=grid)
        assert member_ibs[k] == pytest.approx(integrated_brier_score(frame, days_to_next, event, 10), abs=1e-12)


def test_weights_by_ibs_interior_optimum():
    # Two constant curves 0 and 1 against a truth of 0.25 everywhere: the best mix is 0.75 / 0.25.
    grid = np.arange(0, 5, dtype=float)
    not_yet = np.array([[True] * 5, [False] * 5, [False] * 5, [False] * 5])
    curves = np.stack([np.zeros((4, 5)), np.ones((4, 5))])
    weights, _, mixture_ibs = mixture_weights_by_ibs(curves, not_yet, grid)
    np.testing.assert_allclose(weights, [0.75, 0.25], atol=1e-6)
    assert mixture_ibs == pytest.approx(0.25 * 0.75, abs=1e-9)


def test_transactions_from_episodes_round_trip(calibration):
    features, episodes = calibration
    log, cutoff_day = transactions_from_episodes(episodes)
    assert cutoff_day == pd.Timestamp(AS_OF)
    rebuilt = build_features(log, AS_OF, occasion_rule="all")
    pd.testing.assert_frame_equal(rebuilt, features, check_dtype=False)


def test_failing_member_gets_zero_weight(calibration):
    features, episodes = calibration
    broken = make_model("bg_nbd", max_iter=0)
    model = SurvivalEnsembleModel(members=(broken, "pareto_nbd"), weights="backtest")
    with pytest.warns(UserWarning, match="bg_nbd failed in the weight backtest"):
        model.fit(features, episodes)
    assert model.member_names_ == ["pareto_nbd"]
    np.testing.assert_array_equal(model.weights_, [1.0])


def test_make_model_builds_ensemble():
    model = make_model("ensemble")
    assert isinstance(model, SurvivalEnsembleModel)
    assert model.needs_episodes
    assert not SurvivalEnsembleModel(members=("bg_nbd", "pareto_nbd"), weights=None).needs_episodes


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        pytest.param({"members": ()}, ValueError, "members is empty", id="no-members"),
        pytest.param({"members": "bg_nbd"}, TypeError, "members must be a sequence", id="string-members"),
        pytest.param({"members": ("ensemble",)}, ValueError, "cannot contain itself", id="nested"),
        pytest.param({"members": ("bg_nbd", 3)}, TypeError, "member 1 is a int", id="not-a-model"),
        pytest.param({"weights": (1.0,)}, ValueError, "weights must be 3 finite numbers", id="length"),
        pytest.param({"weights": (1.0, -1.0, 1.0)}, ValueError, "weights must be 3 finite numbers", id="negative"),
        pytest.param({"weights": "best"}, ValueError, "weights must be 'backtest'", id="unknown-rule"),
        pytest.param({"inner_window_days": 3}, ValueError, "inner_window_days must be None", id="short-window"),
    ],
)
def test_invalid_settings(calibration, settings, error, match):
    features, episodes = calibration
    model = SurvivalEnsembleModel(**{"members": FAST_MEMBERS, **settings})
    with pytest.raises(error, match=match):
        model.fit(features, episodes)


def test_backtest_without_episodes(calibration):
    features, _ = calibration
    with pytest.raises(ValueError, match="needs gap episodes"):
        SurvivalEnsembleModel(members=("bg_nbd", "pareto_nbd")).fit(features)
