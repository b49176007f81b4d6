"""Purchase occasions: one per customer per calendar day, and the cut-off.

Conventions chosen here and used everywhere else:

* A purchase occasion is a customer's calendar day (in the business time
  zone) with rows; its amount is the net sum of that day's rows, so a refund
  on the day of its purchase is netted into it.
* ``occasion_rule="positive"`` (the default) counts a day only when its net
  amount is above zero: a refund-only or net-zero day is no purchase. With
  ``"all"`` every day with a row counts, which is the convention of the
  published CDNOW figures (they count every customer-day). Logs without an
  amount column always behave as ``"all"``.
* A cut-off given as a date (or a midnight timestamp) includes that whole
  day; one with a time of day includes rows up to and including that time.
  Rows are cut before days are formed, so a refund after the cut-off never
  reduces a purchase before it.

Everything is computed on sorted integer codes with numpy (no Python loop
per customer), and the result does not depend on the row order of the log.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.report import DataQualityReport, TransactionLogError

OCCASION_RULES = ("positive", "all")
_ISO_CUTOFF = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class Cutoff:
    """A resolved cut-off.

    Attributes
    ----------
    day : Timestamp
        Midnight of the cut-off's calendar day; day counts are measured to it.
    end : Timestamp
        Exclusive upper bound of the rows it includes.
    """

    day: pd.Timestamp
    end: pd.Timestamp


@dataclass
class OccasionTable:
    """Purchase occasions sorted by customer, then day.

    Attributes
    ----------
    customer_ids : ndarray, shape (n_customers,)
        Sorted customer ids; ``customer`` indexes into it.
    customer : ndarray of int64, shape (n_occasions,)
        Customer code of each occasion.
    day : ndarray of int64, shape (n_occasions,)
        Days since 1970-01-01 of each occasion.
    amount : ndarray of float, shape (n_occasions,)
        Net amount of each occasion; NaN when the log has no amounts.
    quantity : ndarray of float or None, shape (n_occasions,)
        Items per occasion when the log has a quantity column.
    starts : ndarray of int64, shape (n_customers + 1,)
        Offsets: customer k's occasions are ``starts[k]:starts[k + 1]``.
    passthrough : DataFrame, shape (n_customers, n_passthrough)
        Value of each pass-through column on the customer's latest row.
    """

    customer_ids: np.ndarray
    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray | None
    starts: np.ndarray
    passthrough: pd.DataFrame

    @property
    def counts(self) -> np.ndarray:
        """Occasions per customer, shape (n_customers,)."""
        return np.diff(self.starts)


def resolve_cutoff(as_of, log: TransactionLog) -> Cutoff:
    """Resolve ``as_of`` into a :class:`Cutoff` in the log's business time zone.

    Parameters
    ----------
    as_of : str, date, datetime, Timestamp or None
        The moment of prediction. None means the last calendar day with a
        row in the log, included whole.
    log : TransactionLog
        The log whose time zone and last day apply.
    """
    if as_of is None:
        if log.frame.empty:
            raise TransactionLogError("the transaction log is empty, so there is no last day to use as the cut-off.")
        last_day = log.frame["timestamp"].max().normalize()
        return Cutoff(last_day, last_day + pd.Timedelta(days=1))

    if isinstance(as_of, str) and not _ISO_CUTOFF.fullmatch(as_of.strip()):
        raise TransactionLogError(
            f"cannot read the cut-off {as_of!r}: write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM', because a date "
            "such as 01/02/2023 reads differently day-first and month-first."
        )
    try:
        stamp = pd.Timestamp(as_of.strip() if isinstance(as_of, str) else as_of)
    except (ValueError, TypeError) as err:
        raise TransactionLogError(
            f"cannot read the cut-off {as_of!r} as a date; write it as YYYY-MM-DD or 'YYYY-MM-DD HH:MM'."
        ) from err
    if stamp is pd.NaT:
        raise TransactionLogError(f"the cut-off {as_of!r} is missing; write it as YYYY-MM-DD.")
    try:
        stamp = stamp.as_unit("ns")
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as err:
        raise TransactionLogError(
            f"the cut-off {as_of!r} reads as {stamp}, outside the dates pandas supports (1677 to 2262); "
            "write it as YYYY-MM-DD."
        ) from err
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(log.timezone).tz_localize(None)
    date_only = isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime)
    if date_only or stamp == stamp.normalize():
        day = stamp.normalize()
        return Cutoff(day, day + pd.Timedelta(days=1))
    return Cutoff(stamp.normalize(), stamp + pd.Timedelta(nanoseconds=1))


def form_occasions(
    log: TransactionLog,
    *,
    start: pd.Timestamp | None,
    end: pd.Timestamp,
    occasion_rule: str = "positive",
    report: DataQualityReport | None = None,
) -> OccasionTable:
    """Form purchase occasions from the rows with ``start <= timestamp < end``.

    Parameters
    ----------
    log : TransactionLog
        The validated log.
    start : Timestamp or None
        Inclusive lower bound of the rows used; None uses every earlier row.
    end : Timestamp
        Exclusive upper bound of the rows used.
    occasion_rule : {"positive", "all"}
        Which customer-days count; see the module docstring.
    report : DataQualityReport, optional
        Receives the counts of netted refunds and excluded days.
    """
    check_occasion_rule(occasion_rule)
    report = report if report is not None else DataQualityReport()
    frame = log.frame
    stamps = frame["timestamp"].to_numpy(dtype="datetime64[ns]")

    # Keep the rows inside the window.
    keep = stamps < np.datetime64(end, "ns")
    if start is not None:
        keep &= stamps >= np.datetime64(start, "ns")
    # Every row is kept in the common case of a cut-off after the data;
    # slicing then costs nothing instead of copying each column.
    rows = slice(None) if keep.all() else np.flatnonzero(keep)

    # Sort rows by (customer, day) through one integer key.
    all_codes, customer_ids = log.customer_codes()
    codes = all_codes[rows]
    days = stamps[rows].view("int64") // _NS_PER_DAY
    first_day = days.min() if days.size else 0
    span = (days.max() - first_day + 1) if days.size else 1
    key = codes.astype(np.int64) * span + (days - first_day)
    order = np.argsort(key, kind="stable")
    key = key[order]

    # One occasion per distinct key; amounts and quantities summed per day.
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else np.zeros(0, dtype=np.int64)
    amounts = frame["amount"].to_numpy(dtype=float)[rows][order]
    occasion_amount = np.add.reduceat(amounts, bounds) if bounds.size else np.zeros(0)
    occasion_customer = codes[order][bounds].astype(np.int64)
    occasion_day = days[order][bounds]
    quantity = None
    if log.has_quantity:
        quantity = np.add.reduceat(frame["quantity"].to_numpy(dtype=float)[rows][order], bounds) if bounds.size else np.zeros(0)

    # The occasion rule: refunds are netted into their day, which may leave it at or below zero.
    if log.has_amount:
        report.add("refund_rows_netted", int((amounts < 0).sum()))
    counted = np.ones(bounds.size, dtype=bool)
    if occasion_rule == "positive" and log.has_amount:
        counted = occasion_amount > 0
        report.add("days_excluded", int((~counted).sum()))
    else:
        report.add("days_excluded", 0)
    occasion_customer = occasion_customer[counted]
    occasion_day = occasion_day[counted]
    occasion_amount = occasion_amount[counted]
    if quantity is not None:
        quantity = quantity[counted]

    # Customers with rows in the window but no occasion (refund-only) are counted.
    has_rows = np.bincount(codes, minlength=len(customer_ids)) > 0
    has_occasion = np.zeros(len(customer_ids), dtype=bool)
    has_occasion[occasion_customer] = True
    report.add("customers_without_occasion", int((has_rows & ~has_occasion).sum()))
    remap = np.cumsum(has_occasion) - 1
    occasion_customer = remap[occasion_customer]
    kept_ids = customer_ids[has_occasion]
    starts = np.searchsorted(occasion_customer, np.arange(len(kept_ids) + 1))

    passthrough = _latest_values(frame.iloc[rows], log.passthrough, kept_ids)
    return OccasionTable(kept_ids, occasion_customer, occasion_day, occasion_amount, quantity, starts, passthrough)


def check_occasion_rule(occasion_rule: str) -> None:
    """Raise a ValueError naming the allowed rules for an unknown one."""
    if occasion_rule not in OCCASION_RULES:
        raise ValueError(
            f"unknown occasion_rule {occasion_rule!r}; use 'positive' (days with net amount > 0) or 'all' "
            "(every day with a row)."
        )


def day_number(stamp: pd.Timestamp) -> int:
    """Days since 1970-01-01 of a timestamp's calendar day."""
    return int(np.datetime64(stamp.normalize(), "D").astype(np.int64))


def _latest_values(rows: pd.DataFrame, columns: tuple[str, ...], customer_ids: np.ndarray) -> pd.DataFrame:
    """Return each customer's pass-through values on their latest row, ties broken by value, not row order."""
    index = pd.Index(customer_ids, name="customer_id")
    if not columns:
        return pd.DataFrame(index=index)
    ordered = rows[["customer_id", "timestamp", *columns]].copy()
    sort_keys = ["customer_id", "timestamp"]
    for column in columns:
        ordered[f"_{column}_key"] = ordered[column].astype(str)
        sort_keys.append(f"_{column}_key")
    ordered = ordered.sort_values(sort_keys, kind="mergesort")
    latest = ordered.drop_duplicates("customer_id", keep="last").set_index("customer_id")
    return latest[list(columns)].reindex(index)

