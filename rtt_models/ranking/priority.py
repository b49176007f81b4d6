"""At-risk ranking: lapse risk, value at stake, tiers, reasons and dates.

Input: a scores table (one row per customer, as ``rtt score`` writes it or as
:meth:`NextPurchaseModel.predict` returns it) and the feature table of the
same cut-off (:func:`rtt_models.features.build_features`). Both are indexed
by ``customer_id`` or carry it as a column.

Definitions, for a horizon of ``h`` days after the cut-off:

``lapse_risk``
    ``1 - p_purchase_{h}d``: the probability of no purchase within ``h``
    days, ``S(h)`` of the model. Higher means more likely to lapse.
``spend_per_occasion``
    ``spend_mean_repeat`` (mean net amount of repeat occasions), or
    ``spend_mean`` for a one-time buyer, who has no repeat occasion.
``occasions_if_active``
    Occasions the customer makes in ``h`` days at their usual rhythm. With
    ``value_method="usual_rate"`` (default) it is ``h / m``, the long-run
    renewal rate, where ``m`` is the customer's mean gap shrunk toward the
    population's: ``m = (x * gap_mean_days + k * M) / (x + k)``, with ``x``
    the customer's repeat gaps (``frequency``), ``M`` the mean of every
    repeat gap in the table and ``k`` = :data:`PRIOR_GAPS`. A one-time buyer
    gets ``M``; two purchases a day apart do not make a daily buyer. With
    ``value_method="model"`` it is
    ``expected_occasions_{h}d / p_purchase_{h}d``, the model's expected
    count given at least one purchase (1 where the model gives
    ``p_purchase_{h}d = 0``).
``spend_if_active``
    ``spend_per_occasion * occasions_if_active``: the spend of ``h`` days.
``value_at_stake``
    ``spend_if_active * lapse_risk``: the expected spend lost over ``h`` days.
    It is negative for a customer whose refunds exceed their purchases, and
    NaN when the log has no amounts.
priority
    The ranking key. ``rank_by="priority"`` sorts by ``value_at_stake``
    (lapse risk times the customer's spend over the horizon), then by
    ``lapse_risk``; ``rank_by="risk"`` sorts by ``lapse_risk``, then by
    ``value_at_stake``. Remaining ties go to the smaller ``customer_id``, so
    the order never depends on the row order of the inputs.
usual gap
    ``gap_median_days``, the customer's median gap; ``overdue_ratio`` is
    ``elapsed_days / gap_median_days``, as in the features.
``overdue_from_date``
    The first day on which elapsed days exceed ``overdue_factor`` times the
    usual gap: last purchase plus ``floor(overdue_factor * usual gap) + 1``
    days. A one-time buyer gets the median usual gap of the repeat buyers in
    the table.
``contact_by_date``
    ``overdue_from_date - lead_days``, but no earlier than the day after the
    cut-off: the last day to reach the customer before the expected lapse.
``expected_next_purchase_date``
    Taken from the scores when they have it; otherwise the cut-off plus
    ``median_days_to_next`` rounded up to whole days (empty where the
    median is beyond the model's search limit).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtt_models.features import FEATURE_COLUMNS
from rtt_models.ranking.cutoff import check_scores_cutoff, resolve_as_of

logger = logging.getLogger("rtt_models")

#: Tiers from the most to the least urgent.
TIERS: tuple[str, ...] = ("overdue", "at risk", "due soon", "active")

VALUE_METHODS: tuple[str, ...] = ("usual_rate", "model")
RANK_BY: tuple[str, ...] = ("priority", "risk")

#: Weight of the population mean gap, in pseudo-gaps, in each customer's
#: mean gap for ``value_method="usual_rate"``.
PRIOR_GAPS = 2.0

#: Feature columns the ranking reads.
REQUIRED_FEATURES: tuple[str, ...] = (
    "n_occasions",
    "frequency",
    "elapsed_days",
    "gap_mean_days",
    "gap_median_days",
    "spend_mean",
    "spend_mean_repeat",
    "last_purchase_date",
)

#: Output columns before the pass-through (segment) columns of the features.
RANKED_COLUMNS: tuple[str, ...] = (
    "rank",
    "tier",
    "reason",
    "lapse_risk",
    "value_at_stake",
    "spend_if_active",
    "expected_next_purchase_date",
    "contact_by_date",
    "overdue_from_date",
    "elapsed_days",
    "usual_gap_days",
    "overdue_ratio",
    "n_occasions",
    "horizon_days",
)


@dataclass(frozen=True)
class TierThresholds:
    """Thresholds that assign each customer to one of :data:`TIERS`.

    The first rule that applies sets the tier:

    1. ``overdue``: ``overdue_ratio > overdue_factor`` and
       ``lapse_risk >= at_risk``;
    2. ``at risk``: ``lapse_risk >= at_risk``;
    3. ``due soon``: the expected next purchase falls within
       ``due_soon_days`` days after the cut-off;
    4. ``active``: every other customer.

    A one-time buyer has no usual gap and so is never ``overdue``.

    Parameters
    ----------
    overdue_factor : float, default 2.0
        Elapsed days, as a multiple of the usual gap, beyond which a
        customer is overdue. Also sets ``overdue_from_date``.
    at_risk : float, default 0.5
        Lapse risk at the horizon, in [0, 1], from which a customer is at risk.
    due_soon_days : int, default 14
        Days after the cut-off within which an expected next purchase is
        due soon.
    """

    overdue_factor: float = 2.0
    at_risk: float = 0.5
    due_soon_days: int = 14

    def __post_init__(self) -> None:
        if not (np.isfinite(self.overdue_factor) and self.overdue_factor > 0):
            raise ValueError(
                f"overdue_factor must be a positive multiple of the usual gap, got {self.overdue_factor!r}."
            )
        if not 0.0 <= self.at_risk <= 1.0:
            raise ValueError(f"at_risk must be a lapse risk in [0, 1], got {self.at_risk!r}.")
        if self.due_soon_days < 0:
            raise ValueError(f"due_soon_days must be >= 0 days, got {self.due_soon_days!r}.")


def rank_customers(
    scores: pd.DataFrame,
    features: pd.DataFrame,
    horizon_days: int,
    *,
    as_of=None,
    value_method: str = "usual_rate",
    rank_by: str = "priority",
    tiers: TierThresholds | None = None,
    lead_days: int = 7,
) -> pd.DataFrame:
    """Rank customers for intervention by lapse risk and value at stake.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, n_scores)
        Per-customer scores with ``p_purchase_{horizon_days}d``; optionally
        ``expected_next_purchase_date``, ``median_days_to_next`` and
        ``expected_occasions_{horizon_days}d``.
    features : DataFrame, shape (n_customers, n_features)
        Features at the same cut-off, with the columns in
        :data:`REQUIRED_FEATURES`; other columns that are not RTT features
        (segments, channels) are carried to the output.
    horizon_days : int
        Horizon ``h`` in days after the cut-off; the scores need its
        ``p_purchase_{h}d`` column.
    as_of : str, date or Timestamp, optional
        The cut-off day of the features. None reads it from
        ``features.attrs["as_of"]`` or, for features read from a file, from
        ``last_purchase_date + elapsed_days``, which is the same day for
        every customer.
    value_method : {"usual_rate", "model"}, default "usual_rate"
        How ``occasions_if_active`` is computed (module docstring).
    rank_by : {"priority", "risk"}, default "priority"
        Sort by value at stake, or by lapse risk alone.
    tiers : TierThresholds, optional
        Tier thresholds; the defaults of :class:`TierThresholds` when None.
    lead_days : int, default 7
        Days between ``contact_by_date`` and ``overdue_from_date``.

    Returns
    -------
    DataFrame, shape (n_ranked, 14 + n_passthrough)
        Indexed by ``customer_id`` in rank order (rank 1 first), with the
        columns of :data:`RANKED_COLUMNS` and then the pass-through columns.
        Risks are probabilities, values are in the currency of the log,
        days are whole or fractional days, dates are days (datetime64).
        ``attrs`` contains ``as_of``, ``horizon_days``, ``rank_by`` (``"risk"``
        when a priority ranking fell back to risk for lack of amounts) and
        ``value_method``, and ``n_unscored_features``, the customers with a
        feature row but no score, who are left out. Scored customers are
        ranked.

    Raises
    ------
    ValueError
        For a horizon without a ``p_purchase`` column (the message lists the
        available ones), missing feature columns, scored customers without
        features, an ``as_of`` that differs from the features' cut-off, or
        scores made at another cut-off than the features (read from
        ``expected_next_purchase_date`` and ``median_days_to_next``; see
        :mod:`rtt_models.ranking.cutoff`).
    """
    tiers = TierThresholds() if tiers is None else tiers
    horizon_days = _check_settings(horizon_days, value_method, rank_by, lead_days)
    if as_of is None:
        as_of = features.attrs.get("as_of")
    scores = _by_customer(scores, "scores")
    features = _by_customer(features, "features")

    # Inputs: the horizon's probability, the feature columns, matching customers.
    p_column = f"p_purchase_{horizon_days}d"
    if p_column not in scores.columns:
        available = sorted(int(c[len("p_purchase_") : -1]) for c in scores.columns if _is_p_purchase(c))
        raise ValueError(
            f"the scores have no column {p_column!r}; they cover horizons of {available or 'no'} days. "
            f"Pass one of those as the horizon, or score again with horizon {horizon_days}."
        )
    missing = [c for c in REQUIRED_FEATURES if c not in features.columns]
    if missing:
        raise ValueError(
            f"the features are missing columns {missing}; pass the table that rtt features "
            "or rtt_models.features.build_features writes."
        )
    day = resolve_as_of(as_of, features)
    check_scores_cutoff(scores, day)

    # Rows without a score (customers with no purchase by the cut-off, as
    # `rtt score` lists them) cannot be ranked; they are counted and left out.
    unscored = scores[p_column].isna().to_numpy()
    if unscored.any():
        logger.info("left out %d customers without a score at the cut-off", int(unscored.sum()))
        scores = scores.loc[~unscored]
    features, n_unscored_features = _joined_features(scores, features)
    probability = _checked_probability(scores[p_column], p_column)

    # Risk and value over the horizon.
    lapse_risk = 1.0 - probability
    usual_gap = features["gap_median_days"].to_numpy(dtype=float)
    spend_if_active = _spend_if_active(scores, features, horizon_days, probability, value_method)
    value = spend_if_active * lapse_risk
    if rank_by == "priority" and len(value) and not np.isfinite(value).any():
        logger.warning(
            "the features have no spend (a log without amounts), so value_at_stake is empty and "
            "customers are ranked by lapse risk"
        )
        rank_by = "risk"

    # Dates: expected next purchase, becoming overdue, contact-by.
    elapsed = features["elapsed_days"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        overdue_ratio = elapsed / usual_gap
    expected_next = _expected_next_purchase(scores, day)
    overdue_from = _overdue_from_dates(features, usual_gap, tiers.overdue_factor)

    # Contact is due the day after the cut-off at the earliest, which is also
    # the date when no usual gap is known anywhere in the table.
    earliest = day + pd.Timedelta(days=1)
    contact_by = overdue_from - pd.Timedelta(days=lead_days)
    contact_by = contact_by.where(contact_by > earliest, earliest)

    ranked = pd.DataFrame(index=features.index)
    ranked["tier"] = _tiers(lapse_risk, overdue_ratio, expected_next, day, tiers)
    ranked["reason"] = _reasons(features, overdue_ratio, probability, horizon_days)
    ranked["lapse_risk"] = lapse_risk
    ranked["value_at_stake"] = value
    ranked["spend_if_active"] = spend_if_active
    ranked["expected_next_purchase_date"] = expected_next.to_numpy()
    ranked["contact_by_date"] = contact_by.to_numpy()
    ranked["overdue_from_date"] = overdue_from.to_numpy()
    ranked["elapsed_days"] = elapsed
    ranked["usual_gap_days"] = usual_gap
    ranked["overdue_ratio"] = overdue_ratio
    ranked["n_occasions"] = features["n_occasions"].to_numpy()
    ranked["horizon_days"] = horizon_days
    for column in features.columns:
        if column not in FEATURE_COLUMNS and column not in ranked.columns:
            ranked[column] = features[column].to_numpy()

    # Order: the ranking key, the other key, then customer_id; rank 1 first.
    keys = ["value_at_stake", "lapse_risk"] if rank_by == "priority" else ["lapse_risk", "value_at_stake"]
    ranked = ranked.sort_values([*keys, "customer_id"], ascending=[False, False, True], na_position="last")
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked.attrs.update(
        as_of=day.date().isoformat(),
        horizon_days=horizon_days,
        rank_by=rank_by,
        value_method=value_method,
        n_unscored_features=n_unscored_features,
    )
    logger.info(
        "ranked %d customers at a %d-day horizon by %s as of %s", len(ranked), horizon_days, rank_by, day.date()
    )
    return ranked


def _check_settings(horizon_days, value_method: str, rank_by: str, lead_days) -> int:
    if isinstance(horizon_days, bool) or not float(horizon_days).is_integer() or horizon_days < 1:
        raise ValueError(f"horizon_days must be a whole number of days >= 1, got {horizon_days!r}.")
    if value_method not in VALUE_METHODS:
        raise ValueError(f"value_method must be one of {', '.join(VALUE_METHODS)}, got {value_method!r}.")
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}.")
    if isinstance(lead_days, bool) or not float(lead_days).is_integer() or lead_days < 0:
        raise ValueError(f"lead_days must be a whole number of days >= 0, got {lead_days!r}.")
    return int(horizon_days)


def _is_p_purchase(column) -> bool:
    text = str(column)
    return text.startswith("p_purchase_") and text.endswith("d") and text[len("p_purchase_") : -1].isdigit()


def _by_customer(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Index a table by customer_id and check that each customer has one row."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}.")
    if "customer_id" in frame.columns:
        frame = frame.set_index("customer_id")
    elif frame.index.name != "customer_id":
        raise ValueError(f"the {name} have no customer_id column or index; name the customer column customer_id.")
    if frame.index.has_duplicates:
        examples = frame.index[frame.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"the {name} have several rows for some customers, for example {examples}; pass one row each.")
    return frame


def _joined_features(scores: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return the feature rows in the order of the scores and the count of feature rows without a score."""
    unknown = ~scores.index.isin(features.index)
    if unknown.any():
        examples = scores.index[unknown][:5].tolist()
        raise ValueError(
            f"{int(unknown.sum())} scored customers have no feature row, for example {examples}; "
            "pass the features of the cut-off the scores were computed at."
        )
    unscored = int((~features.index.isin(scores.index)).sum())
    if unscored:
        logger.info("%d customers with features have no score and are not ranked", unscored)
    return features.loc[scores.index], unscored


