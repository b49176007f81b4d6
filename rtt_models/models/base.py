"""The next-purchase contract shared by every model family.

A model predicts, for each customer, the distribution of the time from the
cut-off (``as_of``) to the next purchase occasion, conditional on the time
already elapsed since the customer's last occasion. Every family implements
one method, :meth:`NextPurchaseModel._survival_matrix`; this base turns it
into the public outputs:

* :meth:`NextPurchaseModel.predict_survival`: customers x times DataFrame of
  ``S_i(t) = P(no purchase in (as_of, as_of + t])``, t in days;
* :meth:`NextPurchaseModel.predict`: one row per customer with
  ``p_purchase_{h}d``, ``expected_occasions_{h}d``, ``median_days_to_next``,
  ``expected_days_to_next``, ``risk_score`` and ``p_alive``.

Scales: ``p_purchase_{h}d`` is a risk scale (higher buys sooner);
``risk_score`` is a lapse scale (higher is more likely to lapse) and equals
``S_i(H)`` at the largest requested horizon ``H``; the day columns are on a
time scale (higher buys later).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

# Survival curves are searched for their median up to this many days; a
# median beyond it is reported as NaN, meaning "more than half the probability
# mass lies beyond two years": a likely lapsed customer, or a very slow buyer.
# BG/NBD never lets a customer drop out before the first repeat purchase, so
# its NaN medians include one-time buyers with P(alive) = 1.
MEDIAN_SEARCH_LIMIT_DAYS = 730


#: Customers per part when curves are evaluated on a day grid: 30,000
#: customers x about 190 grid days is 45 MB per float64 matrix.
PREDICT_PART_CUSTOMERS = 30_000


#: Largest horizon, in days (ten years). Curves are evaluated daily up to the
#: largest horizon, so a larger one would only spend memory.
MAX_HORIZON_DAYS = 3650


class NextPurchaseModel(BaseEstimator):
    """Base class of every rtt-models next-purchase model.

    Subclasses store settings in ``__init__`` only, learn in ``fit`` (which
    returns ``self`` and sets attributes ending in ``_``) and implement
    :meth:`_survival_matrix`. Subclasses that can compute the expected number
    of occasions in closed form override :meth:`_expected_occasions`; the
    default derives it from the gap distribution by renewal on a day grid.

    Attributes set by ``fit`` in every subclass
    -------------------------------------------
    feature_names_in_ : list of str
        Feature columns the model reads at prediction time.
    """

    #: Whether the family defines P(alive); families that do override
    #: :meth:`_p_alive`.
    defines_p_alive = False

    #: Whether ``fit`` needs gap episodes besides per-customer features.
    needs_episodes = False

    #: Whether a customer's curve depends on nothing but the values of
    #: ``feature_names_in_``; ``predict`` then evaluates each distinct row once.
    curve_depends_only_on_features_in = False

    # ------------------------------------------------------------------ API

    def fit(self, features: pd.DataFrame, episodes: pd.DataFrame | None = None):
        """Fit the model.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer RTT features at the calibration cut-off, as
            :func:`rtt_models.features.build_features` returns them.
        episodes : DataFrame, shape (n_occasions, n_columns), optional
            Gap episodes at the same cut-off, as
            :func:`rtt_models.features.build_episodes` returns them. Required
            by the families whose ``needs_episodes`` is true.

        Returns
        -------
        self
        """
        raise NotImplementedError

    def predict_survival(self, features: pd.DataFrame, times: Sequence[float]) -> pd.DataFrame:
        """Predict each customer's probability of no purchase up to each time.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the scoring cut-off, indexed by
            ``customer_id`` or with a ``customer_id`` column.
        times : sequence of float, length n_times
            Days after the cut-off, each >= 0.

        Returns
        -------
        DataFrame, shape (n_customers, n_times)
            ``S_i(t)``, conditional on each customer's ``elapsed_days``,
            indexed by ``customer_id``, one column per time. Values lie in
            [0, 1], equal 1 at t = 0 and do not increase with t.
        """
        check_is_fitted(self)
        frame = self._check_features(features)
        times_days = _check_times(times)
        survival = self._finished_survival(frame, times_days)
        return pd.DataFrame(survival, index=frame.index, columns=pd.Index(times_days, name="days"))

    def predict(self, features: pd.DataFrame, horizons: Sequence[float] = (30, 90)) -> pd.DataFrame:
        """Predict next-purchase summaries per customer.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the scoring cut-off.
        horizons : sequence of int, default (30, 90)
            Horizons in whole days after the cut-off, each >= 1.

        Returns
        -------
        DataFrame, shape (n_customers, 2 * n_horizons + 4)
            Indexed by ``customer_id``, with columns

            * ``p_purchase_{h}d``: P(at least one purchase within h days);
            * ``expected_occasions_{h}d``: expected purchase occasions within
              h days;
            * ``median_days_to_next``: median days to the next purchase, NaN
              when it lies beyond 730 days;
            * ``expected_days_to_next``: expected days to the next purchase
              restricted to the largest horizon H, that is E[min(T, H)];
            * ``risk_score``: lapse risk ``S(H)``, higher means more likely
              to lapse;
            * ``p_alive``: P(customer has not churned) for families that
              define it, NaN otherwise.
        """
        check_is_fitted(self)
        frame = self._check_features(features)
        horizon_days = _check_horizons(horizons)
        summary = self._closed_form_summary(frame, horizon_days)
        if summary is None and self.curve_depends_only_on_features_in:
            summary = self._summary_of_distinct_rows(frame, horizon_days)
        if summary is None:
            summary = self._summary_in_parts(frame, horizon_days)

        # Columns are gathered first: inserting hundreds of horizons one by one
        # fragments the DataFrame.
        expected = summary.get("expected_occasions")
        if expected is None:
            expected = self._expected_occasions(frame, horizon_days)
        p_alive = summary.get("p_alive")
        if p_alive is None:
            p_alive = self._p_alive(frame) if self.defines_p_alive else np.full(len(frame), np.nan)
        columns = {f"p_purchase_{h}d": summary["p_purchase"][:, j] for j, h in enumerate(horizon_days)}
        columns |= {f"expected_occasions_{h}d": expected[:, j] for j, h in enumerate(horizon_days)}
        columns["median_days_to_next"] = summary["median_days"]
        columns["expected_days_to_next"] = summary["restricted_mean_days"]
        columns["risk_score"] = 1.0 - summary["p_purchase"][:, -1]
        columns["p_alive"] = p_alive
        return pd.DataFrame(columns, index=frame.index)

    def _summary_on_grid(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray]:
        """Derive the summaries from one survival evaluation on a day grid.

        The grid is daily up to the largest horizon, which gives the horizon
        probabilities and the restricted mean (trapezoid rule), then weekly
        to the median search limit.
        """
        largest = int(horizon_days.max())
        grid = _prediction_grid(largest)
        survival = self._finished_survival(frame, grid)
        return {
            "p_purchase": 1.0 - survival[:, horizon_days],
            "median_days": _median_from_grid(survival, grid),
            "restricted_mean_days": np.trapezoid(survival[:, : largest + 1], grid[: largest + 1], axis=1),
        }

    def _summary_in_parts(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray]:
        """Evaluate the grid summaries, counts and P(alive) on parts of customers, one thread per core.

        A day grid of a million customers takes 1.5 GB per matrix; parts of
        :data:`PREDICT_PART_CUSTOMERS` keep each below 50 MB, and numpy
        releases the GIL in the array work, so the parts run in parallel.
        """
        from rtt_models.data.threads import map_parts

        starts = range(0, len(frame), PREDICT_PART_CUSTOMERS)
        parts = [frame.iloc[start : start + PREDICT_PART_CUSTOMERS] for start in starts]
        results = map_parts(lambda part: self._grid_summary_with_counts(part, horizon_days), parts)
        if len(results) == 1:
            return results[0]
        return {name: np.concatenate([result[name] for result in results]) for name in results[0]}

    def _summary_of_distinct_rows(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray] | None:
        """Evaluate the grid summaries once per distinct feature row, or None when most rows differ.

        A Kaplan-Meier curve depends on the elapsed days only, so a million
        customers share a few hundred curves.
        """
        first, inverse = distinct_row_index(*(frame[column].to_numpy() for column in self._required_columns()))
        if 2 * len(first) > len(frame):
            return None
        summary = self._grid_summary_with_counts(frame.iloc[first], horizon_days)
        return {name: values[inverse] for name, values in summary.items()}

    def _grid_summary_with_counts(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray]:
        """Return the grid summaries with the expected occasions and, where defined, P(alive)."""
        summary = self._summary_on_grid(frame, horizon_days)
        summary["expected_occasions"] = self._expected_occasions(frame, horizon_days)
        if self.defines_p_alive:
            summary["p_alive"] = self._p_alive(frame)
        return summary

    def _closed_form_summary(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray] | None:
        """Closed-form summaries, or None to evaluate the curve on a grid.

        Families whose survival curve has a closed-form median and integral
        return a dict with ``p_purchase`` (n_customers, n_horizons),
        ``median_days`` (NaN beyond the median search limit) and
        ``restricted_mean_days`` up to the largest horizon, all in days.
        They may add ``expected_occasions`` (n_customers, n_horizons) and
        ``p_alive`` (n_customers,) when computing them alongside is cheaper
        than the separate hooks.
        """
        return None

    # ------------------------------------------------------ for subclasses

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return S_i(t) conditional on elapsed time, shape (n_customers, n_times)."""
        raise NotImplementedError

    def _gap_survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return the survival of a fresh gap that starts at a purchase.

        The default evaluates the conditional curve with ``elapsed_days`` set
        to 0 and every other feature unchanged, shape (n_customers, n_times).
        """
        fresh = features.copy()
        fresh["elapsed_days"] = 0.0
        if "overdue_ratio" in fresh.columns:
            fresh["overdue_ratio"] = 0.0
        return self._survival_matrix(fresh, times_days)

    def _expected_occasions(self, features: pd.DataFrame, horizon_days: np.ndarray) -> np.ndarray:
        """Expected occasions within each horizon, shape (n_customers, n_horizons).

        Renewal on a day grid: the first purchase follows the conditional
        curve and later gaps follow the fresh-gap curve of the same customer.
        With ``f1`` and ``g`` the daily probability masses, the expected count
        by day t is ``m[t] = F1[t] + sum_s f1[s] * M[t - s]`` where ``M`` is
        the renewal function of ``g``, ``M[t] = G[t] + sum_s g[s] * M[t - s]``.
        """
        largest = int(horizon_days.max())
        grid = np.arange(0, largest + 1, dtype=float)
        first = 1.0 - self._finished_survival(features, grid)
        gap = 1.0 - _finish_curve(self._gap_survival_matrix(features, grid))
        f1 = np.diff(first, axis=1, prepend=0.0)
        g = np.diff(gap, axis=1, prepend=0.0)

        # M[0] = 0 because a gap of zero days does not exist on a day grid.
        # `reversed_renewal[:, largest - j]` contains M[j], so the terms M[t - s]
        # for s = 1..t form one contiguous slice.
        reversed_renewal = np.zeros_like(gap)
        count = np.zeros_like(first)
        for t in range(1, largest + 1):
            previous = reversed_renewal[:, largest - t + 1 :]
            reversed_renewal[:, largest - t] = gap[:, t] + np.einsum("ij,ij->i", g[:, 1 : t + 1], previous)
            count[:, t] = first[:, t] + np.einsum("ij,ij->i", f1[:, 1 : t + 1], previous)
        return count[:, horizon_days]

    def _p_alive(self, features: pd.DataFrame) -> np.ndarray:
        """P(alive) per customer, shape (n_customers,), for families that define it."""
        raise NotImplementedError

    #: Feature columns every family reads; subclasses extend it.
    required_features: tuple[str, ...] = ("elapsed_days",)

    # ------------------------------------------------------------- helpers

    def _required_columns(self) -> list[str]:
        return list(getattr(self, "feature_names_in_", self.required_features))

    def _check_features(self, features: pd.DataFrame) -> pd.DataFrame:
        """Validate prediction input and index it by customer_id."""
        if not isinstance(features, pd.DataFrame):
            raise TypeError(
                f"{type(self).__name__} expects a pandas DataFrame of per-customer features, "
                f"got {type(features).__name__}; build one with rtt_models.features.build_features."
            )
        frame = features
        if "customer_id" in frame.columns:
            frame = frame.set_index("customer_id")
        missing = [c for c in self._required_columns() if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{type(self).__name__} is missing feature columns {missing}; "
                "pass the output of rtt_models.features.build_features."
            )
        if frame.index.has_duplicates:
            duplicated = frame.index[frame.index.duplicated()].unique()[:5].tolist()
            raise ValueError(
                f"features have duplicated customer_id values, for example {duplicated}; "
                "pass one row per customer."
            )
        elapsed = frame["elapsed_days"].to_numpy(dtype=float)
        bad = ~np.isfinite(elapsed) | (elapsed < 0)
        if bad.any():
            examples = frame.index[bad][:5].tolist()
            raise ValueError(
                f"elapsed_days must be finite and >= 0, but {int(bad.sum())} customers are not, "
                f"for example {examples}; rebuild the features at a cut-off on or after each "
                "customer's last purchase."
            )
        return frame

    def _finished_survival(self, frame: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        return _finish_curve(self._survival_matrix(frame, times_days), times_days)


def distinct_row_index(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return one row index per distinct row of equal-length columns, and each row's distinct-row number.

    Rows are hashed column by column (``pandas.factorize``), which is about
    fifteen times faster than sorting them with ``np.unique(axis=0)`` for a
    million rows. Distinct rows are numbered in order of first appearance.

    Returns
    -------
    first : ndarray of int, shape (k,)
        Index of the first row of each of the k distinct rows.
    inverse : ndarray of int, shape (n,)
        Number of each row's distinct row, in 0..k-1.
    """
    inverse = pd.factorize(columns[0], use_na_sentinel=False)[0]
    for column in columns[1:]:
        column_codes, uniques = pd.factorize(column, use_na_sentinel=False)
        inverse = pd.factorize(inverse * len(uniques) + column_codes)[0]
    first = np.empty(int(inverse.max()) + 1 if inverse.size else 0, dtype=np.intp)
    first[inverse[::-1]] = np.arange(inverse.size)[::-1]
    return first, inverse


