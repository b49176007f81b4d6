"""Checks of predicted summaries against the exact survival curve of the same model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, optimize

from rtt_models.models.base import MEDIAN_SEARCH_LIMIT_DAYS


def check_summaries_against_curve(model, features, largest_horizon: int = 90) -> int:
    """Assert each customer's median and restricted mean against a root search and quadrature.

    The median must be within 0.01 days of the root of S(t) = 0.5 (NaN when
    S stays above 0.5 up to the search limit) and the restricted mean within
    2e-3 days of the integral of S up to ``largest_horizon``.

    Returns
    -------
    int
        The number of customers whose median was found.
    """
    predicted = model.predict(features, horizons=(30, largest_horizon))
    medians = 0
    for customer in predicted.index:
        one = features.loc[[customer]]

        def survival(t):
            return model.predict_survival(one, [t]).iloc[0, 0]

        mean = integrate.quad(survival, 0, largest_horizon, epsabs=1e-10, epsrel=1e-10, limit=200)[0]
        assert predicted.loc[customer, "expected_days_to_next"] == pytest.approx(mean, abs=2e-3)
        assert predicted.loc[customer, f"p_purchase_{largest_horizon}d"] == pytest.approx(
            1 - survival(float(largest_horizon)), abs=1e-12
        )
        median = predicted.loc[customer, "median_days_to_next"]
        if survival(MEDIAN_SEARCH_LIMIT_DAYS) < 0.5:
            exact = optimize.brentq(lambda t: survival(t) - 0.5, 0.0, MEDIAN_SEARCH_LIMIT_DAYS, xtol=1e-12)
            assert median == pytest.approx(exact, abs=0.01)
            medians += 1
        else:
            assert np.isnan(median)
    return medians
