"""Gradient-boosted discrete-time hazard of gaps (``gb_hazard``).

Each gap episode is expanded into person-period rows, one per time bin in
which the gap was still open at the bin start. A bin is the interval
``(a_k, a_{k+1}]`` of days since the occasion that opened the gap. A row is
labelled 1 if the next purchase fell in that bin. A
:class:`~sklearn.ensemble.HistGradientBoostingClassifier` learns the hazard

    h_k(x) = P(purchase in (a_k, a_{k+1}] | no purchase by a_k, x)

from the covariates x and the bin start ``a_k`` (days). The gap survival at
a bin edge is the product of ``1 - h_j`` over the earlier bins, and the
next-purchase curve of a customer whose open gap has lasted e days is
``S(e + t) / S(e)``.
"""

from __future__ import annotations

import logging

import numbers

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from rtt_models.models.base import NextPurchaseModel
from rtt_models.models.episodes import check_covariates, check_episodes, check_prediction_columns

logger = logging.getLogger("rtt_models")

#: Default bin edges in days: daily to 14, weekly to 91, then every 28 days
#: to 343 and a last edge at 365. Beyond it, periods as wide as the last
#: finite bin (22 days) repeat with one shared hazard.
DEFAULT_BIN_EDGES_DAYS: tuple[int, ...] = (
    tuple(range(0, 15)) + tuple(range(21, 92, 7)) + tuple(range(119, 344, 28)) + (365,)
)

# Customers scored per classifier call; bounds memory at about
# chunk x n_bins x n_covariates floats.
_CUSTOMERS_PER_CHUNK = 20_000

# Hazards are clipped below 1 so that log(1 - h) stays finite.
_MAX_HAZARD = 1.0 - 1e-9


def person_period_rows(durations_days: np.ndarray, events: np.ndarray, bin_edges_days: np.ndarray) -> dict:
    """Expand gap episodes into person-period rows.

    Parameters
    ----------
    durations_days : ndarray, shape (n_episodes,)
        Gap length, or time to censoring, in days (> 0).
    events : ndarray of bool, shape (n_episodes,)
        Whether the gap ended with a purchase.
    bin_edges_days : ndarray, shape (n_edges,)
        Increasing bin edges starting at 0. After the last edge, periods as
        wide as the last finite bin repeat without end.

    Returns
    -------
    dict of ndarray, each of shape (n_rows,)
        ``episode`` (row position of the episode), ``bin_start_days`` (the
        classifier's time feature: ``a_k``, or the last edge for every
        repeated period), ``label`` (1.0 where the purchase fell in the bin)
        and ``weight``. The weight is 1 except in the bin where a censored
        gap ends, where it is the observed fraction of the bin
        ``(d - a_k) / (a_{k+1} - a_k)`` (an actuarial adjustment).
    """
    edges = np.asarray(bin_edges_days, dtype=float)
    n_finite = len(edges) - 1
    last_edge = edges[-1]
    period = edges[-1] - edges[-2]
    durations = np.asarray(durations_days, dtype=float)

    # Rows per episode: finite bins that start before d, plus repeated periods.
    in_finite = np.searchsorted(edges[:-1], durations, side="left")
    in_open = np.where(durations > last_edge, np.ceil((durations - last_edge) / period), 0).astype(int)
    counts = in_finite + in_open
    episode = np.repeat(np.arange(len(durations)), counts)
    position = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)

    # Start and end of each row's bin; repeated periods share the last edge as feature.
    finite = position < n_finite
    finite_position = np.minimum(position, n_finite - 1)
    start = np.where(finite, edges[finite_position], last_edge + (position - n_finite) * period)
    end = np.where(finite, edges[finite_position + 1], start + period)
    bin_start = np.where(finite, start, last_edge)

    # Only the last row of an episode can hold the purchase or the censoring.
    last = position == np.repeat(counts, counts) - 1
    d = durations[episode]
    event = np.asarray(events, dtype=bool)[episode]
    label = (last & event).astype(float)
    weight = np.where(last & ~event, (d - start) / (end - start), 1.0)
    return {"episode": episode, "bin_start_days": bin_start, "label": label, "weight": weight}


