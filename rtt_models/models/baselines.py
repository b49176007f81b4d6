"""Kaplan-Meier baseline of gaps, and the helpers the baselines share.

Both baselines (this one and the mean-gap rule in :mod:`rtt_models.models.mean_gap`)
predict the open gap of each customer, conditional on the days already
elapsed since the last purchase occasion:
``S_i(t) = S0_i(e_i + t) / S0_i(e_i)`` with ``S0_i`` the distribution of a fresh
gap and ``e_i`` the customer's ``elapsed_days``. They are the yardsticks that
every other family must beat.
"""

from __future__ import annotations

import logging
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval

from rtt_models.models.base import NextPurchaseModel

logger = logging.getLogger("rtt_models")

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
    curve_depends_only_on_features_in = True

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
            occasions = as_float(episodes["n_occasions"])
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
        elapsed_days = as_float(features["elapsed_days"])
        times = np.asarray(times_days, dtype=float)
        if self.stratify_by_occasions:
            stratum = _occasion_stratum(as_float(features["n_occasions"]), np.asarray(self.occasion_bins), "features")
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
    require_columns(episodes, columns, model_name, "episodes")
    if len(episodes) == 0:
        raise ValueError(f"{model_name} got no gap episodes; pass the episodes of at least one customer.")

    durations_days = as_float(episodes["duration"])
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


def require_columns(frame: pd.DataFrame, columns: list[str], model_name: str, table: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{model_name} expects {table} as a pandas DataFrame, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{model_name} is missing {table} columns {missing}; build them with "
            f"rtt_models.features.build_{table}."
        )


def as_float(column: pd.Series) -> np.ndarray:
    """Return a numeric column as float days or counts, with missing values as NaN."""
    return column.to_numpy(dtype=float, na_value=np.nan)
