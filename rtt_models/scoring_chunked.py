"""Batch scores of a Parquet log larger than memory, one customer partition at a time.

The log is routed into customer partitions exactly as
:mod:`rtt_models.features.chunked` routes it (a hash of the customer id), and
each partition is then loaded, turned into features, scored and dropped.
Every customer's rows are in one partition, so each partition gives the
features, scores and rejects that the in-memory path gives its customers.
:func:`score_log_in_partitions` joins them into the same tables as
``rtt score`` on the whole log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from rtt_models.data.load import ColumnMap
from rtt_models.data.report import DataQualityReport
from rtt_models.features.chunked import iter_log_partitions
from rtt_models.features.customer import build_features
from rtt_models.scoring import batch_score_table, check_horizons, score_columns, score_in_chunks, unscorable_customers

logger = logging.getLogger("rtt_models")


@dataclass
class PartitionedScores:
    """Score and reject tables of a whole log, built one customer partition at a time.

    Attributes
    ----------
    table : DataFrame, shape (n_customers, n_score_columns)
        One row per customer of the log, indexed by ``customer_id`` in sorted
        order; rejected customers have NaN scores. It equals the table that
        :func:`~rtt_models.scoring.write_batch_scores` writes for the whole log.
    rejected : DataFrame, shape (n_rejected, 1)
        Column ``reason``, indexed by ``customer_id`` in sorted order, as from
        :func:`~rtt_models.scoring.unscorable_customers` on the whole log.
    as_of : str
        The cut-off day, ISO date.
    n_scored : int
        Customers with a feature row, and so with scores.
    n_partitions : int
        Customer partitions the log was routed into.
    first_timestamp, last_timestamp : Timestamp or None
        Earliest and latest row of the validated log, in the business time
        zone; None when no row is left.
    """

    table: pd.DataFrame
    rejected: pd.DataFrame
    as_of: str
    n_scored: int
    n_partitions: int
    first_timestamp: pd.Timestamp | None
    last_timestamp: pd.Timestamp | None


def score_log_in_partitions(
    predict: Callable[[pd.DataFrame, str], pd.DataFrame],
    source: str | os.PathLike,
    as_of,
    *,
    horizons: Sequence[int],
    n_partitions: int | None = None,
    memory_budget_mb: float | None = None,
    columns: ColumnMap | Mapping[str, object] | None = None,
    occasion_rule: str = "positive",
    timezone: str = "UTC",
    date_format: str | None = None,
    drop_duplicates: bool = True,
    chunk_customers: int = 100_000,
    report: DataQualityReport | None = None,
    progress: bool | None = False,
    temp_dir: str | os.PathLike | None = None,
) -> PartitionedScores:
    """Score every customer of a Parquet log, loading one customer partition at a time.

    Parameters
    ----------
    predict : callable
        ``predict(chunk, as_of_day)`` maps feature rows with a
        ``customer_id`` column and the cut-off day (ISO date text) to score
        rows with a ``customer_id`` column, for example ``lambda chunk, day:
        pyfunc_model.predict(chunk, params={"horizons": [30, 90], "as_of": day})``.
    source : path
        A Parquet file, or a directory of Parquet files read as one log.
    as_of : str, date or Timestamp, optional
        The cut-off. A date includes that whole day. None uses the last day
        with a row in the whole log.
    horizons : sequence of int
        The horizons ``predict`` scores, in days; they name the empty score
        columns of rejected customers.
    n_partitions, memory_budget_mb, columns, occasion_rule, timezone, date_format, drop_duplicates, temp_dir
        As in :func:`~rtt_models.features.chunked.build_features_chunked`.
        ``memory_budget_mb`` sizes the partitions of the log; the score rows
        come on top (see the Notes).
    chunk_customers : int, default 100_000
        Customers per call of ``predict`` within a partition.
    report : DataQualityReport, optional
        Receives the rows read and every repair of loading and building,
        summed over the partitions, with each note of the whole log once.
    progress : bool or None, default False
        Show a tqdm progress bar over the partitions on standard error;
        None shows it only on a terminal.

    Returns
    -------
    PartitionedScores
        The score table, the rejects, the cut-off day and the log's first
        and last timestamps. The caller writes the tables.

    Raises
    ------
    TransactionLogError
        For the problems ``load_transactions`` rejects in any partition.
    ValueError
        For invalid settings, or scores that do not have one row per
        customer of a chunk. Errors raised by ``predict`` propagate
        unchanged. The temporary partition files are removed in every case.

    Notes
    -----
    Memory. Score rows are small next to the log: one row of
    ``2 * n_horizons + 5`` values per customer, against every transaction
    row of that customer. With two horizons and short text ids a score row
    takes about 180 bytes in pandas (measured with pandas 2.3 on 500,000
    simulated customers), and the in-memory path about 300 bytes per
    transaction row (see :mod:`rtt_models.features.chunked`). The score rows and rejects of all customers are
    therefore held in memory and returned, so that the output can be sorted
    by ``customer_id`` like the in-memory path's. Writing each partition as
    a Parquet row group would save that memory but leave the rows in hash
    order. Peak memory is about one partition's working data (the budget)
    plus the model's working memory for one chunk, or up to three copies of
    the score rows of all customers while they are joined and sorted. The
    chunk's share can exceed the budget: the MLflow mean-gap scoring model
    took about 560 MiB for a chunk of 100,000 customers with two horizons
    (``experiments/bench_score_chunked.py``). Lower ``chunk_customers``
    with a small budget.
    """
    days = check_horizons(horizons)
    partitions = iter_log_partitions(
        source, as_of, n_partitions=n_partitions, memory_budget_mb=memory_budget_mb, columns=columns,
        occasion_rule=occasion_rule, timezone=timezone, date_format=date_format,
        drop_duplicates=drop_duplicates, progress=progress, temp_dir=temp_dir,
    )
    merged = DataQualityReport()
    score_parts: list[pd.DataFrame] = []
    reject_parts: list[pd.DataFrame] = []
    first_timestamp = last_timestamp = None
    as_of_day = None
    n_scored = 0

    n_partitions_read = 0
    for log, partition_report, cutoff in partitions:
        n_partitions_read += 1
        # Features and rejects come from the same partition log, so together they cover its customers.
        features = build_features(log, cutoff, occasion_rule=occasion_rule, report=partition_report)
        as_of_day = features.attrs["as_of"]
        rejected = unscorable_customers(log, cutoff, features.index, occasion_rule=occasion_rule)
        if len(log.frame):
            stamps = log.frame["timestamp"]
            first_timestamp = _earlier(first_timestamp, stamps.min())
            last_timestamp = _later(last_timestamp, stamps.max())
        del log
        merged.merge(partition_report)

        # A partition without feature rows is not scored, because its empty object-typed
        # columns would change the dtypes of the joined table.
        if len(features):
            scores = score_in_chunks(
                lambda chunk: predict(chunk, as_of_day), features, chunk_customers=chunk_customers, progress=False
            )
            score_parts.append(scores)
            n_scored += len(features)
        if len(rejected):
            reject_parts.append(rejected)
        del features

    # Partitions come in hash order, so batch_score_table sorts the joined rows by customer_id.
    scores = pd.concat(score_parts) if score_parts else _empty_scores(days)
    rejected = pd.concat(reject_parts).sort_index() if reject_parts else _empty_rejects(scores.index)
    del score_parts, reject_parts
    table = batch_score_table(scores, rejected, days)
    del scores
    logger.info(
        "scored %d customers and rejected %d in %d customer partitions", n_scored, len(rejected), n_partitions_read
    )

    # Each partition repeats the notes about the whole log, so keep one of each.
    merged.notes = list(dict.fromkeys(merged.notes))
    if report is not None:
        report.merge(merged)
    return PartitionedScores(
        table, rejected, as_of_day, n_scored, n_partitions_read, first_timestamp, last_timestamp
    )


def _earlier(current: pd.Timestamp | None, candidate: pd.Timestamp) -> pd.Timestamp:
    return candidate if current is None or candidate < current else current


def _later(current: pd.Timestamp | None, candidate: pd.Timestamp) -> pd.Timestamp:
    return candidate if current is None or candidate > current else current


def _empty_scores(horizons: list[int]) -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name="customer_id"), columns=score_columns(horizons), dtype=float)


def _empty_rejects(scored_ids: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({"reason": pd.Series([], dtype=object)}, index=scored_ids[:0].rename("customer_id"))
