"""Summaries of S(t) = 1 - w * g(t) from one table per distinct curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from curve_checks import check_summaries_against_curve

from rtt_models.models.alive_curves import summarize_alive_curves, summary_grid
from rtt_models.models.base import MEDIAN_SEARCH_LIMIT_DAYS
from rtt_models.models.btyd import ParetoNBDModel


def _exponential_curves(scales_days):
    """g(t) = 1 - exp(-t / scale) per curve, with its derivative."""
    scales = np.asarray(scales_days, dtype=float)[:, None]

    def curve(days):
        return -np.expm1(-days[None, :] / scales), np.exp(-days[None, :] / scales) / scales

    return curve


def test_exponential_curves_match_formulas():
    # With g(t) = 1 - exp(-t/theta): the median solves w g(t) = 0.5, so
    # t = -theta log(1 - 0.5/w); the restricted mean is H - w (H - theta (1 - exp(-H/theta))).
    scales = np.array([0.3, 5.0, 60.0, 400.0])
    weight = np.array([1.0, 0.9, 0.75, 0.6, 0.45, 0.3, 1.0, 0.8])
    inverse = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    horizons = np.array([7, 30, 90])

    out = summarize_alive_curves(weight, inverse, _exponential_curves(scales), horizons)

    theta = scales[inverse]
    expected_p = weight[:, None] * -np.expm1(-horizons[None, :] / theta[:, None])
    np.testing.assert_allclose(out["p_purchase"], expected_p, rtol=1e-12)
    largest = 90.0
    expected_mean = largest - weight * (largest - theta * -np.expm1(-largest / theta))
    np.testing.assert_allclose(out["restricted_mean_days"], expected_mean, atol=1e-3)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_median = -theta * np.log1p(-0.5 / weight)
    expected_median[(weight <= 0.5) | (expected_median > MEDIAN_SEARCH_LIMIT_DAYS)] = np.nan
    np.testing.assert_array_equal(np.isnan(out["median_days"]), np.isnan(expected_median))
    known = np.isfinite(expected_median)
    np.testing.assert_allclose(out["median_days"][known], expected_median[known], rtol=1e-4, atol=1e-3)
    # Rows 4 and 5 (w below 0.5) never reach one half; row 7's
    # median is -400 log(0.375) = 392 days, inside the search limit.
    assert np.isnan(out["median_days"][[4, 5]]).all()
    assert out["median_days"][7] == pytest.approx(-400 * np.log(0.375), abs=1e-3)


def test_median_beyond_search_limit_is_nan():
    # theta 2000 days with w = 1: the median 2000 log 2 = 1386 days lies beyond 730.
    out = summarize_alive_curves(np.array([1.0]), np.array([0]), _exponential_curves([2000.0]), np.array([30]))
    assert np.isnan(out["median_days"][0])


def test_grid_contains_horizons_and_limit():
    grid = summary_grid(np.array([30, 45, 1000]))
    assert grid[0] == 0.0
    assert {30.0, 45.0, 1000.0, float(MEDIAN_SEARCH_LIMIT_DAYS)} <= set(grid.tolist())
    assert np.all(np.diff(grid) > 0)


def _pareto_customers(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 731, size=n).astype(float)
    frequency = rng.poisson(rng.gamma(0.8, 8.0, size=n))
    recency = np.where(frequency > 0, np.floor(tenure * rng.uniform(0.05, 1.0, size=n)), 0.0)
    index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    return pd.DataFrame(
        {"frequency": frequency, "recency_days": recency, "tenure_days": tenure, "elapsed_days": tenure - recency},
        index=index,
    )


@pytest.mark.parametrize("params", [(0.553, 10.578, 0.606, 11.669), (0.9, 14.0, 0.45, 3.0)], ids=["alpha_below_beta", "alpha_above_beta"])
def test_pareto_nbd_summary_matches_exact_curve(params):
    model = ParetoNBDModel()
    model.params_ = dict(zip(ParetoNBDModel._param_names, params))
    model.feature_names_in_ = list(ParetoNBDModel.required_features)
    features = _pareto_customers(60, seed=3)
    assert check_summaries_against_curve(model, features) >= 10


def test_pareto_nbd_summary_equals_grid_horizons():
    model = ParetoNBDModel()
    model.params_ = dict(zip(ParetoNBDModel._param_names, (0.553, 10.578, 0.606, 11.669)))
    model.feature_names_in_ = list(ParetoNBDModel.required_features)
    frame = model._check_features(_pareto_customers(500, seed=5))
    horizons = np.array([1, 30, 90, 365])
    closed = model._closed_form_summary(frame, horizons)
    grid = model._summary_on_grid(frame, horizons)
    np.testing.assert_allclose(closed["p_purchase"], grid["p_purchase"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(closed["expected_occasions"], model._expected_occasions(frame, horizons), rtol=1e-12)
    np.testing.assert_allclose(closed["p_alive"], model._p_alive(frame), rtol=1e-12)
