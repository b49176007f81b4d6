"""Baseline next-purchase models: the personal mean-gap rule and Kaplan-Meier of gaps.

Both baselines predict the open gap of each customer, conditional on the days
already elapsed since the last purchase occasion:
``S_i(t) = S0_i(e_i + t) / S0_i(e_i)`` with ``S0_i`` the distribution of a fresh
gap and ``e_i`` the customer's ``elapsed_days``. They are the yardsticks that
every other family must beat.
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
        _require_columns(features, columns, type(self).__name__, "features")
        frequency = _as_float(features["frequency"])
        gap_mean_days = _as_float(features["gap_mean_days"])
        log_gap_std = _as_float(features["log_gap_std"])

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
        frequency = np.nan_to_num(_as_float(features["frequency"]), nan=0.0)
        gap_mean_days = _as_float(features["gap_mean_days"])
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
        elapsed_days = _as_float(features["elapsed_days"])[:, None]
        times = np.asarray(times_days, dtype=float)[None, :]

        log_at_elapsed = lognormal_log_survival(elapsed_days, log_location, sigma)
        log_later = lognormal_log_survival(elapsed_days + times, log_location, sigma)
        return np.exp(log_later - log_at_elapsed)


class KaplanMeierModel(NextPurchaseModel):
    """Kaplan-Meier estimate of the gap distribution, conditional on elapsed days.

    Every gap episode enters the product-limit estimate: completed gaps as
    events and each customer's open last gap, cut at the cut-off, as
    censored. Optionally one curve is estimated per stratum of the number of
    occasions that preceded the gap.

    Parameters
    ----------
    stratify_by_occasions : bool, default False
        Whether to estimate one curve per stratum of ``n_occasions``.
    occasion_bins : tuple of int, default (1, 2, 3, 5)
        Lower edges of the ``n_occasions`` strata, strictly increasing and
        starting at 1. The default gives the strata 1, 2, 3-4 and 5+.
    min_stratum_events : int, default 20
        Strata with fewer completed gaps than this use the pooled curve of
        all episodes instead of their own.

    Attributes
    ----------
    strata_ : list of str
        Stratum labels, for example ``["1", "2", "3-4", "5+"]``; ``["all"]``
        without stratification.
    event_times_days_ : list of ndarray
        Per stratum, the distinct completed gap lengths in days, ascending.
    log_survival_ : list of ndarray
        Per stratum, ``log S(t)`` just after each of ``event_times_days_``;
        ``-inf`` once every remaining gap has ended.
    n_episodes_ : ndarray of int, shape (n_strata,)
        Episodes that fell in each stratum.
    pooled_strata_ : list of str
        Strata that use the pooled curve because they had too few events.
    survival_function_ : DataFrame, shape (n_event_times, n_strata)
        The fitted curves on the union of event times in days, one column
        per stratum, for inspection and plots.
    feature_names_in_ : list of str
        ``["elapsed_days"]``, plus ``"n_occasions"`` when stratified.

    Notes
    -----
    The conditional curve is ``S(e + t) / S(e)``, computed from the log
    survival, so it is exact even where ``S(e)`` is tiny. Beyond the longest
    observed gap the curve is flat. Two cases follow from this:

    * a customer whose elapsed days exceed every gap of the stratum, while
      the last gap of the curve was censored, keeps ``S(t) = 1``: no gap of
      the data was that long and still ended, so no purchase is predicted;
    * where the estimate reached ``S(e) = 0`` (every gap at risk at ``e``
      ended by ``e``), the same convention applies and ``S(t) = 1``.

    The estimate assumes that the cut-off censors gaps independently of
    their length and that every customer's gaps share one distribution
    within a stratum. Episodes of one customer are treated as independent.
    """

    _parameter_constraints: dict = {
        "stratify_by_occasions": ["boolean"],
        "occasion_bins": [tuple, list],
        "min_stratum_events": [Interval(Integral, 1, None, closed="left")],
    }

    needs_episodes = True

    def __init__(
        self,
        stratify_by_occasions: bool = False,
        occasion_bins: tuple[int, ...] = (1, 2, 3, 5),
        min_stratum_events: int = 20,
    ):
        self.stratify_by_occasions = stratify_by_occasions
        self.occasion_bins = occasion_bins
        self.min_stratum_events = min_stratum_events

    def _check_settings(self) -> np.ndarray:
        """Validate every setting and return the occasion bins as an int array."""
        self._validate_params()
        bins = np.asarray(self.occasion_bins)
        valid = (
            bins.ndim == 1
            and bins.size >= 1
            and np.issubdtype(bins.dtype, np.integer)
            and bins[0] == 1
            and np.all(np.diff(bins) > 0)
        )
        if not valid:
            raise ValueError(
                f"occasion_bins of {type(self).__name__} must be strictly increasing whole numbers "
                f"starting at 1, for example (1, 2, 3, 5); got {self.occasion_bins!r}."
            )
        return bins.astype(int)

    def fit(self, features: pd.DataFrame | None, episodes: pd.DataFrame | None = None):
        """Estimate the Kaplan-Meier curve of gaps, one per stratum when stratified.

        Parameters
        ----------
        features : DataFrame or None
            Ignored. It is accepted for the shared ``fit(features, episodes)`` call.
        episodes : DataFrame, shape (n_occasions, n_columns)
            Gap episodes with ``duration`` (days), ``event`` (bool) and, when
            stratified, ``n_occasions``.

        Returns
        -------
        self
        """
        bins = self._check_settings()
        columns = ["duration", "event"] + (["n_occasions"] if self.stratify_by_occasions else [])
        durations_days, events = check_episodes(episodes, columns, type(self).__name__)

        # The pooled curve is always estimated because sparse strata fall back to it.
        pooled = product_limit(durations_days, events)
        if not self.stratify_by_occasions:
            self.strata_ = ["all"]
            curves = [pooled]
            self.n_episodes_ = np.array([durations_days.size])
            self.pooled_strata_ = []
        else:
            occasions = _as_float(episodes["n_occasions"])
            stratum = _occasion_stratum(occasions, bins, "episodes")
            self.strata_ = _stratum_labels(bins)
            curves = []
            self.pooled_strata_ = []
            self.n_episodes_ = np.bincount(stratum, minlength=bins.size)
            for k, label in enumerate(self.strata_):
                in_stratum = stratum == k
                if events[in_stratum].sum() < self.min_stratum_events:
                    self.pooled_strata_.append(label)
                    curves.append(pooled)
                else:
                    curves.append(product_limit(durations_days[in_stratum], events[in_stratum]))
            if self.pooled_strata_:
                logger.info(
                    "Kaplan-Meier strata %s have fewer than %d completed gaps and use the pooled curve",
                    self.pooled_strata_,
                    self.min_stratum_events,
                )

        self.event_times_days_ = [times for times, _ in curves]
        self.log_survival_ = [log_survival for _, log_survival in curves]
        self.survival_function_ = self._survival_table()
        self.feature_names_in_ = ["elapsed_days"] + (["n_occasions"] if self.stratify_by_occasions else [])
        return self

    def _survival_table(self) -> pd.DataFrame:
        timeline = np.unique(np.concatenate([np.zeros(1), *self.event_times_days_]))
        columns = {
            label: np.exp(log_survival_at(times, log_survival, timeline))
            for label, times, log_survival in zip(self.strata_, self.event_times_days_, self.log_survival_)
        }
        return pd.DataFrame(columns, index=pd.Index(timeline, name="days"))

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        elapsed_days = _as_float(features["elapsed_days"])
        times = np.asarray(times_days, dtype=float)
        if self.stratify_by_occasions:
            stratum = _occasion_stratum(_as_float(features["n_occasions"]), np.asarray(self.occasion_bins), "features")
        else:
            stratum = np.zeros(elapsed_days.size, dtype=int)

        # The loop runs over strata, and each evaluates all of its customers at once.
        survival = np.ones((elapsed_days.size, times.size))
        for k in np.unique(stratum):
            rows = stratum == k
            survival[rows] = conditional_survival(
                self.event_times_days_[k], self.log_survival_[k], elapsed_days[rows], times
            )
        return survival


def product_limit(durations_days: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the Kaplan-Meier (product-limit) estimate of a survival function.

    Parameters
    ----------
    durations_days : ndarray of float, shape (n,)
        Observed durations in days, each >= 0.
    events : ndarray of bool, shape (n,)
        True where the duration ended in the event, False where censored.

    Returns
    -------
    event_times_days : ndarray of float, shape (m,)
        Distinct durations that ended in an event, ascending.
    log_survival : ndarray of float, shape (m,)
        ``log S(t)`` just after each event time: the cumulative sum of
        ``log(1 - d_j / n_j)``, with ``d_j`` events at ``t_j`` and ``n_j``
        durations >= ``t_j`` at risk. A duration censored at ``t_j`` counts
        as at risk at ``t_j``, as in lifelines. ``-inf`` once ``d_j = n_j``.
    """
    durations_days = np.asarray(durations_days, dtype=float)
    events = np.asarray(events, dtype=bool)
    event_times_days, deaths = np.unique(durations_days[events], return_counts=True)
    ordered = np.sort(durations_days)
    at_risk = durations_days.size - np.searchsorted(ordered, event_times_days, side="left")
    with np.errstate(divide="ignore"):
        log_survival = np.cumsum(np.log1p(-deaths / at_risk))
    return event_times_days, log_survival