def _prediction_grid(largest_horizon: int) -> np.ndarray:
    """Days 0..largest_horizon, then every 7 days up to the median search limit."""
    daily = np.arange(0, largest_horizon + 1, dtype=float)
    weekly = np.arange(largest_horizon + 7, MEDIAN_SEARCH_LIMIT_DAYS, 7, dtype=float)
    beyond = np.append(weekly, MEDIAN_SEARCH_LIMIT_DAYS)
    return np.concatenate([daily, beyond[beyond > largest_horizon]])


def _finish_curve(survival: np.ndarray, times_days: np.ndarray | None = None) -> np.ndarray:
    """Clip to [0, 1], set S(0) = 1 and remove upward steps from rounding.

    NaN becomes 1 (no evidence of a purchase). One copy is made, so a
    family may return a view of its own tables; the other steps work on it
    in place, because the curves of millions of customers are large.
    """
    survival = np.nan_to_num(np.asarray(survival, dtype=float), copy=True, nan=1.0, posinf=1.0, neginf=0.0)
    np.clip(survival, 0.0, 1.0, out=survival)
    if times_days is None:
        return np.minimum.accumulate(survival, axis=1, out=survival)
    times_days = np.asarray(times_days)
    survival[:, times_days == 0] = 1.0
    if np.all(np.diff(times_days) >= 0):
        return np.minimum.accumulate(survival, axis=1, out=survival)
    order = np.argsort(times_days, kind="stable")
    survival[:, order] = np.minimum.accumulate(survival[:, order], axis=1)
    return survival


