"""Repeat-purchase timing by segment and by first-purchase cohort, over several cut-offs.

For each cut-off the features are built afresh, and each group of customers
(a value of a segment column, or the month or quarter of the first purchase)
gets:

* ``customers``: customers with at least one occasion by the cut-off;
* ``repeat_customers``: those with at least one completed gap;
* ``median_gap_days``: the median, over repeat customers, of each
  customer's median gap (``gap_median_days``);
* ``share_overdue``: the share of repeat customers whose elapsed days
  exceed ``overdue_factor`` times their median gap (NaN without repeat
  customers);
* ``median_gap_change_days`` and ``share_overdue_change``: the change of
  those two since the previous cut-off for the same group (NaN at the first
  cut-off), which is the trend a report reads.

One-time buyers have no gap, so they count in ``customers`` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog, load_transactions
from rtt_models.features import build_features

COHORT_PERIODS: dict[str, str] = {"month": "M", "quarter": "Q"}

REPORT_COLUMNS: tuple[str, ...] = (
    "as_of",
    "by",
    "group",
    "customers",
    "repeat_customers",
    "median_gap_days",
    "share_overdue",
    "median_gap_change_days",
    "share_overdue_change",
)


def segment_report(
    transactions: TransactionLog | pd.DataFrame,
    cutoffs: Iterable,
    segment_col: str | None = None,
    *,
    cohort: str = "quarter",
    overdue_factor: float = 2.0,
    occasion_rule: str = "positive",
) -> pd.DataFrame:
    """Summarise repeat-purchase timing by segment and by first-purchase cohort at each cut-off.

    Parameters
    ----------
    transactions : TransactionLog or DataFrame
        The log. A TransactionLog must carry ``segment_col`` as a
        pass-through column; a DataFrame is loaded with it as one.
    cutoffs : iterable of str, date or Timestamp
        Cut-offs, each a whole day; they are reported in ascending order.
    segment_col : str, optional
        Column of customer segments; the customer's value on their latest
        row before the cut-off applies. None reports cohorts only.
    cohort : {"quarter", "month"}, default "quarter"
        Period of the first purchase that defines a cohort.
    overdue_factor : float, default 2.0
        A repeat customer is overdue when elapsed days exceed this multiple
        of their median gap.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days are purchase occasions.

    Returns
    -------
    DataFrame, shape (n_rows, 9)
        One row per cut-off and group, with the columns of
        :data:`REPORT_COLUMNS`: ``by`` is ``"segment"`` or ``"cohort"``,
        ``group`` the segment value or the cohort period as text (for
        example ``"1997Q1"``). Sorted by ``by``, ``group`` and ``as_of``.
    """
    if cohort not in COHORT_PERIODS:
        raise ValueError(f"cohort must be one of {', '.join(COHORT_PERIODS)}, got {cohort!r}.")
    if not (np.isfinite(overdue_factor) and overdue_factor > 0):
        raise ValueError(f"overdue_factor must be a positive multiple of the usual gap, got {overdue_factor!r}.")
    log = _log_with_segment(transactions, segment_col)
    days = sorted({pd.Timestamp(cutoff).normalize() for cutoff in cutoffs})
    if not days:
        raise ValueError("cutoffs is empty; pass at least one cut-off date, for example ['1997-09-30'].")

    # One feature table per cut-off, summarised per segment and per cohort.
    parts = []
    for day in days:
        features = build_features(log, day, occasion_rule=occasion_rule)
        groupings = {"cohort": pd.to_datetime(features["first_purchase_date"]).dt.to_period(COHORT_PERIODS[cohort])}
        if segment_col is not None:
            groupings["segment"] = features[segment_col]
        for by, groups in groupings.items():
            summary = _summarise(features, groups.astype(str).where(groups.notna(), "(missing)"), overdue_factor)
            summary.insert(0, "by", by)
            summary.insert(0, "as_of", day)
            parts.append(summary)
    report = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(REPORT_COLUMNS[:7]))

    # Trend: change since the previous cut-off within each group.
    report = report.sort_values(["by", "group", "as_of"], kind="stable").reset_index(drop=True)
    previous = report.groupby(["by", "group"], sort=False)[["median_gap_days", "share_overdue"]].shift(1)
    report["median_gap_change_days"] = report["median_gap_days"] - previous["median_gap_days"]
    report["share_overdue_change"] = report["share_overdue"] - previous["share_overdue"]
    return report[list(REPORT_COLUMNS)]


def plot_segment_report(report: pd.DataFrame, path: str | os.PathLike | None = None):
    """Plot median gap and share overdue over the cut-offs, one line per group.

    Parameters
    ----------
    report : DataFrame
        Output of :func:`segment_report`.
    path : path, optional
        Where to save the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        One row of two panels (median gap in days, share overdue) per
        grouping in the report: segments first, then cohorts.
    """
    from matplotlib.figure import Figure

    groupings = [by for by in ("segment", "cohort") if (report["by"] == by).any()]
    if not groupings:
        raise ValueError("the report has no rows to plot; pass the output of segment_report.")
    figure = Figure(figsize=(11, 3.6 * len(groupings)), layout="constrained")
    axes = figure.subplots(len(groupings), 2, squeeze=False)
    for row, by in enumerate(groupings):
        rows = report[report["by"] == by]
        for group, lines in rows.groupby("group", sort=True):
            axes[row, 0].plot(lines["as_of"], lines["median_gap_days"], marker="o", label=str(group))
            axes[row, 1].plot(lines["as_of"], lines["share_overdue"], marker="o", label=str(group))
        axes[row, 0].set_ylabel("median gap (days)")
        axes[row, 1].set_ylabel("share overdue")
        axes[row, 1].set_ylim(0, 1)
        for column in (0, 1):
            axes[row, column].set_xlabel("cut-off")
            axes[row, column].set_title(f"by {by}")
            axes[row, column].tick_params(axis="x", labelrotation=30)
        axes[row, 1].legend(title=by, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    if path is not None:
        figure.savefig(path, format="png", dpi=100)
    return figure


def _log_with_segment(transactions, segment_col: str | None) -> TransactionLog:
    if isinstance(transactions, TransactionLog):
        if segment_col is not None and segment_col not in transactions.passthrough:
            raise ValueError(
                f"the log does not carry the segment column {segment_col!r}; its pass-through columns are "
                f"{list(transactions.passthrough)}. Load it with columns={{'passthrough': [{segment_col!r}]}}."
            )
        return transactions
    if isinstance(transactions, pd.DataFrame):
        columns = {"passthrough": [segment_col]} if segment_col is not None else None
        return load_transactions(transactions, columns=columns)
    raise TypeError(f"expected a TransactionLog or a pandas DataFrame, got {type(transactions).__name__}.")


def _summarise(features: pd.DataFrame, groups: pd.Series, overdue_factor: float) -> pd.DataFrame:
    """Customers, repeat customers, median gap and share overdue per group."""
    gap = features["gap_median_days"].astype(float)
    repeat = gap.notna()
    overdue = (features["elapsed_days"].astype(float) > overdue_factor * gap).where(repeat)
    table = pd.DataFrame({"group": groups.to_numpy(), "repeat": repeat.to_numpy(), "gap": gap.to_numpy(),
                          "overdue": overdue.astype(float).to_numpy()})
    grouped = table.groupby("group", sort=True)
    return pd.DataFrame(
        {
            "customers": grouped.size(),
            "repeat_customers": grouped["repeat"].sum().astype(int),
            "median_gap_days": grouped["gap"].median(),
            "share_overdue": grouped["overdue"].mean(),
        }
    ).reset_index()