def conditional_survival(
    event_times_days: np.ndarray,
    log_survival: np.ndarray,
    elapsed_days: np.ndarray,
    times_days: np.ndarray,
) -> np.ndarray:
    """Evaluate ``S(e + t) / S(e)`` of a step curve for each elapsed time and horizon.

    Parameters
    ----------
    event_times_days, log_survival : ndarray, shape (m,)
        A curve as :func:`product_limit` returns it.
    elapsed_days : ndarray of float, shape (n,)
        Days already elapsed, ``e``.
    times_days : ndarray of float, shape (k,)
        Days after the cut-off, ``t``.

    Returns
    -------
    ndarray, shape (n, k)
        Conditional survival. Rows where ``S(e) = 0`` are 1, because the
        curve is flat beyond its support.
    """
    log_at_elapsed = log_survival_at(event_times_days, log_survival, elapsed_days)[:, None]
    log_later = log_survival_at(event_times_days, log_survival, elapsed_days[:, None] + times_days[None, :])
    with np.errstate(invalid="ignore"):
        ratio = np.exp(log_later - log_at_elapsed)
    return np.where(np.isneginf(log_at_elapsed), 1.0, ratio)


def check_episodes(episodes: pd.DataFrame | None, columns: list[str], model_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate gap episodes and return their durations (days) and event flags.

    Raises
    ------
    ValueError
        When episodes are missing, lack a column, are empty or have a
        duration that is negative, not finite, or zero for a completed gap.
    """
    if episodes is None:
        raise ValueError(
            f"{model_name} is fitted on gap episodes, but episodes is None; pass "
            "episodes=rtt_models.features.build_episodes(transactions, as_of)."
        )
    _require_columns(episodes, columns, model_name, "episodes")
    if len(episodes) == 0:
        raise ValueError(f"{model_name} got no gap episodes; pass the episodes of at least one customer.")

    durations_days = _as_float(episodes["duration"])
    events = episodes["event"].to_numpy()
    if events.dtype != bool:
        if not np.isin(events, [0, 1]).all():
            raise ValueError(
                f"episodes column 'event' of {model_name} must be boolean (True where the gap ended "
                f"in a purchase), got values {pd.unique(events)[:5].tolist()}."
            )
        events = events.astype(bool)
    bad = ~np.isfinite(durations_days) | (durations_days < 0) | (events & (durations_days <= 0))
    if bad.any():
        raise ValueError(
            f"episodes of {model_name} need finite durations >= 0 days, and > 0 for completed gaps, "
            f"but {int(bad.sum())} rows are not, for example durations {durations_days[bad][:5].tolist()}; "
            "rebuild them with rtt_models.features.build_episodes."
        )
    return durations_days, events


def log_survival_at(event_times_days: np.ndarray, log_survival: np.ndarray, x_days: np.ndarray) -> np.ndarray:
    """Look up ``log S(x)`` on a right-continuous step curve, which is 0 before the first event time."""
    position = np.searchsorted(event_times_days, x_days, side="right") - 1
    padded = np.concatenate([np.zeros(1), log_survival])
    return padded[position + 1]


def _occasion_stratum(occasions: np.ndarray, bins: np.ndarray, source: str) -> np.ndarray:
    bad = ~np.isfinite(occasions) | (occasions < 1)
    if bad.any():
        raise ValueError(
            f"n_occasions in the {source} must be whole numbers >= 1, but {int(bad.sum())} rows are not, "
            f"for example {occasions[bad][:5].tolist()}."
        )
    return np.searchsorted(bins, occasions, side="right") - 1


def _stratum_labels(bins: np.ndarray) -> list[str]:
    labels = []
    for low, high in zip(bins[:-1], bins[1:] - 1):
        labels.append(str(low) if low == high else f"{low}-{high}")
    labels.append(f"{bins[-1]}+")
    return labels


def _require_columns(frame: pd.DataFrame, columns: list[str], model_name: str, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{model_name} expects {what} as a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{model_name} is missing {what} columns {missing}; build them with "
            f"rtt_models.features.build_{what}."
        )


def _as_float(column: pd.Series) -> np.ndarray:
    """Return a numeric column as float days or counts, with missing values as NaN."""
    return column.to_numpy(dtype=float, na_value=np.nan)