class GradientBoostedHazardModel(NextPurchaseModel):
    """Discrete-time hazard of gaps fitted by gradient boosting (``gb_hazard``).

    Parameters
    ----------
    covariates : list of str or None, default None
        Episode and feature columns given to the classifier besides the bin
        start; None means :data:`rtt_models.features.EPISODE_COVARIATES`. NaN
        values are handled natively by the boosting trees.
    bin_edges_days : sequence of float or None, default None
        Increasing bin edges in days, starting at 0, at least two edges.
        None means :data:`DEFAULT_BIN_EDGES_DAYS`.
    max_person_period_rows : int, default 300_000
        Maximum number of person-period rows used in fitting. Larger
        expansions are sampled without replacement, seeded by
        ``random_state``. Rows with a purchase are kept at the rate
        ``min(1, max_person_period_rows / 2 / n_purchase_rows)`` and the other
        rows at the rate that fills the bound. Each sampled row is weighted by
        the inverse of its rate, so the weighted likelihood, and with it the
        fitted hazard, stays unbiased.
    max_iter : int, default 200
        Maximum boosting iterations; early stopping on a 10% validation
        split applies when there are more than 10,000 rows.
    learning_rate : float, default 0.1
        Boosting learning rate.
    max_leaf_nodes : int, default 31
        Maximum leaves per tree.
    random_state : int or None, default 0
        Seed of the row sampling and of the classifier.

    Attributes
    ----------
    covariates_ : list of str
        Covariate columns read from episodes and features.
    bin_edges_ : ndarray, shape (n_edges,)
        Bin edges in days.
    classifier_ : HistGradientBoostingClassifier
        Fitted hazard classifier; its features are ``covariates_`` followed
        by the bin start in days.
    n_zero_duration_dropped_ : int
        Episodes of duration 0 (censored on the cut-off day), which give no
        person-period row.
    n_person_period_rows_total_ : int
        Rows of the full expansion.
    n_person_period_rows_ : int
        Rows used in fitting, at most ``max_person_period_rows``.
    sampling_rates_ : dict of str to float
        Sampling rate of rows with (``"purchase"``) and without
        (``"no_purchase"``) a purchase.
    feature_names_in_ : list of str
        ``covariates_`` plus ``elapsed_days``.

    Notes
    -----
    * Between bin edges the hazard rate is taken as constant, so log S is
      interpolated linearly (geometric interpolation of S). The same rule
      gives the fractional first bin of a customer whose elapsed time falls
      inside a bin, and the value at any t that is not an edge.
    * After the last edge the hazard per period (of the last finite bin's
      width) is one learned value, so the tail is geometric.
    * A censored gap counts in the bin where it ends with the observed
      fraction of that bin as weight; this assumes censoring is uniform
      within a bin.
    * Episodes of one customer are treated as independent rows.
    """

    needs_episodes = True

    def __init__(
        self,
        covariates=None,
        bin_edges_days=None,
        max_person_period_rows=300_000,
        max_iter=200,
        learning_rate=0.1,
        max_leaf_nodes=31,
        random_state=0,
    ):
        self.covariates = covariates
        self.bin_edges_days = bin_edges_days
        self.max_person_period_rows = max_person_period_rows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    def _validate_settings(self) -> tuple[list[str], np.ndarray]:
        """Check every setting; return the covariates and the bin edges in days."""
        name = type(self).__name__
        edges = np.asarray(DEFAULT_BIN_EDGES_DAYS if self.bin_edges_days is None else self.bin_edges_days, dtype=float)
        if edges.ndim != 1 or len(edges) < 2 or edges[0] != 0 or not np.all(np.diff(edges) > 0) or not np.all(np.isfinite(edges)):
            raise ValueError(
                f"{name}: bin_edges_days must be finite, strictly increasing days starting at 0 with at least "
                f"two edges, got {self.bin_edges_days!r}; for example (0, 1, 2, 7, 14, 28)."
            )
        for setting, minimum in (("max_person_period_rows", 100), ("max_iter", 1), ("max_leaf_nodes", 2)):
            value = getattr(self, setting)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name}: {setting} must be an integer >= {minimum}, got {value!r}.")
        if not isinstance(self.learning_rate, numbers.Real) or not 0 < self.learning_rate <= 1:
            raise ValueError(f"{name}: learning_rate must be a number in (0, 1], got {self.learning_rate!r}.")
        if self.random_state is not None and (
            isinstance(self.random_state, bool) or not isinstance(self.random_state, numbers.Integral)
        ):
            raise ValueError(f"{name}: random_state must be an int or None, got {self.random_state!r}.")
        return check_covariates(self.covariates, name), edges

    # ------------------------------------------------------------------ fit

    def fit(self, features: pd.DataFrame | None, episodes: pd.DataFrame | None = None):
        """Fit the hazard classifier on person-period rows of gap episodes.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features) or None
            Per-customer features at the same cut-off. They are not used for
            fitting. When given, they must contain the covariates.
        episodes : DataFrame, shape (n_episodes, n_columns)
            Gap episodes from :func:`rtt_models.features.build_episodes`,
            with ``duration`` (days), ``event`` and the covariates.

        Returns
        -------
        self
        """
        covariates, edges = self._validate_settings()
        name = type(self).__name__
        frame = check_episodes(episodes, covariates, name)
        check_prediction_columns(features, covariates, name)
        durations = frame["duration"].to_numpy()
        self.n_zero_duration_dropped_ = int((durations <= 0).sum())

        # Expand to person-period rows; duration-0 episodes yield none.
        rows = person_period_rows(durations, frame["event"].to_numpy(), edges)
        self.n_person_period_rows_total_ = len(rows["label"])
        if not (rows["label"] > 0).any():
            raise ValueError(
                f"{name} needs episodes with at least one observed next purchase, got none in "
                f"{len(frame)} episodes; build episodes over a longer history."
            )

        # Bound the rows, keeping purchase rows preferentially and reweighting.
        keep, row_weight = self._sample_rows(rows["label"])
        self.n_person_period_rows_ = len(keep)

        # A covariate missing in every episode (spend in a log without amounts)
        # carries no information and breaks the boosting's binning, so it is left out.
        covariates = observed_covariates(frame, covariates, name)
        covariate_values = frame[covariates].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
        x = np.column_stack([covariate_values[rows["episode"][keep]], rows["bin_start_days"][keep]])
        classifier = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            random_state=self.random_state,
        )
        classifier.fit(x, rows["label"][keep], sample_weight=rows["weight"][keep] * row_weight)

        self.covariates_ = covariates
        self.bin_edges_ = edges
        self.classifier_ = classifier
        self.feature_names_in_ = covariates + ["elapsed_days"]
        return self

    def _sample_rows(self, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return sorted positions of the rows to fit and their inverse-rate weights."""
        bound = self.max_person_period_rows
        if len(label) <= bound:
            self.sampling_rates_ = {"purchase": 1.0, "no_purchase": 1.0}
            return np.arange(len(label)), np.ones(len(label))

        rng = np.random.default_rng(self.random_state)
        purchase = np.flatnonzero(label > 0)
        no_purchase = np.flatnonzero(label == 0)
        n_purchase = min(len(purchase), bound // 2)
        n_no_purchase = bound - n_purchase
        chosen_purchase = rng.choice(purchase, size=n_purchase, replace=False)
        chosen_no_purchase = rng.choice(no_purchase, size=n_no_purchase, replace=False)
        rate_purchase = n_purchase / len(purchase)
        rate_no_purchase = n_no_purchase / len(no_purchase)
        self.sampling_rates_ = {"purchase": rate_purchase, "no_purchase": rate_no_purchase}

        keep = np.sort(np.concatenate([chosen_purchase, chosen_no_purchase]))
        weight = np.where(label[keep] > 0, 1.0 / rate_purchase, 1.0 / rate_no_purchase)
        return keep, weight

    # ------------------------------------------------------------ predict

    def predict_bin_hazards(self, features: pd.DataFrame) -> pd.DataFrame:
        """Predict each customer's hazard in every bin of a fresh gap.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features indexed by ``customer_id``.

        Returns
        -------
        DataFrame, shape (n_customers, n_edges)
            ``h_k``, the probability of a purchase in bin k given none
            before it. Columns are the bin starts in days. The last column is
            the hazard per repeated period after the last edge.
        """
        check_is_fitted(self)
        frame = self._check_features(features)
        hazards = self._bin_hazards(frame)
        return pd.DataFrame(hazards, index=frame.index, columns=pd.Index(self.bin_edges_, name="bin_start_days"))

    def _bin_hazards(self, frame: pd.DataFrame) -> np.ndarray:
        covariate_values = frame[self.covariates_].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
        n_customers, n_bins = len(frame), len(self.bin_edges_)
        hazards = np.empty((n_customers, n_bins))
        for first in range(0, n_customers, _CUSTOMERS_PER_CHUNK):
            block = covariate_values[first : first + _CUSTOMERS_PER_CHUNK]
            x = np.column_stack([np.repeat(block, n_bins, axis=0), np.tile(self.bin_edges_, len(block))])
            probability = self.classifier_.predict_proba(x)[:, 1]
            hazards[first : first + len(block)] = probability.reshape(len(block), n_bins)
        return np.clip(hazards, 0.0, _MAX_HAZARD)

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return S(e + t) / S(e), shape (n_customers, n_times), with geometric interpolation."""
        log_keep = np.log1p(-self._bin_hazards(features))
        elapsed = features["elapsed_days"].to_numpy(dtype=float)[:, None]
        times = np.asarray(times_days, dtype=float)[None, :]
        log_ratio = _log_survival_at(log_keep, self.bin_edges_, elapsed + times) - _log_survival_at(
            log_keep, self.bin_edges_, elapsed
        )
        return np.exp(np.minimum(log_ratio, 0.0))


def _log_survival_at(log_keep: np.ndarray, edges: np.ndarray, at_days: np.ndarray) -> np.ndarray:
    """Evaluate log S of each customer at the given days.

    ``log_keep`` is log(1 - h), shape (n_customers, n_edges), and ``at_days``
    has shape (n_customers, n_times) or (1, n_times). log S is linear within
    a bin (a constant hazard rate there), and after the last edge it keeps
    the slope of the repeated period.
    """
    widths = np.append(np.diff(edges), edges[-1] - edges[-2])
    log_at_edges = np.concatenate([np.zeros((len(log_keep), 1)), np.cumsum(log_keep[:, :-1], axis=1)], axis=1)
    at_days = np.broadcast_to(at_days, (len(log_keep), at_days.shape[1]))
    k = np.clip(np.searchsorted(edges, at_days, side="right") - 1, 0, len(edges) - 1)
    rows = np.arange(len(log_keep))[:, None]
    fraction = (at_days - edges[k]) / widths[k]
    return log_at_edges[rows, k] + fraction * log_keep[rows, k]


def observed_covariates(frame: pd.DataFrame, covariates: list[str], name: str) -> list[str]:
    """Return the covariates with at least one value, logging the ones left out."""
    empty = [column for column in covariates if frame[column].isna().all()]
    if empty:
        logger.info("%s leaves out covariates with no values in the episodes: %s", name, empty)
    return [column for column in covariates if column not in empty]
