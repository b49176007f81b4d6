"""Score tables: one row of next-purchase scores per customer, and batch scoring in chunks.

This module contains the scoring logic that the MLflow scoring model
(:mod:`rtt_models.tracking.pyfunc`) and the ``rtt score`` command share. It
does not import MLflow: :func:`score_features` scores with a fitted model in
memory, and :func:`score_in_chunks` scores with any callable that maps a
chunk of feature rows to score rows, for example a loaded MLflow model.

Score columns, per customer (days count from the as-of date, day 1 is the
day after it):

==================================  ==========================================
``customer_id``                     the customer
``p_purchase_{h}d``                 P(at least one purchase within h days)
``expected_occasions_{h}d``         expected purchase occasions within h days
``median_days_to_next``             median days to the next purchase; NaN when
                                    it lies beyond 730 days
``expected_days_to_next``           E[min(T, H)] in days, H the largest horizon
``expected_next_purchase_date``     as-of date + ceil(median days), ISO date;
                                    missing where the median is NaN
``risk_score``                      lapse risk S(H); higher is more likely to
                                    lapse
``p_alive``                         P(not churned) for BTYD families, else NaN
==================================  ==========================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rtt_models.models.base import MAX_HORIZON_DAYS

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import resolve_cutoff

logger = logging.getLogger("rtt_models")

#: Columns a score table has besides the per-horizon ones, in output order.
SCORE_SUMMARY_COLUMNS: tuple[str, ...] = (
    "median_days_to_next",
    "expected_days_to_next",
    "expected_next_purchase_date",
    "risk_score",
    "p_alive",
)


def score_columns(horizons: Sequence[int]) -> list[str]:
    """Return the columns of a score table for the given horizons (days), without ``customer_id``."""
    days = sorted({int(h) for h in horizons})
    return (
        [f"p_purchase_{h}d" for h in days]
        + [f"expected_occasions_{h}d" for h in days]
        + list(SCORE_SUMMARY_COLUMNS)
    )


def check_horizons(horizons: Any) -> list[int]:
    """Validate horizons in whole days and return them sorted without repeats.

    Raises
    ------
    ValueError
        When ``horizons`` is not a non-empty list of whole days >= 1.
    """
    values = np.atleast_1d(np.asarray(horizons, dtype=object))
    if values.size == 0:
        raise ValueError("horizons is empty; pass whole days >= 1, for example [30, 90].")
    days = []
    for value in values:
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not is_number or not np.isfinite(value) or value < 1 or value != int(value):
            raise ValueError(f"horizons must be whole days >= 1, for example [30, 90]; got {list(values)}.")
        if value > MAX_HORIZON_DAYS:
            raise ValueError(f"horizons must be at most {MAX_HORIZON_DAYS} days; got {int(value)}.")
        days.append(int(value))
    return sorted(set(days))


def check_as_of(as_of: Any) -> pd.Timestamp:
    """Parse the as-of date into a midnight Timestamp.

    Raises
    ------
    ValueError
        When ``as_of`` is not a date such as ``"2023-06-30"``.
    """
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError) as err:
        raise ValueError(f"as_of {as_of!r} is not a date; write it as YYYY-MM-DD.") from err
    if stamp is pd.NaT:
        raise ValueError(f"as_of {as_of!r} is missing; write it as YYYY-MM-DD.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def score_features(model, features: pd.DataFrame, horizons: Sequence[int], as_of) -> pd.DataFrame:
    """Score per-customer features with a fitted next-purchase model.

    Parameters
    ----------
    model : NextPurchaseModel
        A fitted model.
    features : DataFrame, shape (n_customers, n_columns)
        Per-customer features at ``as_of``, indexed by ``customer_id`` or with
        a ``customer_id`` column. Columns the model does not read are
        ignored.
    horizons : sequence of int
        Horizons in whole days after ``as_of``, each >= 1.
    as_of : str, date or Timestamp
        The cut-off the features were built at. When the features contain
        ``last_purchase_date`` and ``elapsed_days``, their sum must equal it.

    Returns
    -------
    DataFrame, shape (n_customers, 2 * n_horizons + 5)
        Indexed by ``customer_id`` in input order; columns as in the module
        docstring.

    Raises
    ------
    ValueError
        For bad horizons, a bad ``as_of``, an ``as_of`` that disagrees with
        the features, or features the model rejects (missing columns,
        duplicated customers, negative elapsed days).
    """
    days = check_horizons(horizons)
    cutoff_day = check_as_of(as_of)
    frame = features.set_index("customer_id") if "customer_id" in features.columns else features
    _check_cutoff_matches(frame, cutoff_day)

    predictions = model.predict(frame, horizons=days)

    # The date uses the median because the expected days are capped at the
    # largest horizon. Day 1 is the day after the cut-off, so days round up.
    predictions["expected_next_purchase_date"] = _dates_after(
        cutoff_day, predictions["median_days_to_next"].to_numpy(dtype=float)
    )
    return predictions[score_columns(days)]


def _dates_after(cutoff_day: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """Return the ISO dates ``cutoff_day + ceil(days)``, None where ``days`` is NaN, shape (n,).

    Medians stop at the search limit, so there are at most a few hundred
    distinct whole days. Each is formatted once and the strings are shared.
    """
    whole = np.ceil(days)
    known = np.isfinite(whole)
    distinct, inverse = np.unique(whole[known], return_inverse=True)
    labels = (cutoff_day + pd.to_timedelta(distinct, unit="D")).strftime("%Y-%m-%d").to_numpy(dtype=object)
    dates = np.full(days.shape, None, dtype=object)
    dates[known] = labels[inverse]
    return dates


def _check_cutoff_matches(frame: pd.DataFrame, cutoff_day: pd.Timestamp) -> None:
    """Reject an as-of date that disagrees with last_purchase_date + elapsed_days."""
    if "last_purchase_date" not in frame.columns or "elapsed_days" not in frame.columns:
        return
    last = pd.to_datetime(frame["last_purchase_date"], errors="coerce").to_numpy(dtype="datetime64[ns]")
    elapsed = pd.to_numeric(frame["elapsed_days"], errors="coerce").to_numpy(dtype=float)

    # Whole days from each last purchase to the cut-off, compared as numbers:
    # a million timedeltas would cost more than the scores themselves.
    known = ~np.isnat(last) & np.isfinite(elapsed)
    days_to_cutoff = (cutoff_day.to_datetime64() - last).astype("timedelta64[ns]").astype(np.int64) / 86_400e9
    mismatched = np.flatnonzero(known & (np.abs(days_to_cutoff - elapsed) > 1e-9))
    if mismatched.size:
        implied = pd.DatetimeIndex(last[mismatched]) + pd.to_timedelta(elapsed[mismatched], unit="D")
        seen = sorted(implied.strftime("%Y-%m-%d").unique())[:3]
        raise ValueError(
            f"as_of {cutoff_day.date()} does not match the cut-off of the features: last_purchase_date + "
            f"elapsed_days gives {', '.join(seen)} for {mismatched.size} customers, for example "
            f"{frame.index[mismatched[:3]].tolist()}; pass as_of equal to the date the features were built at."
        )


def unscorable_customers(log: TransactionLog, as_of, scored_ids: pd.Index, *, occasion_rule: str) -> pd.DataFrame:
    """List the customers of a log that have no score, with the reason.

    Parameters
    ----------
    log : TransactionLog
        The log the features were built from.
    as_of : str, date or Timestamp
        The cut-off of the features.
    scored_ids : Index
        Customer ids that have a feature row.
    occasion_rule : {"positive", "all"}
        The occasion rule the features used; it decides the reason given.

    Returns
    -------
    DataFrame, shape (n_rejected, 1)
        Column ``reason``, indexed by ``customer_id`` in sorted order.
    """
    cutoff = resolve_cutoff(as_of, log)
    frame = log.frame
    before = frame.loc[frame["timestamp"] < cutoff.end, "customer_id"].unique()
    everyone = pd.Index(frame["customer_id"].unique(), name="customer_id")
    missing = everyone.difference(scored_ids)
    has_rows_before = missing.isin(before)
    if occasion_rule == "all" or not log.has_amount:
        no_occasion = "no purchase occasion by the as-of date"
    else:
        no_occasion = "no purchase occasion by the as-of date: every day had a net amount <= 0 (refunds only or net zero)"
    reasons = np.where(has_rows_before, no_occasion, "first transaction after the as-of date")
    return pd.DataFrame({"reason": reasons}, index=missing).sort_index()


def score_in_chunks(
    predict: Callable[[pd.DataFrame], pd.DataFrame],
    features: pd.DataFrame,
    *,
    chunk_customers: int = 100_000,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Score feature rows in chunks of customers and concatenate the score rows.

    Parameters
    ----------
    predict : callable
        Maps a DataFrame of feature rows with a ``customer_id`` column to
        score rows with a ``customer_id`` column, for example
        ``lambda chunk: pyfunc_model.predict(chunk, params=...)``.
    features : DataFrame, shape (n_customers, n_columns)
        One row per customer, indexed by ``customer_id``.
    chunk_customers : int, default 100_000
        Customers per call of ``predict``.
    progress : bool or None, default None
        Whether to show a tqdm progress bar on standard error; None shows it
        only on a terminal.

    Returns
    -------
    DataFrame, shape (n_customers, n_score_columns)
        Indexed by ``customer_id`` in the order of ``features``.

    Raises
    ------
    ValueError
        When ``chunk_customers`` is below 1, or a chunk's scores do not have
        exactly one row per customer of that chunk. Errors raised by
        ``predict`` propagate unchanged, and nothing is returned.
    """
    import sys

    from tqdm import tqdm

    if int(chunk_customers) < 1:
        raise ValueError(f"chunk_customers must be >= 1, got {chunk_customers}.")
    if features.index.has_duplicates:
        raise ValueError("features have duplicated customer_id values; pass one row per customer.")
    rows = features.reset_index()
    n_chunks = max(1, -(-len(rows) // int(chunk_customers)))

    parts = []
    with tqdm(total=len(rows), desc="scoring", unit="customer", file=sys.stderr, disable=_disable(progress)) as bar:
        for number, start in enumerate(range(0, max(len(rows), 1), int(chunk_customers)), start=1):
            chunk = rows.iloc[start : start + int(chunk_customers)]
            scores = pd.DataFrame(predict(chunk))
            _check_chunk(scores, chunk["customer_id"], number, n_chunks)
            parts.append(scores.set_index("customer_id"))
            bar.update(len(chunk))
    logger.info("scored %d customers in %d chunks", len(rows), n_chunks)
    return pd.concat(parts).reindex(features.index)


def write_batch_scores(
    predict: Callable[[pd.DataFrame], pd.DataFrame],
    features: pd.DataFrame,
    out,
    *,
    horizons: Sequence[int],
    rejected: pd.DataFrame | None = None,
    chunk_customers: int = 100_000,
    progress: bool | None = None,
    as_of: str | None = None,
) -> pd.DataFrame:
    """Score features in chunks and write one row per customer, scored or rejected, atomically.

    Parameters
    ----------
    predict, features, chunk_customers, progress
        As in :func:`score_in_chunks`.
    out : path
        Output file, CSV or Parquet by its extension. It is written once,
        after every chunk has been scored, through a temporary file and a
        rename. A failure leaves no file there, or the previous file intact.
    horizons : sequence of int
        The horizons ``predict`` scores, in days; they name the empty score
        columns of rejected customers.
    rejected : DataFrame, optional
        Customers without features, indexed by ``customer_id`` (for example
        from :func:`unscorable_customers`); they get a row with empty scores.
    as_of : str, optional
        The scoring cut-off, ISO date. It is stored as ``attrs["as_of"]``,
        which a Parquet file keeps, so a later ranking can check it.

    Returns
    -------
    DataFrame
        The table written, indexed by ``customer_id`` in sorted order.
    """
    from rtt_models.data.write import table_format, write_table

    table_format(out)
    scores = score_in_chunks(predict, features, chunk_customers=chunk_customers, progress=progress)
    table = batch_score_table(scores, rejected, horizons)
    if as_of is not None:
        table.attrs["as_of"] = str(as_of)
    write_table(table, out)
    return table


def batch_score_table(scores: pd.DataFrame, rejected: pd.DataFrame | None, horizons: Sequence[int]) -> pd.DataFrame:
    """Join score rows and empty rows for rejected customers into one table sorted by customer.

    Parameters
    ----------
    scores : DataFrame, shape (n_scored, n_score_columns)
        Score rows indexed by ``customer_id``, as from :func:`score_in_chunks`.
    rejected : DataFrame or None, shape (n_rejected, 1)
        Customers without features, indexed by ``customer_id``.
    horizons : sequence of int
        The horizons of ``scores``, in days; they name the empty score
        columns of the rejected customers.

    Returns
    -------
    DataFrame, shape (n_scored + n_rejected, n_score_columns)
        Indexed by ``customer_id`` in sorted order; the rows of rejected
        customers have NaN scores and a missing date.
    """
    parts = [scores]
    if rejected is not None and len(rejected):
        empty = pd.DataFrame(index=rejected.index, columns=score_columns(horizons), dtype=float)
        empty["expected_next_purchase_date"] = None
        parts.append(empty)
    table = pd.concat(parts).sort_index()
    table.index.name = "customer_id"
    return table


def _disable(progress: bool | None) -> bool | None:
    # tqdm's disable=None turns the bar off when the output is not a terminal.
    return None if progress is None else not progress


def _check_chunk(scores: pd.DataFrame, expected_ids: pd.Series, number: int, n_chunks: int) -> None:
    if "customer_id" not in scores.columns:
        raise ValueError(f"scores of chunk {number}/{n_chunks} have no customer_id column.")
    got = scores["customer_id"]
    if len(got) != len(expected_ids) or got.duplicated().any() or not got.isin(expected_ids).all():
        raise ValueError(
            f"scores of chunk {number}/{n_chunks} have {len(got)} rows for {len(expected_ids)} customers; "
            "the scoring model must return exactly one row per input customer."
        )
