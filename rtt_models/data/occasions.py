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
The rows are sorted by (customer, day) once per log (see
:meth:`~rtt_models.data.load.TransactionLog.customer_day_order`), so each
cut-off only filters that order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.report import DataQualityReport, TransactionLogError
from rtt_models.data.threads import balanced_cuts, count_parts, map_parts

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

    def customer_range(self, first: int, stop: int) -> OccasionTable:
        """Return the occasions of customers ``first`` to ``stop - 1``, their codes counted from 0."""
        low, high = self.starts[first], self.starts[stop]
        return OccasionTable(
            customer_ids=self.customer_ids[first:stop],
            customer=self.customer[low:high] - first,
            day=self.day[low:high],
            amount=self.amount[low:high],
            quantity=self.quantity[low:high] if self.quantity is not None else None,
            starts=self.starts[first:stop + 1] - low,
            passthrough=self.passthrough.iloc[first:stop],
        )


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

    # The log's (customer, day) order, cached once per log, filtered to the window.
    all_codes, customer_ids = log.customer_codes()
    order = log.customer_day_order()
    if not isinstance(rows, slice):
        order = order[keep[order]]
    rows_per_customer = np.bincount(all_codes[rows], minlength=len(customer_ids))
    offsets = np.r_[0, np.cumsum(rows_per_customer)]

    # Ranges of customers form their occasions in parallel threads.
    inputs = _OccasionInputs(
        codes=all_codes,
        days=stamps.view("int64"),
        amounts=frame["amount"].to_numpy(dtype=float),
        quantities=frame["quantity"].to_numpy(dtype=float) if log.has_quantity else None,
        only_positive=occasion_rule == "positive" and log.has_amount,
    )
    cuts = balanced_cuts(offsets, count_parts(order.size))
    parts = map_parts(inputs.form, [order[offsets[a]:offsets[b]] for a, b in zip(cuts[:-1], cuts[1:])])

    # The occasion rule: refunds are netted into their day, which may leave it at or below zero.
    if log.has_amount:
        report.add("refund_rows_netted", sum(part.refund_rows for part in parts))
    report.add("days_excluded", sum(part.days_excluded for part in parts))
    occasion_customer = np.concatenate([part.customer for part in parts])
    occasion_day = np.concatenate([part.day for part in parts])
    occasion_amount = np.concatenate([part.amount for part in parts])
    quantity = np.concatenate([part.quantity for part in parts]) if log.has_quantity else None

    # Customers with rows in the window but no occasion (refund-only) are counted.
    has_occasion = np.zeros(len(customer_ids), dtype=bool)
    has_occasion[occasion_customer] = True
    report.add("customers_without_occasion", int(((rows_per_customer > 0) & ~has_occasion).sum()))
    remap = np.cumsum(has_occasion) - 1
    occasion_customer = remap[occasion_customer]
    kept_ids = customer_ids[has_occasion]
    starts = np.searchsorted(occasion_customer, np.arange(len(kept_ids) + 1))

    passthrough = _latest_values(frame.iloc[rows], log.passthrough, kept_ids)
    return OccasionTable(kept_ids, occasion_customer, occasion_day, occasion_amount, quantity, starts, passthrough)


@dataclass
class _DayTotals:
    """Counted occasions of one range of customers, and what the occasion rule dropped."""

    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray | None
    refund_rows: int
    days_excluded: int


@dataclass
class _OccasionInputs:
    """Row columns in log order, shape (n_rows,), from which occasions are formed."""

    codes: np.ndarray
    days: np.ndarray
    amounts: np.ndarray
    quantities: np.ndarray | None
    only_positive: bool

    def form(self, order: np.ndarray) -> _DayTotals:
        """Form the occasions of rows ``order``, which are in (customer, day) order."""
        sorted_codes = self.codes[order]
        sorted_days = self.days[order] // _NS_PER_DAY

        # One occasion per distinct (customer, day), with amounts and quantities summed per day.
        if order.size:
            new_day = np.r_[True, (sorted_codes[1:] != sorted_codes[:-1]) | (sorted_days[1:] != sorted_days[:-1])]
            bounds = np.flatnonzero(new_day)
        else:
            bounds = np.zeros(0, dtype=np.int64)
        amounts = self.amounts[order]
        amount = np.add.reduceat(amounts, bounds) if bounds.size else np.zeros(0)
        quantity = None
        if self.quantities is not None:
            quantity = np.add.reduceat(self.quantities[order], bounds) if bounds.size else np.zeros(0)

        # The "positive" rule keeps days with a net amount above zero.
        counted = amount > 0 if self.only_positive else np.ones(bounds.size, dtype=bool)
        return _DayTotals(
            customer=sorted_codes[bounds][counted].astype(np.int64, copy=False),
            day=sorted_days[bounds][counted],
            amount=amount[counted],
            quantity=quantity[counted] if quantity is not None else None,
            refund_rows=int((amounts < 0).sum()),
            days_excluded=int((~counted).sum()),
        )


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

