"""The base contract on a model whose outputs are known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from rtt_models.models.base import NextPurchaseModel


class ExponentialGaps(NextPurchaseModel):
    """Memoryless gaps with a fixed daily rate: S(t) = exp(-rate * t)."""

    def __init__(self, rate_per_day=0.05):
        self.rate_per_day = rate_per_day

    def fit(self, features, episodes=None):
        self.feature_names_in_ = ["elapsed_days"]
        return self

    def _survival_matrix(self, features, times_days):
        return np.exp(-self.rate_per_day * np.outer(np.ones(len(features)), times_days))


def customers(elapsed):
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(elapsed))], "elapsed_days": elapsed})


def test_predict_columns_and_closed_form_values():
    rate = 0.05
    model = ExponentialGaps(rate).fit(customers([0.0]))
    out = model.predict(customers([0.0, 40.0]), horizons=(30, 90))
    assert list(out.columns) == ["p_purchase_30d", "p_purchase_90d", "expected_occasions_30d",
                                 "expected_occasions_90d", "median_days_to_next", "expected_days_to_next",
                                 "risk_score", "p_alive"]
    assert out.index.name == "customer_id"
    np.testing.assert_allclose(out["p_purchase_30d"], 1 - np.exp(-rate * 30))
    np.testing.assert_allclose(out["risk_score"], np.exp(-rate * 90))
    np.testing.assert_allclose(out["median_days_to_next"], np.log(2) / rate, rtol=2e-3)
    # E[min(T, 90)] = (1 - exp(-90 rate)) / rate, up to the trapezoid rule on a day grid.
    np.testing.assert_allclose(out["expected_days_to_next"], (1 - np.exp(-rate * 90)) / rate, rtol=1e-3)
    assert out["p_alive"].isna().all()


def test_renewal_count_of_geometric_day_gaps():
    # On a day grid exponential gaps become geometric: a purchase each day
    # with probability q = 1 - exp(-rate), so h days hold q * h purchases.
    rate = 0.05
    out = ExponentialGaps(rate).fit(customers([0.0])).predict(customers([3.0]), horizons=(7, 30, 120))
    q = 1 - np.exp(-rate)
    for h in (7, 30, 120):
        assert out[f"expected_occasions_{h}d"].iloc[0] == pytest.approx(q * h, rel=1e-9)


def test_median_beyond_search_limit_is_nan():
    out = ExponentialGaps(1e-4).fit(customers([0.0])).predict(customers([0.0]), horizons=(30,))
    assert np.isnan(out["median_days_to_next"].iloc[0])


def test_predict_survival_shape_and_time_zero():
    model = ExponentialGaps().fit(customers([0.0]))
    curve = model.predict_survival(customers([1.0, 2.0, 3.0]), times=[0, 10, 5])
    assert curve.shape == (3, 3)
    assert (curve[0.0] == 1.0).all()
    assert curve.columns.tolist() == [0.0, 10.0, 5.0]


def test_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError):
        ExponentialGaps().predict(customers([0.0]))


@pytest.mark.parametrize(
    ("horizons", "message"),
    [
        pytest.param((0,), "horizons must be whole days >= 1", id="zero"),
        pytest.param((1.5,), "horizons must be whole days >= 1", id="fraction"),
        pytest.param((), "horizons must be whole days >= 1", id="empty"),
    ],
)
def test_bad_horizons_rejected(horizons, message):
    model = ExponentialGaps().fit(customers([0.0]))
    with pytest.raises(ValueError, match=message):
        model.predict(customers([0.0]), horizons=horizons)


def test_bad_features_rejected():
    model = ExponentialGaps().fit(customers([0.0]))
    with pytest.raises(ValueError, match=r"missing feature columns \['elapsed_days'\]"):
        model.predict(pd.DataFrame({"customer_id": ["a"], "other": [1]}))
    with pytest.raises(ValueError, match="duplicated customer_id values"):
        model.predict(pd.DataFrame({"customer_id": ["a", "a"], "elapsed_days": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="elapsed_days must be finite and >= 0"):
        model.predict(customers([-1.0]))
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        model.predict([[1.0]])
    with pytest.raises(ValueError, match="times must be finite days >= 0"):
        model.predict_survival(customers([0.0]), times=[-1])


def test_horizon_above_ten_years_rejected():
    model = ExponentialGaps().fit(customers([0.0]))
    with pytest.raises(ValueError, match="horizons must be at most 3650 days"):
        model.predict(customers([0.0]), horizons=(100_000_000,))


@pytest.mark.parametrize("name", ["mean_gap", "dropout_timing"])
def test_parts_of_customers_change_nothing(name, monkeypatch):
    # Grid families evaluate customers in parts on threads; parts of 7
    # customers give exactly the scores of one part holding everyone.
    import rtt_models.models.base as base
    from rtt_models.data import simulate_transactions
    from rtt_models.features import build_episodes, build_features
    from rtt_models.models import make_model

    log = simulate_transactions(300, seed=3).transactions
    features, episodes = build_features(log, "2023-06-30"), build_episodes(log, "2023-06-30")
    model = make_model(name).fit(features, episodes)

    monkeypatch.setattr(base, "PREDICT_PART_CUSTOMERS", 7)
    in_parts = model.predict(features, horizons=(30, 90))
    monkeypatch.setattr(base, "PREDICT_PART_CUSTOMERS", 10**9)
    whole = model.predict(features, horizons=(30, 90))

    assert len(in_parts) == len(features)
    pd.testing.assert_frame_equal(in_parts, whole, check_exact=True)
