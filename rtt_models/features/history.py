"""Purchase-history statistics at every occasion, computed without a loop.

For each occasion of each customer this module computes the RTT statistics
of the history up to and including that occasion (for gap episodes), or of
each customer's whole history (for features at a cut-off). Both feed the
same counts and sums into one set of formulas, so a model fitted on
episodes uses the same definitions when it scores customers.

Segmented running sums come from global cumulative sums minus the sum before
each customer's first occasion. Running minima and maxima use one global
``np.maximum.accumulate`` on values shifted by ``customer_code * offset``:
each customer's shifted values exceed every earlier customer's, so the
accumulation restarts at each customer without a loop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtt_models.data.occasions import OccasionTable

#: Covariates that mean the same in gap episodes and in customer features, so
#: that a model fitted on episodes can score customer features.
EPISODE_COVARIATES: tuple[str, ...] = (
    "n_occasions",
    "frequency",
    "recency_days",
    "gap_mean_days",
    "gap_std_days",
    "gap_cv",
    "gap_last_days",
    "gap_min_days",
    "gap_max_days",
    "log_gap_mean",
    "log_gap_std",
    "gap_trend",
    "spend_total",
    "spend_mean",
    "spend_mean_repeat",
    "spend_last",
    "last_purchase_month",
    "last_purchase_weekday",
)


def history_statistics(occasions: OccasionTable) -> pd.DataFrame:
    """Compute RTT statistics of the history up to each occasion.

    Parameters
    ----------
    occasions : OccasionTable
        Occasions sorted by customer, then day.

    Returns
    -------
    DataFrame, shape (n_occasions, n_statistics)
        Positional index aligned with ``occasions.day``. Columns, in days
        where they are times: ``n_occasions``, ``frequency``,
        ``recency_days`` (first occasion to this one), the gap statistics of
        :data:`EPISODE_COVARIATES` (NaN before the first gap, and the
        standard deviations, ``gap_cv`` and ``gap_trend`` NaN before the
        second), spend statistics, ``quantity_mean`` and ``quantity_last``
        when the log has quantities, and the calendar fields of the
        occasion's day.
    """
    parts = _GapParts(occasions)
    first_index = parts.first_index

    # Running sums that restart at each customer.
    sums = {name: _segment_cumsum(values, first_index) for name, values in parts.summed.items()}

    # Running minimum and maximum gap, restarting at each customer.
    day = occasions.day
    shift = float(day.max() - day.min() + 2) if day.size else 1.0
    offset = occasions.customer.astype(float) * (2 * shift)
    gap = parts.gap
    gap_max = np.maximum.accumulate(np.where(parts.has_gap, gap, 0.0) + offset) - offset
    gap_min = shift - (np.maximum.accumulate(np.where(parts.has_gap, shift - gap, 0.0) + offset) - offset)

    return pd.DataFrame(_statistics(
        occasions,
        n_gaps=parts.position.astype(float),
        sums=sums,
        gap_last=gap,
        gap_min=gap_min,
        gap_max=gap_max,
        first_amount=occasions.amount[first_index],
        at=np.arange(day.size),
        first_day=day[first_index],
    ))


def customer_statistics(occasions: OccasionTable) -> pd.DataFrame:
    """Compute the same statistics over each customer's whole history.

    Equal to the rows of :func:`history_statistics` at each customer's last
    occasion, but computed with one segmented reduction per statistic.

    Returns
    -------
    DataFrame, shape (n_customers, n_statistics)
        Positional index aligned with ``occasions.customer_ids``.
    """
    return pd.DataFrame(customer_statistic_columns(occasions))


def customer_statistic_columns(occasions: OccasionTable) -> dict[str, np.ndarray]:
    """Compute the columns of :func:`customer_statistics` as arrays of shape (n_customers,).

    The feature builder assembles its table from these arrays once, instead
    of copying a DataFrame for every inserted column.
    """
    parts = _GapParts(occasions)
    first = occasions.starts[:-1]
    last = occasions.starts[1:] - 1
    sums = {name: np.add.reduceat(values, first) for name, values in parts.summed.items()}
    gap = parts.gap
    has_gaps = occasions.counts > 1
    gap_min = np.where(has_gaps, np.minimum.reduceat(np.where(parts.has_gap, gap, np.inf), first), np.nan)
    gap_max = np.where(has_gaps, np.maximum.reduceat(np.where(parts.has_gap, gap, -np.inf), first), np.nan)
    return _statistics(
        occasions,
        n_gaps=(occasions.counts - 1).astype(float),
        sums=sums,
        gap_last=gap[last],
        gap_min=gap_min,
        gap_max=gap_max,
        first_amount=occasions.amount[first],
        at=last,
        first_day=occasions.day[first],
    )


class _GapParts:
    """Per-occasion inputs of the statistics: the gap ending there and the summands."""

    def __init__(self, occasions: OccasionTable):
        customer = occasions.customer
        day = occasions.day.astype(np.int64)
        n = day.size
        self.first_index = occasions.starts[:-1][customer]
        self.position = np.arange(n) - self.first_index

        # The gap that ends at each occasion; NaN at a customer's first occasion.
        self.has_gap = self.position >= 1
        gap = np.zeros(n, dtype=np.int64)
        if n > 1:
            gap[1:] = day[1:] - day[:-1]
        gap[~self.has_gap] = 0
        self.gap = np.where(self.has_gap, gap.astype(float), np.nan)
        log_gap = np.log(np.where(self.has_gap, self.gap, 1.0))

        # Gap sums are exact in int64, so a perfectly regular customer gets a
        # standard deviation of exactly 0; j counts a customer's gaps from 0.
        gap_index = np.where(self.has_gap, self.position - 1, 0).astype(np.int64)
        self.summed = {
            "gap": gap,
            "gap_sq": gap * gap,
            "gap_index_gap": gap_index * gap,
            "log_gap": log_gap,
            "log_gap_sq": log_gap * log_gap,
            "amount": occasions.amount,
        }
        if occasions.quantity is not None:
            self.summed["quantity"] = occasions.quantity


def _statistics(occasions, *, n_gaps, sums, gap_last, gap_min, gap_max, first_amount, at, first_day) -> dict:
    """Turn counts and sums into the statistics' final formulas, one array per column."""
    has_gap = n_gaps >= 1
    sum_gap = sums["gap"].astype(float)
    sum_j = n_gaps * (n_gaps - 1) / 2
    sum_jj = (n_gaps - 1) * n_gaps * (2 * n_gaps - 1) / 6
    day = occasions.day[at]

    with np.errstate(divide="ignore", invalid="ignore"):
        gap_mean = np.where(has_gap, sum_gap / n_gaps, np.nan)
        gap_std = _sample_std(sum_gap, sums["gap_sq"].astype(float), n_gaps)
        log_gap_mean = np.where(has_gap, sums["log_gap"] / n_gaps, np.nan)
        log_gap_std = _sample_std(sums["log_gap"], sums["log_gap_sq"], n_gaps)
        sxx = sum_jj - sum_j**2 / n_gaps
        sxy = sums["gap_index_gap"].astype(float) - sum_j * sum_gap / n_gaps
        gap_trend = np.where(n_gaps >= 2, sxy / sxx, np.nan)
        gap_cv = gap_std / gap_mean
        spend_total = sums["amount"]
        spend_mean = spend_total / (n_gaps + 1)
        spend_mean_repeat = np.where(has_gap, (spend_total - first_amount) / n_gaps, np.nan)

    # Calendar fields by integer arithmetic: 1970-01-01 was a Thursday (weekday 3).
    months_since_1970 = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    stats = {
        "n_occasions": n_gaps.astype(np.int64) + 1,
        "frequency": n_gaps.astype(np.int64),
        "recency_days": (day - first_day).astype(float),
        "gap_mean_days": gap_mean,
        "gap_std_days": gap_std,
        "gap_cv": gap_cv,
        "gap_last_days": gap_last,
        "gap_min_days": np.where(has_gap, gap_min, np.nan),
        "gap_max_days": np.where(has_gap, gap_max, np.nan),
        "log_gap_mean": log_gap_mean,
        "log_gap_std": log_gap_std,
        "gap_trend": gap_trend,
        "spend_total": spend_total,
        "spend_mean": spend_mean,
        "spend_mean_repeat": spend_mean_repeat,
        "spend_last": occasions.amount[at],
        "last_purchase_month": months_since_1970 % 12 + 1,
        "last_purchase_weekday": (day.astype(np.int64) + 3) % 7,
    }
    if occasions.quantity is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            stats["quantity_mean"] = sums["quantity"] / (n_gaps + 1)
        stats["quantity_last"] = occasions.quantity[at]
    return stats


