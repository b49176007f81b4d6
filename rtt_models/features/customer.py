"""Per-customer RTT features at a cut-off.

Input: a :class:`~rtt_models.data.TransactionLog` or a DataFrame with
``customer_id``, ``timestamp`` and optional ``amount``. Output: one row per
customer with at least one purchase occasion at or before the cut-off,
indexed by ``customer_id`` in sorted order. Nothing after the cut-off reaches
a feature, and the result does not depend on the row order of the log.

Columns (times in whole days):

=========================  ====================================================
``n_occasions``            purchase occasions up to the cut-off
``frequency``              repeat occasions, ``n_occasions - 1`` (the BTYD x)
``recency_days``           first to last occasion (the BTYD t_x)
``tenure_days``            first occasion to the cut-off day (the BTYD T)
``elapsed_days``           last occasion to the cut-off day (the open gap)
``gap_*_days``             mean, median, std (ddof=1), last, min, max gap
``gap_cv``                 gap std over gap mean
``log_gap_mean``, ``_std`` mean and std (ddof=1) of natural-log gap days
``gap_trend``              least-squares slope of gap on gap index, days per gap
``spend_total``            net amount over all occasions
``spend_mean``             mean net amount per occasion
``spend_mean_repeat``      mean net amount of repeat occasions
``spend_last``             net amount of the last occasion
``quantity_mean``, ``_last``  items per occasion, when the log has quantities
``overdue_ratio``          ``elapsed_days / gap_median_days``
``first_purchase_date``    day of the first occasion
``last_purchase_date``     day of the last occasion
``last_purchase_month``    1-12, and ``last_purchase_weekday`` 0 = Monday
``as_of_month``            1-12, month of the cut-off
pass-through columns       value on the customer's latest row
=========================  ====================================================

Undefined values are NaN: every gap statistic and ``spend_mean_repeat`` for
a customer without a repeat occasion; the standard deviations, ``gap_cv``
and ``gap_trend`` with fewer than two gaps; spend columns when the log has
no amounts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog, load_transactions
from rtt_models.data.occasions import Cutoff, day_number, form_occasions, resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.data.threads import balanced_cuts, count_parts, map_parts
from rtt_models.features.history import customer_statistic_columns, last_gap_medians

#: Feature columns in output order, before pass-through columns.
FEATURE_COLUMNS: tuple[str, ...] = (
    "n_occasions",
    "frequency",
    "recency_days",
    "tenure_days",
    "elapsed_days",
    "gap_mean_days",
    "gap_median_days",
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
    "quantity_mean",
    "quantity_last",
    "overdue_ratio",
    "first_purchase_date",
    "last_purchase_date",
    "last_purchase_month",
    "last_purchase_weekday",
    "as_of_month",
)


def as_transaction_log(transactions: TransactionLog | pd.DataFrame) -> TransactionLog:
    """Accept a TransactionLog, or validate a DataFrame in canonical columns into one."""
    if isinstance(transactions, TransactionLog):
        return transactions
    if isinstance(transactions, pd.DataFrame):
        return load_transactions(transactions)
    raise TypeError(
        f"expected a TransactionLog or a pandas DataFrame of transactions, got {type(transactions).__name__}; "
        "read files with rtt_models.data.load_transactions."
    )


def build_features(
    transactions: TransactionLog | pd.DataFrame,
    as_of=None,
    *,
    occasion_rule: str = "positive",
    report: DataQualityReport | None = None,
) -> pd.DataFrame:
    """Build per-customer RTT features as of a cut-off.

    Parameters
    ----------
    transactions : TransactionLog or DataFrame
        The log; a DataFrame needs ``customer_id``, ``timestamp`` (or
        ``date``) and optionally ``amount``.
    as_of : str, date or Timestamp, optional
        The cut-off. A date includes that whole day. None uses the last day
        in the data.
    occasion_rule : {"positive", "all"}, default "positive"
        ``positive`` counts a customer-day when its net amount is above
        zero; ``all`` counts every day with a row (the convention of the
        published CDNOW figures).
    report : DataQualityReport, optional
        Receives rows after the cut-off, netted refunds and excluded days.

    Returns
    -------
    DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id``; columns as in the module docstring.
        The cut-off day is in ``features.attrs["as_of"]`` (ISO date).

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "a"],
    ...                     "timestamp": ["2023-03-04", "2023-03-10", "2023-03-31"],
    ...                     "amount": [20.0, 30.0, 5.0]})
    >>> build_features(log, as_of="2023-04-30").loc["a", ["frequency", "elapsed_days"]].tolist()
    [2, 30.0]
    """
    log = as_transaction_log(transactions)
    report = _report_for(transactions, log, report)
    cutoff = resolve_cutoff(as_of, log)
    report.add("rows_after_cutoff", int((log.frame["timestamp"] >= cutoff.end).sum()))
    occasions = form_occasions(log, start=None, end=cutoff.end, occasion_rule=occasion_rule, report=report)
    return features_from_occasions(occasions, cutoff, log)


def _report_for(transactions, log: TransactionLog, report: DataQualityReport | None) -> DataQualityReport:
    """Return the report to fill: the caller's, merged with the load repairs of a raw DataFrame."""
    if report is None:
        return DataQualityReport()
    if not isinstance(transactions, TransactionLog):
        report.merge(log.report)
    return report


