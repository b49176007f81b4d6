"""Calibration/holdout splits with the truth of what happened after the cut-off.

The holdout window covers the ``window_days`` calendar days after the
cut-off day: day 1 is the day after the cut-off. For every calibration
customer the truth holds

* ``days_to_next``: day of the first holdout occasion (1..window), or the
  window length when there is none;
* ``event``: True when the customer bought within the window;
* ``n_occasions_holdout``: occasions in the window;
* ``spend_holdout`` and ``spend_per_occasion_holdout``: net spend in the
  window, in total and per occasion (NaN without occasions or amounts).

Customers whose first occasion falls after the cut-off cannot be scored at
it; they are returned in ``new_customers`` and counted in the report, never
dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import day_number, form_occasions, resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.features.customer import as_transaction_log, features_from_occasions


@dataclass
class CalibrationHoldoutSplit:
    """Features at a cut-off and the truth in the window after it.

    Attributes
    ----------
    features : DataFrame, shape (n_customers, n_features)
        Per-customer features at the cut-off, indexed by ``customer_id``.
    truth : DataFrame, shape (n_customers, 5)
        Holdout truth per calibration customer, same index as ``features``.
    new_customers : DataFrame, shape (n_new, 3)
        Customers first seen in the window: ``first_purchase_date``,
        ``n_occasions_holdout``, ``spend_holdout``; indexed by ``customer_id``.
    as_of : Timestamp
        The cut-off day.
    window_days : int
        Length of the holdout window in days.
    report : DataQualityReport
        Repairs made for the calibration and holdout periods.
    """

    features: pd.DataFrame
    truth: pd.DataFrame
    new_customers: pd.DataFrame
    as_of: pd.Timestamp
    window_days: int
    report: DataQualityReport


def split_calibration_holdout(
    transactions: TransactionLog | pd.DataFrame,
    as_of,
    window_days: int,
    *,
    occasion_rule: str = "positive",
) -> CalibrationHoldoutSplit:
    """Split a log at a cut-off into features and holdout truth.

    Parameters
    ----------
    transactions : TransactionLog or DataFrame
        The log.
    as_of : str, date or Timestamp
        The cut-off; a date includes that whole day.
    window_days : int
        Holdout length in days, >= 1.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days count as occasions, in both periods.

    Returns
    -------
    CalibrationHoldoutSplit
    """
    if isinstance(window_days, bool) or not isinstance(window_days, (int, np.integer)) or window_days < 1:
        raise ValueError(f"window_days must be a whole number of days >= 1, got {window_days!r}.")
    log = as_transaction_log(transactions)
    report = log.report.copy()
    cutoff = resolve_cutoff(as_of, log)
    window_end = cutoff.day + pd.Timedelta(days=int(window_days) + 1)
    last_row = log.frame["timestamp"].max()
    if last_row < window_end - pd.Timedelta(days=1):
        report.note(
            f"the log ends on {last_row.date()}, before the holdout window's last day "
            f"{(window_end - pd.Timedelta(days=1)).date()}; holdout counts cover less than {window_days} days"
        )
    report.add("rows_after_cutoff", int((log.frame["timestamp"] >= cutoff.end).sum()))

    calibration = form_occasions(log, start=None, end=cutoff.end, occasion_rule=occasion_rule, report=report)
    features = features_from_occasions(calibration, cutoff, log)
    holdout = form_occasions(
        log, start=cutoff.end, end=window_end, occasion_rule=occasion_rule, report=DataQualityReport()
    )

    # Per holdout customer: first day, occasion count and spend.
    first_index = holdout.starts[:-1]
    ids = pd.Index(holdout.customer_ids, name="customer_id")
    holdout_summary = pd.DataFrame(
        {
            "first_day": holdout.day[first_index] - day_number(cutoff.day),
            "n_occasions_holdout": holdout.counts,
            "spend_holdout": np.add.reduceat(holdout.amount, first_index) if first_index.size else [],
        },
        index=ids,
    )

    # Truth for calibration customers; buyers absent from the holdout are censored.
    joined = holdout_summary.reindex(features.index)
    bought = joined["n_occasions_holdout"].notna().to_numpy()
    truth = pd.DataFrame(index=features.index)
    truth["days_to_next"] = np.where(bought, joined["first_day"], window_days).astype(float)
    truth["event"] = bought
    truth["n_occasions_holdout"] = joined["n_occasions_holdout"].fillna(0).astype(np.int64)
    spend = joined["spend_holdout"].to_numpy(dtype=float) if log.has_amount else np.full(len(truth), np.nan)
    truth["spend_holdout"] = np.where(bought, spend, 0.0 if log.has_amount else np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        truth["spend_per_occasion_holdout"] = np.where(bought, spend / truth["n_occasions_holdout"], np.nan)

    # Customers first seen in the window are listed, not dropped.
    is_new = ~holdout_summary.index.isin(features.index)
    new_customers = holdout_summary.loc[is_new].copy()
    new_customers["first_purchase_date"] = cutoff.day + pd.to_timedelta(new_customers.pop("first_day"), unit="D")
    new_customers = new_customers[["first_purchase_date", "n_occasions_holdout", "spend_holdout"]]
    report.add("customers_first_seen_after_cutoff", int(is_new.sum()))
    return CalibrationHoldoutSplit(features, truth, new_customers, cutoff.day, int(window_days), report)