def last_gap_medians(occasions: OccasionTable) -> np.ndarray:
    """Median gap of each customer's whole history, shape (n_customers,), NaN without gaps."""
    customer = occasions.customer
    day = occasions.day
    n_customers = occasions.customer_ids.size
    same = customer[1:] == customer[:-1]
    gaps = (day[1:] - day[:-1])[same]
    gap_customer = customer[1:][same]

    # Sort gaps within each customer through one packed integer key. The keys
    # are already in customer order, so the run-aware stable sort (timsort) is
    # several times faster than the default quicksort.
    width = int(gaps.max()) + 1 if gaps.size else 1
    packed = np.sort(gap_customer.astype(np.int64) * width + gaps.astype(np.int64), kind="stable")
    gaps = (packed % width).astype(float)
    counts = np.bincount(gap_customer, minlength=n_customers)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    median = np.full(n_customers, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    median[has] = (gaps[low] + gaps[high]) / 2
    return median


def _segment_cumsum(values: np.ndarray, first_index: np.ndarray) -> np.ndarray:
    """Running sum that restarts at each customer's first occasion."""
    total = np.cumsum(values)
    before = np.r_[np.zeros(1, dtype=total.dtype), total][first_index]
    return total - before


def _sample_std(total: np.ndarray, total_sq: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof=1) from running sums; NaN with fewer than 2 values."""
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (total_sq - total**2 / count) / (count - 1)
    variance = np.where(count >= 2, np.maximum(variance, 0.0), np.nan)
    return np.sqrt(variance)
