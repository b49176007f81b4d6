"""Gradient-boosted regression of log gaps, turned into a gap distribution.

A scikit-learn ``HistGradientBoostingRegressor`` predicts the natural log of
each gap from the covariates known at the purchase that opens it. The spread
around that prediction is the Kaplan-Meier distribution of residuals on
episodes held out of training, so each customer's fresh gap is
``log G_i = f(x_i) + R`` with one residual distribution ``R`` for everyone.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from rtt_models.features import EPISODE_COVARIATES
from rtt_models.models.base import NextPurchaseModel
from rtt_models.models.hazard import observed_covariates
from rtt_models.models.baselines import check_episodes, log_survival_at, product_limit

# Inverse-probability-of-censoring weights are capped at 1 / 0.05 = 20, so a
# few long gaps seen where most episodes were already censored cannot
# dominate the fit.
MIN_CENSORING_SURVIVAL = 0.05

# Minimum completed gaps in the episodes: fewer leave too few rows to both
# train the regressor and estimate the residual distribution.
MIN_COMPLETED_GAPS = 20


class LogGapRegressionModel(NextPurchaseModel):
    """Boosted regression of log gap length on episode covariates, with a residual distribution.

    Parameters
    ----------
    covariates : list of str or None, default None
        Covariate columns read from the episodes at fit time and from the
        features at prediction time. None means
        :data:`rtt_models.features.EPISODE_COVARIATES`, the columns that mean
        the same thing in both frames.
    censoring : {"ipcw", "events_only"}, default "ipcw"
        How the regressor treats censored gaps. ``"ipcw"`` weights each
        completed gap by the inverse probability that a gap of its length
        escapes censoring; ``"events_only"`` fits completed gaps unweighted.
        The residual distribution handles censoring the same way under both.
    max_iter : int, default 200
        Boosting iterations of the regressor.
    learning_rate : float, default 0.1
        Shrinkage of each boosting iteration.
    max_leaf_nodes : int, default 31
        Maximum leaves of each tree.
    residual_fraction : float, default 0.2
        Fraction of the episodes held out of training to measure the
        residual distribution, in (0, 1).
    max_rows : int or None, default 200_000
        Maximum episodes used in total (training plus held out), drawn by
        seeded sampling without replacement. None uses every episode.
    random_state : int, default 0
        Seed of the row sampling, the hold-out split and the regressor.

    Attributes
    ----------
    regressor_ : HistGradientBoostingRegressor
        The fitted regressor of the natural log of gap days.
    covariates_ : list of str
        Covariate columns, in the order the regressor reads them.
    residual_event_times_ : ndarray of float, shape (m,)
        Distinct held-out residuals ``log(gap days) - f(x)`` of completed
        gaps, ascending.
    residual_log_survival_ : ndarray of float, shape (m,)
        Kaplan-Meier ``log P(R > r)`` just after each of
        ``residual_event_times_``.
    n_training_rows_ : int
        Completed gaps the regressor was trained on.
    n_residual_rows_ : int
        Held-out episodes, completed or censored, behind the residual
        distribution.
    feature_names_in_ : list of str
        ``["elapsed_days"]`` followed by ``covariates_``.

    Notes
    -----
    The model is an accelerated failure time model with a boosted location
    and a nonparametric error: ``log G = f(x) + R``, with ``R`` independent
    of the covariates ``x``. The regressor minimises weighted squared error
    of the natural log of completed gaps in days, so ``f`` estimates the
    conditional mean log gap. ``P(R > r)`` is the Kaplan-Meier estimate
    over held-out episodes, where a censored episode of ``d`` days gives
    the censored residual ``log d - f(x)``. Censored episodes of 0 days
    carry no information and are left out. The survival of a fresh gap is
    ``S0_i(x) = P(R > log x - f(x_i))``, and the open gap follows
    ``S0_i(e + t) / S0_i(e)``.

    Beyond the largest completed residual the curve is flat. When the
    longest held-out episodes were censored, ``P(R > r)`` keeps some mass
    there, which stands for customers who do not return within the
    observed range, and a customer who has waited that long gets
    ``S(t) = 1`` (no purchase predicted). The same applies where the estimate
    reaches ``S0_i(e) = 0``.

    Censoring in the regressor: a gap is censored when the cut-off comes
    before the next purchase, so long gaps are censored more often than
    short ones, and a fit on completed gaps only (``"events_only"``) is
    biased toward short gaps. With ``"ipcw"``, a completed gap of length
    ``d`` gets weight ``1 / G(d-)``, where ``G`` is the Kaplan-Meier
    survival of the censoring time (the days from an occasion to the
    cut-off), capped at 20. Remaining biases:

    * ``G`` is one curve for all episodes, but the time to the cut-off
      depends on when the episode started, which correlates with
      covariates such as ``n_occasions``;
    * gaps longer than the longest follow-up are never observed, and the
      weight cap under-weights the longest gaps that are;
    * a shift of ``f`` that is the same for every customer is absorbed by
      the residual distribution, but a bias that depends on the covariates
      is not, and neither is a spread of log gaps that does.
    """

    _parameter_constraints: dict = {
        "covariates": [list, tuple, None],
        "censoring": [StrOptions({"ipcw", "events_only"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left")],
        "residual_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_rows": [Interval(Integral, MIN_COMPLETED_GAPS, None, closed="left"), None],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    needs_episodes = True

    def __init__(
        self,
        covariates: list[str] | None = None,
        censoring: str = "ipcw",
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        residual_fraction: float = 0.2,
        max_rows: int | None = 200_000,
        random_state: int = 0,
    ):
        self.covariates = covariates
        self.censoring = censoring
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.residual_fraction = residual_fraction
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, features: pd.DataFrame | None, episodes: pd.DataFrame | None = None):
        """Fit the regressor on completed gaps and measure its residuals on held-out gaps.

        Parameters
        ----------
        features : DataFrame or None
            Ignored. It is accepted for the shared ``fit(features, episodes)`` call.
        episodes : DataFrame, shape (n_occasions, n_columns)
            Gap episodes with ``duration`` (days), ``event`` (bool) and the
            covariate columns. Rows are put in ``customer_id`` then
            ``occasion_date`` order first, where those columns exist, so
            that the result does not depend on the input row order.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an invalid setting, missing columns, invalid durations or
            fewer than 20 completed gaps.
        """
        self._validate_params()
        covariates = list(EPISODE_COVARIATES if self.covariates is None else self.covariates)
        durations_days, events = check_episodes(episodes, ["duration", "event", *covariates], type(self).__name__)
        # A covariate missing in every episode (spend in a log without amounts)
        # carries no information and breaks the boosting's binning, so it is left out.
        covariates = observed_covariates(episodes, covariates, type(self).__name__)
        covariate_matrix = _covariate_matrix(episodes, covariates)
        rng = check_random_state(self.random_state)

        # A canonical row order makes the sampling and the split independent of the input order.
        order = _canonical_order(episodes)
        durations_days, events, covariate_matrix = durations_days[order], events[order], covariate_matrix[order]
        if events.sum() < MIN_COMPLETED_GAPS:
            raise ValueError(
                f"{type(self).__name__} needs at least {MIN_COMPLETED_GAPS} completed gaps, but the "
                f"episodes contain {int(events.sum())}; use more customers or a later cut-off."
            )

        # Weights come from every episode, before any sampling.
        weights = self._censoring_weights(durations_days, events)

        # Sample episodes, then split them into training and residual rows.
        rows = np.arange(durations_days.size)
        if self.max_rows is not None and rows.size > self.max_rows:
            rows = np.sort(rng.choice(rows, size=self.max_rows, replace=False))
        shuffled = rng.permutation(rows)
        n_residual = max(1, int(round(self.residual_fraction * shuffled.size)))
        residual_rows = np.sort(shuffled[:n_residual])
        training_rows = np.sort(shuffled[n_residual:])
        training_rows = training_rows[events[training_rows]]
        residual_rows = residual_rows[durations_days[residual_rows] > 0]
        if training_rows.size < 2 or not events[residual_rows].any():
            raise ValueError(
                f"{type(self).__name__} drew {training_rows.size} completed gaps for training and "
                f"{int(events[residual_rows].sum())} for the residuals; raise max_rows or move "
                "residual_fraction away from 0 and 1."
            )

        # Fit log gap days on completed training gaps.
        positive = durations_days > 0
        log_days = np.full(durations_days.size, -np.inf)
        log_days[positive] = np.log(durations_days[positive])
        self.regressor_ = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            random_state=self.random_state,
        )
        self.regressor_.fit(
            covariate_matrix[training_rows], log_days[training_rows], sample_weight=weights[training_rows]
        )

        # Kaplan-Meier of held-out residuals, censored where the episode was.
        residuals = log_days[residual_rows] - self.regressor_.predict(covariate_matrix[residual_rows])
        self.residual_event_times_, self.residual_log_survival_ = product_limit(residuals, events[residual_rows])

        self.covariates_ = covariates
        self.n_training_rows_ = int(training_rows.size)
        self.n_residual_rows_ = int(residual_rows.size)
        self.feature_names_in_ = ["elapsed_days", *covariates]
        return self

    def predict_log_gap(self, features: pd.DataFrame) -> pd.Series:
        """Predict the mean natural log of a fresh gap in days for each customer.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features with the covariate columns.

        Returns
        -------
        Series, shape (n_customers,)
            ``f(x_i)``, the regressor's output, indexed by ``customer_id``.
        """
        frame = self._check_features_fitted(features)
        return pd.Series(self._predicted_log_gap(frame), index=frame.index, name="log_gap_days")

    def _check_features_fitted(self, features: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        return self._check_features(features)

    def _censoring_weights(self, durations_days: np.ndarray, events: np.ndarray) -> np.ndarray:
        """Return each episode's weight, ``1 / G(d-)`` under ``"ipcw"`` and 1 otherwise, shape (n_episodes,)."""
        if self.censoring == "events_only":
            return np.ones(durations_days.size)

        # G(d-) multiplies the factors of censoring times strictly before d.
        censoring_times_days, log_censoring_survival = product_limit(durations_days, ~events)
        position = np.searchsorted(censoring_times_days, durations_days, side="left")
        log_before = np.concatenate([np.zeros(1), log_censoring_survival])[position]
        survival_before = np.maximum(np.exp(log_before), MIN_CENSORING_SURVIVAL)
        return 1.0 / survival_before

    def _predicted_log_gap(self, features: pd.DataFrame) -> np.ndarray:
        return self.regressor_.predict(_covariate_matrix(features, self.covariates_))

    def _log_fresh_gap_survival(self, log_gap_days: np.ndarray, x_days: np.ndarray) -> np.ndarray:
        """Return log P(G > x) under the residual distribution, shape (n, k).

        ``x_days`` has shape (n, k) or (n, 1) and ``log_gap_days`` shape (n, 1).
        """
        with np.errstate(divide="ignore"):
            shifted = np.log(x_days) - log_gap_days
        return log_survival_at(self.residual_event_times_, self.residual_log_survival_, shifted)

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        log_gap_days = self._predicted_log_gap(features)[:, None]
        elapsed_days = features["elapsed_days"].to_numpy(dtype=float)[:, None]
        times = np.asarray(times_days, dtype=float)[None, :]

        log_at_elapsed = self._log_fresh_gap_survival(log_gap_days, elapsed_days)
        log_later = self._log_fresh_gap_survival(log_gap_days, elapsed_days + times)
        with np.errstate(invalid="ignore"):
            ratio = np.exp(log_later - log_at_elapsed)
        return np.where(np.isneginf(log_at_elapsed), 1.0, ratio)


def _covariate_matrix(frame: pd.DataFrame, covariates: list[str]) -> np.ndarray:
    """Return the covariates as a float matrix with NaN for missing values, shape (n_rows, n_covariates)."""
    return frame[covariates].to_numpy(dtype=float, na_value=np.nan)


def _canonical_order(episodes: pd.DataFrame) -> np.ndarray:
    """Return row positions sorted by ``customer_id`` then ``occasion_date``, where present."""
    keys = [c for c in ("customer_id", "occasion_date") if c in episodes.columns]
    if not keys:
        return np.arange(len(episodes))
    return episodes[keys].reset_index(drop=True).sort_values(keys, kind="stable").index.to_numpy()