def _checked_probability(column: pd.Series, name: str) -> np.ndarray:
    probability = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = ~((probability >= 0) & (probability <= 1))
    if bad.any():
        examples = column.index[bad][:5].tolist()
        raise ValueError(
            f"{name} must be a probability in [0, 1], but {int(bad.sum())} customers have other or missing "
            f"values, for example {examples}; score them again or leave them out."
        )
    return probability


def _spend_if_active(
    scores: pd.DataFrame, features: pd.DataFrame, horizon_days: int, probability: np.ndarray, value_method: str
) -> np.ndarray:
    """Spend over the horizon at the customer's usual rhythm, NaN without amounts."""
    repeat_spend = pd.to_numeric(features["spend_mean_repeat"], errors="coerce")
    spend_per_occasion = repeat_spend.fillna(pd.to_numeric(features["spend_mean"], errors="coerce")).to_numpy(float)

    if value_method == "model":
        column = f"expected_occasions_{horizon_days}d"
        if column not in scores.columns:
            raise ValueError(
                f"value_method='model' needs the scores column {column!r}; use value_method='usual_rate' "
                "or scores from NextPurchaseModel.predict, which include it."
            )
        expected = pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            occasions = np.where(probability > 0, expected / probability, 1.0)
        return spend_per_occasion * occasions

    # The customer's mean gap, shrunk toward the mean of every repeat gap.
    repeat_gaps = pd.to_numeric(features["frequency"], errors="coerce").to_numpy(dtype=float)
    gap_sum = np.nan_to_num(repeat_gaps * pd.to_numeric(features["gap_mean_days"], errors="coerce").to_numpy(float))
    population_mean = gap_sum.sum() / repeat_gaps.sum() if repeat_gaps.sum() > 0 else np.nan
    mean_gap = (gap_sum + PRIOR_GAPS * population_mean) / (repeat_gaps + PRIOR_GAPS)
    return spend_per_occasion * horizon_days / mean_gap