def _check_times(times: Sequence[float]) -> np.ndarray:
    times_days = np.atleast_1d(np.asarray(times, dtype=float))
    if times_days.ndim != 1 or times_days.size == 0:
        raise ValueError(f"times must be a non-empty 1-D sequence of days, got {times!r}.")
    if not np.all(np.isfinite(times_days)) or np.any(times_days < 0):
        raise ValueError(f"times must be finite days >= 0, got {times_days.tolist()}.")
    return times_days


def _check_horizons(horizons: Sequence[float]) -> np.ndarray:
    values = np.atleast_1d(np.asarray(horizons, dtype=float))
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 1) or np.any(values != np.round(values)):
        raise ValueError(f"horizons must be whole days >= 1, for example (30, 90); got {list(np.atleast_1d(horizons))}.")
    if np.any(values > MAX_HORIZON_DAYS):
        raise ValueError(
            f"horizons must be at most {MAX_HORIZON_DAYS} days, because curves are evaluated daily up to the "
            f"largest one; got {int(values.max())}."
        )
    return np.unique(values.astype(int))


def _median_from_grid(survival: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """First time S(t) <= 0.5, linearly interpolated between grid days; NaN if never."""
    below = survival <= 0.5
    reached = below.any(axis=1)
    first = np.where(reached, below.argmax(axis=1), 0)
    rows = np.arange(survival.shape[0])
    previous = np.maximum(first - 1, 0)
    s_before = survival[rows, previous]
    s_after = survival[rows, first]
    span = s_before - s_after
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(span > 0, (s_before - 0.5) / span, 0.0)
    median = grid[previous] + fraction * (grid[first] - grid[previous])
    median[first == 0] = 0.0
    return np.where(reached, median, np.nan)