def features_from_occasions(occasions, cutoff: Cutoff, log: TransactionLog) -> pd.DataFrame:
    """Assemble the feature table from occasions up to a cut-off."""
    index = pd.Index(occasions.customer_ids, name="customer_id")
    if occasions.customer_ids.size == 0:
        empty = pd.DataFrame(index=index, columns=list(_output_columns(log)))
        empty.attrs["as_of"] = cutoff.day.date().isoformat()
        return empty

    # Statistics of each customer's whole history, for ranges of customers in parallel threads.
    cuts = balanced_cuts(occasions.starts, count_parts(occasions.day.size))
    ranges = [occasions.customer_range(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    pieces = map_parts(_history_columns, ranges)
    columns = {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}
    last = occasions.starts[1:] - 1

    # Times measured to the cut-off day.
    cutoff_day = day_number(cutoff.day)
    first_day = occasions.day[occasions.starts[:-1]]
    last_day = occasions.day[last]
    columns["tenure_days"] = (cutoff_day - first_day).astype(float)
    columns["elapsed_days"] = (cutoff_day - last_day).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["overdue_ratio"] = columns["elapsed_days"] / columns["gap_median_days"]
    columns["first_purchase_date"] = first_day.astype("datetime64[D]").astype("datetime64[ns]")
    columns["last_purchase_date"] = last_day.astype("datetime64[D]").astype("datetime64[ns]")
    columns["as_of_month"] = np.full(len(index), cutoff.day.month, dtype=np.int64)

    # Spend is undefined without amounts; pass-through columns come last.
    if not log.has_amount:
        for column in ("spend_total", "spend_mean", "spend_mean_repeat", "spend_last"):
            columns[column] = np.full(len(index), np.nan)
    ordered = {column: columns[column] for column in FEATURE_COLUMNS if column in columns}
    features = pd.DataFrame(ordered, index=index, copy=False)
    for column in occasions.passthrough.columns:
        features[column] = occasions.passthrough[column].to_numpy()
    features.attrs["as_of"] = cutoff.day.date().isoformat()
    return features


def _history_columns(occasions) -> dict[str, np.ndarray]:
    """Statistics of each customer's whole history, with the median gap, shape (n_customers,) each."""
    columns = customer_statistic_columns(occasions)
    columns["gap_median_days"] = last_gap_medians(occasions)
    return columns


def _output_columns(log: TransactionLog):
    skip = set() if log.has_quantity else {"quantity_mean", "quantity_last"}
    return [c for c in FEATURE_COLUMNS if c not in skip] + list(log.passthrough)