def _expected_next_purchase(scores: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    if "expected_next_purchase_date" in scores.columns:
        return pd.to_datetime(scores["expected_next_purchase_date"]).dt.normalize()
    if "median_days_to_next" in scores.columns:
        days = pd.to_numeric(scores["median_days_to_next"], errors="coerce")
        return (day + pd.to_timedelta(np.ceil(days), unit="D")).rename("expected_next_purchase_date")
    return pd.Series(pd.NaT, index=scores.index, dtype="datetime64[ns]")


def _overdue_from_dates(features: pd.DataFrame, usual_gap: np.ndarray, overdue_factor: float) -> pd.Series:
    """First day with elapsed > factor x usual gap; one-time buyers use the median usual gap."""
    typical = np.nanmedian(usual_gap) if np.isfinite(usual_gap).any() else np.nan
    gap = np.where(np.isfinite(usual_gap), usual_gap, typical)
    last = pd.to_datetime(features["last_purchase_date"]).dt.normalize()
    return last + pd.to_timedelta(np.floor(overdue_factor * gap) + 1, unit="D")


def _tiers(
    lapse_risk: np.ndarray,
    overdue_ratio: np.ndarray,
    expected_next: pd.Series,
    day: pd.Timestamp,
    tiers: TierThresholds,
) -> np.ndarray:
    at_risk = lapse_risk >= tiers.at_risk
    overdue = at_risk & (np.nan_to_num(overdue_ratio, nan=0.0) > tiers.overdue_factor)
    days_to_next = ((expected_next - day) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    due_soon = np.nan_to_num(days_to_next, nan=np.inf) <= tiers.due_soon_days
    return np.select([overdue, at_risk, due_soon], list(TIERS[:3]), default=TIERS[3])


def _reasons(features: pd.DataFrame, overdue_ratio: np.ndarray, probability: np.ndarray, horizon_days: int) -> list:
    """Write one factual sentence per customer: the purchase history, then the model's probability."""
    n_occasions = features["n_occasions"].to_numpy()
    elapsed = features["elapsed_days"].to_numpy(dtype=float)
    usual_gap = features["gap_median_days"].to_numpy(dtype=float)
    reasons = []
    for n, days, gap, ratio, p in zip(n_occasions, elapsed, usual_gap, overdue_ratio, probability, strict=True):
        if n <= 1 or not np.isfinite(gap):
            history = f"one purchase only, {_ago(days)}"
        elif ratio >= 1:
            history = f"no purchase for {_days(days)}, {ratio:.1f}x the usual gap of {_days(gap)}"
        else:
            history = f"last purchase {_ago(days)}, within the usual gap of {_days(gap)}"
        reasons.append(f"{history}; P(purchase in {horizon_days} days) {_percent(p)}")
    return reasons


def _days(days: float) -> str:
    text = f"{days:.0f}" if float(days).is_integer() else f"{days:.1f}"
    return f"{text} day" if text == "1" else f"{text} days"


def _ago(days: float) -> str:
    return "on the cut-off day" if days == 0 else f"{_days(days)} ago"


def _percent(p: float) -> str:
    """Format a probability as a whole percentage; '<1%' and '>99%' keep values near the ends from reading 0 or 100."""
    if 0 < p < 0.005:
        return "<1%"
    if 0.995 <= p < 1:
        return ">99%"
    return f"{math.floor(100 * p + 0.5)}%"
