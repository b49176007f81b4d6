"""Every model family through the same contract invariants and calibration check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.features import build_episodes, split_calibration_holdout
from rtt_models.models import make_model, model_names

CUTOFF = "2023-10-31"
WINDOW_DAYS = 61
TIMES = np.array([0.0, 1.0, 7.0, 30.0, 90.0, 365.0])

# Settings that keep each family fast on a few thousand customers.
FAST_SETTINGS = {
    "gb_hazard": {"max_iter": 60},
    "gb_regression": {"max_iter": 60},
}


@pytest.fixture(scope="module")
def simulated():
    data = simulate_transactions(4_000, seed=11)
    passthrough = ["segment", "channel"]
    log = load_transactions(data.transactions, columns={"passthrough": passthrough})
    split = split_calibration_holdout(log, CUTOFF, WINDOW_DAYS)
    episodes = build_episodes(log, CUTOFF)
    return split, episodes


@pytest.fixture(scope="module")
def fitted(simulated):
    split, episodes = simulated
    models = {}
    for name in model_names():
        model = make_model(name, **FAST_SETTINGS.get(name, {}))
        models[name] = model.fit(split.features, episodes if model.needs_episodes else None)
    return models


@pytest.mark.parametrize("name", model_names())
def test_survival_curve_invariants(name, fitted, simulated):
    split, _ = simulated
    curve = fitted[name].predict_survival(split.features, TIMES).to_numpy()
    assert np.isfinite(curve).all()
    assert (curve >= 0).all()
    assert (curve <= 1).all()
    assert (curve[:, 0] == 1).all()
    assert (np.diff(curve, axis=1) <= 1e-12).all()


@pytest.mark.parametrize("name", model_names())
def test_purchase_probability_rises_with_horizon(name, fitted, simulated):
    split, _ = simulated
    out = fitted[name].predict(split.features, horizons=(7, 30, 60))
    assert (out["p_purchase_7d"] <= out["p_purchase_30d"] + 1e-12).all()
    assert (out["p_purchase_30d"] <= out["p_purchase_60d"] + 1e-12).all()
    assert (out["expected_occasions_30d"] >= out["p_purchase_30d"] - 1e-9).all()
    assert np.allclose(out["risk_score"], 1 - out["p_purchase_60d"])
    assert out.index.equals(split.features.index)


@pytest.mark.parametrize("name", model_names())
def test_clone_and_refit_give_same_predictions(name, fitted, simulated):
    split, episodes = simulated
    model = fitted[name]
    refit = clone(model).fit(split.features, episodes if model.needs_episodes else None)
    pd.testing.assert_frame_equal(refit.predict(split.features), model.predict(split.features))


@pytest.mark.parametrize("name", model_names())
def test_input_row_order_does_not_matter(name, fitted, simulated):
    split, episodes = simulated
    model = fitted[name]
    shuffled_features = split.features.sample(frac=1.0, random_state=3)
    shuffled_episodes = episodes.sample(frac=1.0, random_state=4) if model.needs_episodes else None
    refit = clone(model).fit(shuffled_features, shuffled_episodes)
    expected = model.predict(split.features)
    got = refit.predict(shuffled_features).loc[expected.index]
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=1e-12)


# NOTE: a plain Weibull gap with covariates has no way to say that a customer
# left, so after long idle times it keeps predicting purchases (error 0.064
# here). lognormal_aft reaches 0.048 only with a covariate-dependent sigma.
CALIBRATION_CASES = [
    pytest.param(
        name,
        marks=pytest.mark.xfail(
            strict=True,
            reason="Weibull AFT cannot represent silent dropout; lapsed customers are over-predicted",
        ),
    )
    if name == "weibull_aft"
    else name
    for name in model_names()
]


@pytest.mark.parametrize("name", CALIBRATION_CASES)
def test_calibrated_on_simulated_truth(name, fitted, simulated):
    # Mean absolute gap between predicted and observed purchase rates over
    # deciles of the predicted P(purchase within 30 days).
    split, _ = simulated
    predicted = fitted[name].predict(split.features, horizons=(30,))["p_purchase_30d"]
    observed = (split.truth["event"] & (split.truth["days_to_next"] <= 30)).astype(float)
    deciles = pd.qcut(predicted.rank(method="first"), 10, labels=False)
    table = pd.DataFrame({"p": predicted, "y": observed, "d": deciles}).groupby("d").mean()
    error = float((table["p"] - table["y"]).abs().mean())
    assert error <= 0.05, f"{name}: mean decile calibration error {error:.3f}"
