"""The personal mean-gap rule, the baseline practitioners use today.

The next purchase is expected about one personal mean gap after the last,
made into a log-normal distribution whose spread is fitted by censored
maximum likelihood (see :mod:`rtt_models.models.mean_gap_math`). The open gap
is predicted conditional on the days already elapsed since the last purchase:
``S_i(t) = S0_i(e_i + t) / S0_i(e_i)``.
"""

from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from rtt_models.models.base import NextPurchaseModel
from rtt_models.models.baselines import as_float, require_columns
from rtt_models.models.mean_gap_math import CENSORED_BOUNDS, GapStatistics, inverse_gaps, lognormal_log_survival

logger = logging.getLogger("rtt_models")

# The smallest within-customer standard deviation of log gaps that the mean-gap
# rule uses. A population whose repeat gaps are all identical would otherwise
# give a point mass, whose survival curve is a single step.
MIN_LOG_GAP_STD = 0.05


class MeanGapModel(NextPurchaseModel):
    """Personal mean-gap rule: the next purchase comes about one mean gap after the last.

    The rule practitioners use today, made into a distribution. Each
    customer's fresh gap is log-normal with a mean proportional to the
    customer's personal mean gap. A one-time buyer gets the population mean
    gap. How far the gap spreads around that mean, and by which factor the
    mean is scaled, depend only on the number of repeat gaps the personal
    mean rests on.

    Parameters
    ----------
    prior_gaps : float, default 0.0
        Weight of the population mean gap, counted in pseudo-gaps, when a
        customer's mean gap is estimated. The personal mean is
        ``(n * gap_mean_days + prior_gaps * population_mean) / (n + prior_gaps)``
        with ``n`` the customer's repeat gaps (``frequency``). The default 0
        trusts a single gap as much as ten.
    spread : {"censored", "pooled"}, default "censored"
        How the scale factor and spread of the log-normal are estimated.
        ``"censored"`` fits them by maximum likelihood on the completed gaps
        and on each customer's open gap, right-censored at ``elapsed_days``.
        ``"pooled"`` is the plain rule: scale factor 1 and the pooled
        within-customer spread of log gaps for every customer.
    max_iter : int, default 200
        Iteration limit of the L-BFGS-B fit of the ``"censored"`` spread.

    Attributes
    ----------
    population_mean_gap_days_ : float
        Mean of every observed repeat gap in the fitting features, in days.
    log_gap_std_ : float
        Pooled within-customer standard deviation of natural-log gaps. It is
        the ``sigma`` of every customer with ``spread="pooled"`` and the
        start value of the fit with ``spread="censored"``.
    log_scale_coef_ : ndarray, shape (2,)
        Intercept and slope of ``log c_n`` on ``1 / (n + 1)``; zeros with
        ``spread="pooled"``.
    log_sigma_coef_ : ndarray, shape (2,)
        Intercept and slope of ``log sigma_n`` on ``1 / (n + 1)``;
        ``[log(log_gap_std_), 0]`` with ``spread="pooled"``.
    n_iter_ : int
        Iterations of the censored fit; 0 with ``spread="pooled"``.
    n_customers_ : int
        Customers in the fitting features.
    feature_names_in_ : list of str
        ``["elapsed_days", "frequency", "gap_mean_days"]``.

    Notes
    -----
    The gap ``G_i`` of customer ``i`` with ``n`` repeat gaps is log-normal,
    ``log G_i ~ Normal(log(c_n * mu_i) - sigma_n**2 / 2, sigma_n**2)``, so
    that ``E[G_i] = c_n * mu_i`` with ``mu_i`` the personal mean gap in days.
    Both parameters vary smoothly with the number of gaps:
    ``log c_n = a + b / (n + 1)`` and ``log sigma_n = a' + b' / (n + 1)``.
    One-time buyers (``n = 0``) sit at the end of the same curves.

    With ``spread="pooled"``, ``c_n = 1`` and ``sigma_n**2`` is the pooled
    within-customer variance of log gaps: the mean of ``log_gap_std**2``
    over customers with two or more repeat gaps, weighted by
    ``frequency - 1`` (``log_gap_std`` uses ``ddof=1``). The open gap plays
    no part, so a customer who stopped buying long ago keeps a purchase
    rate close to that of an active one.

    With ``spread="censored"``, the four coefficients maximise the
    log-likelihood of every customer's completed gaps, through the
    sufficient statistics ``frequency``, ``log_gap_mean`` and
    ``log_gap_std``, plus the open gap as right-censored at ``elapsed_days``.
    Long purchase-free times therefore widen the spread and lengthen the
    scale where they occur, which is how this model, without a dropout
    process, accounts for customers who silently stopped buying. The
    completed gaps also define ``mu_i``, so the likelihood is a plug-in
    one. One-time buyers contribute only censored gaps, so their
    parameters are extrapolated along the fitted curves in ``1 / (n + 1)``.

    The survival of the open gap is ``S0_i(e + t) / S0_i(e)``, computed as a
    difference of log survival functions (``scipy.special.log_ndtr``), so it
    stays finite for customers far beyond their usual gap. The log-normal
    hazard falls after its peak, so a long-overdue customer is predicted to
    buy ever more slowly but never to lapse for good.
    """

    _parameter_constraints: dict = {
        "prior_gaps": [Interval(Real, 0, None, closed="left")],
        "spread": [StrOptions({"censored", "pooled"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, prior_gaps: float = 0.0, spread: str = "censored", max_iter: int = 200):
        self.prior_gaps = prior_gaps
        self.spread = spread
        self.max_iter = max_iter

    def fit(self, features: pd.DataFrame, episodes: pd.DataFrame | None = None):
        """Estimate the population mean gap and the distribution of gaps around each personal mean.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the calibration cut-off with columns
            ``frequency``, ``gap_mean_days`` and ``log_gap_std``, plus
            ``log_gap_mean`` and ``elapsed_days`` with ``spread="censored"``.
        episodes : DataFrame, optional
            Ignored. The rule reads only per-customer gap statistics.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            When a column is missing, when no customer has a repeat gap or
            when no customer has two repeat gaps to measure the spread.
        """
        self._validate_params()
        columns = ["frequency", "gap_mean_days", "log_gap_std"]
        if self.spread == "censored":
            columns += ["log_gap_mean", "elapsed_days"]
        require_columns(features, columns, type(self).__name__, "features")
        frequency = as_float(features["frequency"])
        gap_mean_days = as_float(features["gap_mean_days"])
        log_gap_std = as_float(features["log_gap_std"])

        # The population mean gap is the mean over every repeat gap, so each
        # customer counts with their number of gaps.
        has_gap = (frequency >= 1) & np.isfinite(gap_mean_days)
        if not has_gap.any():
            raise ValueError(
                f"{type(self).__name__} needs customers with repeat purchases, but none of the "
                f"{len(features)} customers has frequency >= 1; move the cut-off later or use more history."
            )
        total_days = np.sum(frequency[has_gap] * gap_mean_days[has_gap])
        self.population_mean_gap_days_ = float(total_days / frequency[has_gap].sum())

        # The spread is pooled within customers, weighted by degrees of freedom.
        has_spread = (frequency >= 2) & np.isfinite(log_gap_std)
        if not has_spread.any():
            raise ValueError(
                f"{type(self).__name__} needs customers with two or more repeat gaps to measure the "
                "spread of gaps, but none has frequency >= 2; move the cut-off later or use more history."
            )
        degrees = frequency[has_spread] - 1.0
        pooled_variance = np.sum(degrees * log_gap_std[has_spread] ** 2) / degrees.sum()
        self.log_gap_std_ = float(max(np.sqrt(pooled_variance), MIN_LOG_GAP_STD))
        self.log_scale_coef_ = np.zeros(2)
        self.log_sigma_coef_ = np.array([np.log(self.log_gap_std_), 0.0])
        self.n_iter_ = 0

        if self.spread == "censored":
            self._fit_censored(features.sort_index(kind="stable"))

        self.n_customers_ = int(len(features))
        self.feature_names_in_ = ["elapsed_days", "frequency", "gap_mean_days"]
        return self

    def _fit_censored(self, features: pd.DataFrame) -> None:
        """Fit ``log_scale_coef_`` and ``log_sigma_coef_`` by censored maximum likelihood.

        ``features`` are sorted by customer so that the sums, and so the
        fitted coefficients, do not depend on the input row order.
        """
        statistics = GapStatistics.from_features(features, self._mean_gap_days(features))
        start = np.concatenate([self.log_scale_coef_, self.log_sigma_coef_])
        result = minimize(
            statistics.negative_log_likelihood,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=CENSORED_BOUNDS,
            options={"maxiter": self.max_iter},
        )
        if not result.success:
            warnings.warn(
                f"{type(self).__name__} spread fit did not converge in max_iter={self.max_iter} iterations "
                f"({result.message}); raise max_iter or use spread='pooled'.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.log_scale_coef_ = result.x[:2].copy()
        self.log_sigma_coef_ = result.x[2:].copy()
        self.n_iter_ = int(result.nit)
        logger.info(
            "mean_gap censored spread: scale factor %.3g to %.3g, sigma %.3g to %.3g (one-time buyers to many gaps)",
            *np.exp(self.log_scale_coef_[0] + self.log_scale_coef_[1] * np.array([1.0, 0.0])),
            *np.exp(self.log_sigma_coef_[0] + self.log_sigma_coef_[1] * np.array([1.0, 0.0])),
        )

    def personal_mean_gap_days(self, features: pd.DataFrame) -> pd.Series:
        """Return each customer's mean gap, shrunk toward the population by ``prior_gaps``.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features with ``frequency`` and ``gap_mean_days``.

        Returns
        -------
        Series, shape (n_customers,)
            Mean gap in days, indexed by ``customer_id``, before the scale
            factor ``c_n``. One-time buyers get the population mean gap.
        """
        frame = self._check_features_fitted(features)
        return pd.Series(self._mean_gap_days(frame), index=frame.index, name="mean_gap_days")

    def gap_parameters(self, features: pd.DataFrame) -> pd.DataFrame:
        """Return each customer's log-normal gap parameters.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features with ``frequency`` and ``gap_mean_days``.

        Returns
        -------
        DataFrame, shape (n_customers, 3)
            Indexed by ``customer_id``: ``scale_factor`` (``c_n``, unitless),
            ``expected_gap_days`` (``c_n`` times the personal mean gap) and
            ``log_gap_sigma`` (``sigma_n`` of natural-log days).
        """
        frame = self._check_features_fitted(features)
        scale_factor, sigma = self._scale_and_sigma(frame)
        return pd.DataFrame(
            {
                "scale_factor": scale_factor,
                "expected_gap_days": scale_factor * self._mean_gap_days(frame),
                "log_gap_sigma": sigma,
            },
            index=frame.index,
        )

    def _check_features_fitted(self, features: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        return self._check_features(features)

    def _mean_gap_days(self, features: pd.DataFrame) -> np.ndarray:
        frequency = np.nan_to_num(as_float(features["frequency"]), nan=0.0)
        gap_mean_days = as_float(features["gap_mean_days"])
        has_gap = (frequency >= 1) & np.isfinite(gap_mean_days)
        personal_days = np.where(has_gap, gap_mean_days, 0.0)
        gaps = np.where(has_gap, frequency, 0.0)
        weight = gaps + self.prior_gaps
        with np.errstate(invalid="ignore", divide="ignore"):
            shrunk = (gaps * personal_days + self.prior_gaps * self.population_mean_gap_days_) / weight
        return np.where(has_gap, shrunk, self.population_mean_gap_days_)

    def _scale_and_sigma(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``c_n`` and ``sigma_n`` of each customer, shape (n,) each."""
        inverse = inverse_gaps(features)
        log_scale = self.log_scale_coef_[0] + self.log_scale_coef_[1] * inverse
        log_sigma = self.log_sigma_coef_[0] + self.log_sigma_coef_[1] * inverse
        return np.exp(log_scale), np.exp(log_sigma)

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        scale_factor, sigma = self._scale_and_sigma(features)
        log_location = (np.log(scale_factor * self._mean_gap_days(features)) - sigma**2 / 2.0)[:, None]
        sigma = sigma[:, None]
        elapsed_days = as_float(features["elapsed_days"])[:, None]
        times = np.asarray(times_days, dtype=float)[None, :]

        log_at_elapsed = lognormal_log_survival(elapsed_days, log_location, sigma)
        log_later = lognormal_log_survival(elapsed_days + times, log_location, sigma)
        return np.exp(log_later - log_at_elapsed)
