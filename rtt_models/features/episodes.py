"""Gap episodes: one training row per purchase occasion before a cut-off.

Each row describes the history up to and including one occasion (the same
statistics as :func:`rtt_models.features.build_features`, computed from that
history alone) and the gap that followed it:

* ``duration``: days from the occasion to the customer's next occasion, or
  to the cut-off day for the last occasion;
* ``event``: True when the next occasion came first, False when the cut-off
  did (right-censored). A last occasion on the cut-off day has duration 0.

At the occasion itself ``elapsed_days`` is 0 and ``tenure_days`` equals
``recency_days``. Median gaps and the overdue ratio are not carried, because
episodes describe the moment of purchase. No row uses any occasion after its
own, except ``duration`` and ``event``, which are the target.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import day_number, form_occasions, resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.features.customer import _report_for, as_transaction_log
from rtt_models.features.history import history_statistics


def build_episodes(
    transactions: TransactionLog | pd.DataFrame,
    as_of=None,
    *,
    occasion_rule: str = "positive",
    report: DataQualityReport | None = None,
) -> pd.DataFrame:
    """Build gap episodes from the occasions at or before a cut-off.

    Parameters
    ----------
    transactions : TransactionLog or DataFrame
        The log.
    as_of : str, date or Timestamp, optional
        The cut-off, as in :func:`~rtt_models.features.build_features`.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days count as occasions.
    report : DataQualityReport, optional
        Receives the repairs made.

    Returns
    -------
    DataFrame, shape (n_occasions, n_columns)
        Columns ``customer_id``, ``occasion_date``, ``duration`` (float
        days), ``event`` (bool), ``elapsed_days`` (0), ``tenure_days`` and
        the history statistics; sorted by customer, then date, with a
        RangeIndex. Pass-through columns hold the customer's value at the
        cut-off.
    """
    log = as_transaction_log(transactions)
    report = _report_for(transactions, log, report)
    cutoff = resolve_cutoff(as_of, log)
    report.add("rows_after_cutoff", int((log.frame["timestamp"] >= cutoff.end).sum()))
    occasions = form_occasions(log, start=None, end=cutoff.end, occasion_rule=occasion_rule, report=report)

    # The gap after each occasion, or the censored time to the cut-off.
    day = occasions.day
    customer = occasions.customer
    has_next = np.r_[customer[1:] == customer[:-1], False] if day.size else np.zeros(0, dtype=bool)
    next_day = np.r_[day[1:], 0] if day.size else day
    duration = np.where(has_next, next_day - day, day_number(cutoff.day) - day).astype(float)

    history = history_statistics(occasions)
    if not log.has_amount:
        for column in ("spend_total", "spend_mean", "spend_mean_repeat", "spend_last"):
            history[column] = np.nan
    episodes = pd.DataFrame(
        {
            "customer_id": occasions.customer_ids[customer],
            "occasion_date": day.astype("datetime64[D]").astype("datetime64[ns]"),
            "duration": duration,
            "event": has_next,
            "elapsed_days": 0.0,
            "tenure_days": history["recency_days"].to_numpy(),
        }
    )
    episodes = pd.concat([episodes, history], axis=1)
    for column in occasions.passthrough.columns:
        episodes[column] = occasions.passthrough[column].to_numpy()[customer]
    episodes.attrs["as_of"] = cutoff.day.date().isoformat()
    return episodes
