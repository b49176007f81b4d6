"""Censored log-normal likelihood of the mean-gap rule, from per-customer gap statistics.

The mean-gap rule (:class:`rtt_models.models.mean_gap.MeanGapModel`) models
customer i's gaps as log-normal with location
``log(c_n * mu_i) - sigma_n**2 / 2`` and spread ``sigma_n``, where ``mu_i``
is the personal mean gap in days, ``n`` the number of repeat gaps and

    log c_n     = a  + b  / (n + 1)
    log sigma_n = a' + b' / (n + 1).

This module evaluates the log-likelihood of the four coefficients and its
gradient. Each customer contributes the n completed gaps, through the
sufficient statistics mean and sample standard deviation (``ddof=1``) of the
natural-log gaps, and the open gap, right-censored at ``elapsed_days``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)

#: Bounds of (a, b, a', b') in the fit, which keep ``exp`` finite. Fitted
#: coefficients on the simulated log and on CDNOW were within [-0.2, 5.4].
CENSORED_BOUNDS = [(-10.0, 10.0), (-10.0, 10.0), (np.log(0.05), np.log(20.0)), (-5.0, 5.0)]


def inverse_gaps(features: pd.DataFrame) -> np.ndarray:
    """Return ``1 / (n + 1)`` per customer, with ``n`` the repeat gaps (0 without a valid gap mean)."""
    frequency = features["frequency"].to_numpy(dtype=float, na_value=np.nan)
    gap_mean_days = features["gap_mean_days"].to_numpy(dtype=float, na_value=np.nan)
    has_gap = (frequency >= 1) & np.isfinite(gap_mean_days)
    return 1.0 / (np.where(has_gap, frequency, 0.0) + 1.0)


def lognormal_log_survival(x_days: np.ndarray, log_location: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Return ``log P(G > x)`` of a log-normal gap; ``x = 0`` gives 0.

    The arguments broadcast against each other, for example ``x_days`` of
    shape (n, k) with ``log_location`` and ``sigma`` of shape (n, 1).
    """
    with np.errstate(divide="ignore"):
        log_x = np.log(x_days)
    return log_ndtr(-(log_x - log_location) / sigma)


@dataclass(frozen=True)
class GapStatistics:
    """Per-customer statistics that the censored likelihood reads, each of shape (n_customers,).

    Attributes
    ----------
    n_gaps : ndarray of float
        Completed repeat gaps ``n`` (0 for one-time buyers).
    inverse_gaps : ndarray of float
        ``1 / (n + 1)``.
    log_mean_gap : ndarray of float
        ``log(mu_i)``, the log of the personal mean gap in days.
    log_gap_mean : ndarray of float
        Mean of the natural-log gaps; 0 where ``n = 0``.
    log_gap_ss : ndarray of float
        ``(n - 1) * log_gap_std**2``, the within-customer sum of squares of
        log gaps; 0 where ``n < 2``.
    log_elapsed : ndarray of float
        ``log(elapsed_days)``; the censored term is skipped where
        ``elapsed_days`` is 0 (``log`` is then ``-inf``).
    """

    n_gaps: np.ndarray
    inverse_gaps: np.ndarray
    log_mean_gap: np.ndarray
    log_gap_mean: np.ndarray
    log_gap_ss: np.ndarray
    log_elapsed: np.ndarray

    @classmethod
    def from_features(cls, features: pd.DataFrame, mean_gap_days: np.ndarray) -> GapStatistics:
        """Collect the statistics from feature columns and each customer's mean gap in days."""
        inverse = inverse_gaps(features)
        n_gaps = 1.0 / inverse - 1.0
        log_gap_mean = features["log_gap_mean"].to_numpy(dtype=float, na_value=np.nan)
        log_gap_std = features["log_gap_std"].to_numpy(dtype=float, na_value=np.nan)
        elapsed_days = features["elapsed_days"].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore"):
            log_elapsed = np.log(elapsed_days)
        return cls(
            n_gaps=n_gaps,
            inverse_gaps=inverse,
            log_mean_gap=np.log(mean_gap_days),
            log_gap_mean=np.where(n_gaps >= 1, np.nan_to_num(log_gap_mean), 0.0),
            log_gap_ss=np.where(n_gaps >= 2, (n_gaps - 1.0) * np.nan_to_num(log_gap_std) ** 2, 0.0),
            log_elapsed=log_elapsed,
        )

    def negative_log_likelihood(self, coefficients: np.ndarray) -> tuple[float, np.ndarray]:
        """Return minus the log-likelihood of ``(a, b, a', b')`` and its gradient, shape (4,).

        The constant ``-log(gap)`` terms of the completed gaps' densities are
        left out because they do not depend on the coefficients.
        """
        a, b, a_sigma, b_sigma = coefficients
        u = self.inverse_gaps
        log_sigma = a_sigma + b_sigma * u
        sigma = np.exp(log_sigma)
        variance = sigma**2
        location = self.log_mean_gap + a + b * u - variance / 2.0

        # Completed gaps: n normal densities of log gaps, through their mean
        # and within-customer sum of squares.
        n = self.n_gaps
        residual = self.log_gap_mean - location
        squares = self.log_gap_ss + n * residual**2
        log_lik = -n * (log_sigma + _LOG_SQRT_2PI) - squares / (2.0 * variance)
        d_location = n * residual / variance
        d_log_sigma = -n + squares / variance

        # Open gap: log P(G > elapsed), skipped where elapsed is 0 days.
        censored = np.isfinite(self.log_elapsed)
        z = (self.log_elapsed[censored] - location[censored]) / sigma[censored]
        log_tail = log_ndtr(-z)
        mills = np.exp(-0.5 * z**2 - _LOG_SQRT_2PI - log_tail)
        log_lik[censored] += log_tail
        d_location[censored] += mills / sigma[censored]
        d_log_sigma[censored] += mills * z

        # The location moves with log sigma through -sigma**2 / 2.
        d_log_sigma = d_log_sigma - d_location * variance
        gradient = np.array(
            [d_location.sum(), (d_location * u).sum(), d_log_sigma.sum(), (d_log_sigma * u).sum()]
        )
        return -float(log_lik.sum()), -gradient
