"""Features of a Parquet log larger than memory, one customer partition at a time.

The log is read twice, never whole:

1. **Routing.** Record batches of only the needed columns are read in turn.
   Each batch's timestamps are parsed (so the cut-off default, the last day
   of the whole log, is found over every row), and each row goes to
   partition ``hash(customer id text) % n_partitions`` in a temporary
   Parquet file. All rows of a customer land in the same partition, because
   the hash depends only on the id (``pandas.util.hash_array`` with its
   fixed default key).
2. **Building.** Each partition is loaded and built with the ordinary
   in-memory path (:func:`~rtt_models.data.load_transactions`, then
   :func:`~rtt_models.features.build_features`) at the cut-off resolved in
   step 1. The definitions are therefore identical to those of
   ``build_features`` on the whole log: duplicates, refunds and occasions
   never cross customers, so no statistic crosses partitions.

The temporary files live in one temporary directory, removed when the build
ends, also when it fails.

Memory rule. ``n_partitions = ceil(n_rows * bytes_per_row / budget)``, where
``n_rows`` comes from the Parquet metadata. ``bytes_per_row`` is the peak
memory of the in-memory path per transaction row, above the interpreter. It
was measured on a simulated log of 1,000,594 rows (pandas 2.3, pyarrow 25,
x86-64): 306 bytes with ``customer_id``, ``timestamp`` and ``amount``, and
490 bytes with two text pass-through columns, so about 92 bytes per extra
column. The constants below round these up. The interpreter
with pandas and pyarrow adds about 105 MiB, and the returned table of
:func:`build_features_chunked` (about 300 bytes per customer, held twice
while the partitions are concatenated) comes on top of the budget. Use
:func:`iter_feature_partitions` to keep only one partition in memory.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rtt_models.data.dates import parse_timestamps
from rtt_models.data.load import ColumnMap, TransactionLog, _resolve_columns, load_transactions
from rtt_models.data.occasions import check_occasion_rule
from rtt_models.data.report import DataQualityReport, TransactionLogError
from rtt_models.features.customer import build_features

logger = logging.getLogger("rtt_models")

#: Peak bytes per row of the in-memory path with customer id, timestamp and amount.
BYTES_PER_ROW = 320
#: Additional peak bytes per row for each quantity or pass-through column.
BYTES_PER_EXTRA_COLUMN = 100
#: Memory budget used when neither ``n_partitions`` nor ``memory_budget_mb`` is given, in MiB.
DEFAULT_MEMORY_BUDGET_MB = 1024
#: Bounds of the rows read per routing batch.
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 10_000, 2_000_000
#: Largest number of partitions (each is one open temporary file while routing).
MAX_PARTITIONS = 4096


def build_features_chunked(
    source: str | os.PathLike,
    as_of=None,
    *,
    n_partitions: int | None = None,
    memory_budget_mb: float | None = None,
    columns: ColumnMap | Mapping[str, object] | None = None,
    occasion_rule: str = "positive",
    timezone: str = "UTC",
    date_format: str | None = None,
    drop_duplicates: bool = True,
    report: DataQualityReport | None = None,
    progress: bool | None = False,
    temp_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Build per-customer RTT features of a Parquet log in customer partitions.

    The result equals ``build_features(load_transactions(source, ...), as_of)``
    and needs memory for one partition instead of the whole log (see the
    module docstring for the partition rule).

    Parameters
    ----------
    source : path
        A Parquet file, or a directory of Parquet files read as one log.
    as_of : str, date or Timestamp, optional
        The cut-off. A date includes that whole day. None uses the last day
        with a row in the whole log.
    n_partitions : int, optional
        Number of customer partitions, 1 to 4096. None derives it from
        ``memory_budget_mb`` and the row count.
    memory_budget_mb : float, optional
        Memory for one partition's working data, in MiB. None uses
        1024 MiB when ``n_partitions`` is also None. It also sets the rows
        read per routing batch.
    columns : ColumnMap or dict, optional
        Source column names, as for :func:`~rtt_models.data.load_transactions`.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days are purchase occasions; see ``build_features``.
    timezone : str, default "UTC"
        Business time zone: purchase days are calendar days there.
    date_format : str, optional
        ``strftime`` format of a text timestamp column. Recommended for
        day/month text dates; see the Notes.
    drop_duplicates : bool, default True
        Drop rows identical in every loaded column, counting them.
    report : DataQualityReport, optional
        Receives the rows read and every repair of loading and building,
        summed over the partitions.
    progress : bool or None, default False
        Show a tqdm progress bar over the partitions on standard error;
        None shows it only on a terminal.
    temp_dir : path, optional
        Where the temporary directory of partition files is made; default
        the system's temporary directory.

    Returns
    -------
    DataFrame, shape (n_customers, n_features)
        Indexed by ``customer_id`` in sorted order, with the columns of
        :func:`~rtt_models.features.build_features` and its ``attrs["as_of"]``.

    Raises
    ------
    TransactionLogError
        For the problems ``load_transactions`` rejects, an empty log without
        ``as_of``, or batches whose text dates infer different formats.
    ValueError
        For invalid ``n_partitions``, ``memory_budget_mb`` or ``occasion_rule``.

    Notes
    -----
    Text timestamps are parsed batch by batch. ISO 8601 text needs no
    format, but the order of day/month text such as ``04/05/2023`` is
    inferred per batch. A batch without a day above 12 therefore raises the
    error that names ``date_format``, even where another batch proves the
    order.
    """
    results = []
    merged = DataQualityReport()
    for features, partition_report in iter_feature_partitions(
        source,
        as_of,
        n_partitions=n_partitions,
        memory_budget_mb=memory_budget_mb,
        columns=columns,
        occasion_rule=occasion_rule,
        timezone=timezone,
        date_format=date_format,
        drop_duplicates=drop_duplicates,
        progress=progress,
        temp_dir=temp_dir,
    ):
        merged.merge(partition_report)
        results.append(features)

    # Partitions come in hash order, so the joined table is sorted once. Empty partitions are left
    # out because their object-typed columns would change the dtypes of the joined table.
    as_of_day = results[0].attrs["as_of"]
    non_empty = [frame for frame in results if len(frame)] or results[:1]
    table = pd.concat(non_empty) if len(non_empty) > 1 else non_empty[0]
    del results, non_empty
    table = table.sort_index(kind="stable")
    table.attrs["as_of"] = as_of_day

    # Each partition repeats the log-wide notes; keep one of each.
    merged.notes = list(dict.fromkeys(merged.notes))
    if report is not None:
        report.merge(merged)
    return table


def iter_feature_partitions(
    source: str | os.PathLike,
    as_of=None,
    *,
    n_partitions: int | None = None,
    memory_budget_mb: float | None = None,
    columns: ColumnMap | Mapping[str, object] | None = None,
    occasion_rule: str = "positive",
    timezone: str = "UTC",
    date_format: str | None = None,
    drop_duplicates: bool = True,
    progress: bool | None = False,
    temp_dir: str | os.PathLike | None = None,
) -> Iterator[tuple[pd.DataFrame, DataQualityReport]]:
    """Yield the features of a Parquet log one customer partition at a time.

    Parameters are those of :func:`build_features_chunked`. The settings
    are checked and the Parquet metadata read when this function is called;
    routing starts at the first ``next()``.

    Yields
    ------
    features : DataFrame, shape (n_customers_in_partition, n_features)
        Features of the customers of one partition, indexed by
        ``customer_id`` in sorted order, at the cut-off resolved over the
        whole log (``attrs["as_of"]``). Every customer is in exactly one
        partition; a partition may be empty.
    report : DataQualityReport
        Rows read and repairs of this partition. Notes about the whole log,
        such as an inferred date format, repeat in every partition's report.

    Notes
    -----
    The temporary files are removed when the iteration ends or raises, and
    when the iterator is closed by ``close()`` or garbage collection. Close
    an iterator abandoned early to free the disk space at once.
    """
    plan = _plan(source, n_partitions, memory_budget_mb, columns, occasion_rule, timezone, date_format)
    return _partition_features(plan, as_of, drop_duplicates=drop_duplicates, progress=progress, temp_dir=temp_dir)


def plan_partitions(n_rows: int, memory_budget_mb: float, n_extra_columns: int = 0) -> int:
    """Return the number of customer partitions for a log and a memory budget.

    Parameters
    ----------
    n_rows : int
        Transaction rows in the log.
    memory_budget_mb : float
        Memory for one partition's working data, in MiB.
    n_extra_columns : int, default 0
        Quantity and pass-through columns loaded besides id, timestamp and
        amount.

    Returns
    -------
    int
        ``ceil(n_rows * bytes_per_row / budget)``, at least 1; the constants
        are in the module docstring.
    """
    _check_budget(memory_budget_mb)
    bytes_per_row = BYTES_PER_ROW + BYTES_PER_EXTRA_COLUMN * n_extra_columns
    needed = math.ceil(n_rows * bytes_per_row / (memory_budget_mb * 2**20))
    if needed > MAX_PARTITIONS:
        raise ValueError(
            f"{n_rows:,} rows need {needed:,} partitions for a memory budget of {memory_budget_mb} MiB, more "
            f"than the maximum of {MAX_PARTITIONS}; raise the memory budget."
        )
    return max(1, needed)


class _Plan:
    """Settings of one chunked build, checked, with the Parquet files and columns to read."""

    def __init__(self, files, n_rows, mapping, n_partitions, batch_rows, occasion_rule, timezone, date_format):
        self.files = files
        self.n_rows = n_rows
        self.mapping = mapping
        self.n_partitions = n_partitions
        self.batch_rows = batch_rows
        self.occasion_rule = occasion_rule
        self.timezone = timezone
        self.date_format = date_format

    @property
    def read_columns(self) -> list[str]:
        mapping = self.mapping
        names = [mapping.customer_id, mapping.timestamp, mapping.amount, mapping.quantity, *mapping.passthrough]
        return list(dict.fromkeys(name for name in names if name is not None))


def _plan(source, n_partitions, memory_budget_mb, columns, occasion_rule, timezone, date_format) -> _Plan:
    """Check the settings, list the Parquet files and choose partitions and batch size."""
    check_occasion_rule(occasion_rule)
    files = _parquet_files(source)
    schema = pq.read_schema(files[0])
    mapping = _resolve_columns(ColumnMap.from_mapping(columns), schema.names)
    n_rows = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    n_extra = len(mapping.passthrough) + (mapping.quantity is not None)

    # The partition count follows the budget unless it is given.
    if n_partitions is not None:
        if isinstance(n_partitions, bool) or not isinstance(n_partitions, (int, np.integer)):
            raise ValueError(f"n_partitions must be a whole number from 1 to {MAX_PARTITIONS}, got {n_partitions!r}.")
        if not 1 <= n_partitions <= MAX_PARTITIONS:
            raise ValueError(f"n_partitions must be from 1 to {MAX_PARTITIONS}, got {n_partitions}.")
        n_partitions = int(n_partitions)
    budget = DEFAULT_MEMORY_BUDGET_MB if memory_budget_mb is None else memory_budget_mb
    if n_partitions is None:
        n_partitions = plan_partitions(n_rows, budget, n_extra)
    _check_budget(budget)

    # A routing batch makes a few copies of its rows, so it reads a quarter of the rows the budget allows.
    bytes_per_row = BYTES_PER_ROW + BYTES_PER_EXTRA_COLUMN * n_extra
    batch_rows = int(np.clip(budget * 2**20 / bytes_per_row / 4, MIN_BATCH_ROWS, MAX_BATCH_ROWS))
    logger.info(
        "chunked features: %d rows in %d Parquet files, %d customer partitions, %d rows per routing batch",
        n_rows, len(files), n_partitions, batch_rows,
    )
    return _Plan(files, n_rows, mapping, n_partitions, batch_rows, occasion_rule, timezone, date_format)


def _check_budget(memory_budget_mb) -> None:
    is_number = isinstance(memory_budget_mb, (int, float, np.integer, np.floating)) and not isinstance(
        memory_budget_mb, bool
    )
    if not is_number or not np.isfinite(memory_budget_mb) or memory_budget_mb <= 0:
        raise ValueError(f"memory_budget_mb must be a positive number of MiB, got {memory_budget_mb!r}.")


def _parquet_files(source) -> list[Path]:
    """List the Parquet file, or the sorted Parquet files under a directory."""
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
        if files:
            return files
        raise TransactionLogError(f"directory {os.fspath(source)!r} has no .parquet or .pq files; check the path.")
    raise TransactionLogError(f"transaction file {os.fspath(source)!r} not found; check the path.")


def iter_log_partitions(
    source: str | os.PathLike,
    as_of=None,
    *,
    n_partitions: int | None = None,
    memory_budget_mb: float | None = None,
    columns: ColumnMap | Mapping[str, object] | None = None,
    occasion_rule: str = "positive",
    timezone: str = "UTC",
    date_format: str | None = None,
    drop_duplicates: bool = True,
    progress: bool | None = False,
    temp_dir: str | os.PathLike | None = None,
) -> Iterator[tuple[TransactionLog, DataQualityReport, pd.Timestamp]]:
    """Yield the validated log of one customer partition at a time.

    Parameters are those of :func:`build_features_chunked`; ``occasion_rule``
    is only checked here. Use it for work that needs each partition's rows
    and not only its features, such as listing customers without a score.

    Yields
    ------
    log : TransactionLog
        The rows of the customers of one partition, loaded and repaired as
        :func:`~rtt_models.data.load_transactions` does.
    report : DataQualityReport
        A copy of the partition's loading report, plus the notes about the
        whole log (such as an inferred date format) in every partition.
    as_of : Timestamp or str
        The cut-off to build at: ``as_of`` as given, or the last day with a
        row in the whole log when it is None.
    """
    plan = _plan(source, n_partitions, memory_budget_mb, columns, occasion_rule, timezone, date_format)
    return _partition_logs(plan, as_of, drop_duplicates=drop_duplicates, progress=progress, temp_dir=temp_dir)


def _partition_logs(plan: _Plan, as_of, *, drop_duplicates, progress, temp_dir):
    """Route the log into partition files, then load and yield each partition's log."""
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="rtt-partitions-", dir=temp_dir) as folder:
        paths, last_stamp, notes = _route(plan, Path(folder))

        # The default cut-off is the last day of the whole log, never of one partition.
        if as_of is None:
            if last_stamp is None:
                raise TransactionLogError(
                    "the transaction log is empty, so there is no last day to use as the cut-off."
                )
            as_of = last_stamp.normalize()

        bar = tqdm(paths, desc="partitions", unit="partition", disable=_disable(progress), leave=False)
        for path in bar:
            frame = pq.read_table(path).to_pandas()
            path.unlink()
            log = load_transactions(
                frame, columns=plan.mapping, timezone=plan.timezone, drop_duplicates=drop_duplicates
            )
            del frame
            report = log.report.copy()
            report.notes.extend(notes)
            yield log, report, as_of


def _partition_features(plan: _Plan, as_of, *, drop_duplicates, progress, temp_dir):
    """Build and yield the features of each partition's log."""
    for log, report, cutoff in _partition_logs(
        plan, as_of, drop_duplicates=drop_duplicates, progress=progress, temp_dir=temp_dir
    ):
        features = build_features(log, cutoff, occasion_rule=plan.occasion_rule, report=report)
        del log
        yield features, report


def _disable(progress: bool | None) -> bool | None:
    # tqdm's disable=None shows the bar only on a terminal.
    return None if progress is None else not progress


def _route(plan: _Plan, folder: Path) -> tuple[list[Path], pd.Timestamp | None, list[str]]:
    """Write each row to its customer partition's file; return the files, the last timestamp and date notes.

    Every partition gets a file, an empty one when no customer hashes to it,
    so that an all-empty log still yields its (empty) features.
    """
    mapping = plan.mapping
    paths = [folder / f"partition-{number:05d}.parquet" for number in range(plan.n_partitions)]
    writers: list[pq.ParquetWriter | None] = [None] * plan.n_partitions
    spill_schema = None
    last_stamp = None
    date_notes: list[str] = []
    row_offset = 0
    try:
        for path in plan.files:
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=plan.batch_rows, columns=plan.read_columns):
                # Timestamps are parsed here, so partition files contain typed times in the business zone.
                batch, stamp, notes = _parse_batch(batch, plan, row_offset)
                row_offset += batch.num_rows
                if stamp is not None and (last_stamp is None or stamp > last_stamp):
                    last_stamp = stamp
                date_notes = _check_date_notes(date_notes, notes, mapping.timestamp)
                if spill_schema is None:
                    spill_schema = batch.schema

                # Rows sorted by partition, then written as one slice per partition.
                partition = _partition_of(batch.column(mapping.customer_id), plan.n_partitions)
                order = np.argsort(partition, kind="stable")
                counts = np.bincount(partition, minlength=plan.n_partitions)
                ordered = batch.take(pa.array(order))
                bounds = np.r_[0, np.cumsum(counts)]
                for number in np.flatnonzero(counts):
                    if writers[number] is None:
                        writers[number] = pq.ParquetWriter(paths[number], spill_schema)
                    piece = ordered.slice(bounds[number], counts[number])
                    writers[number].write_batch(piece.cast(spill_schema))
    finally:
        for writer in writers:
            if writer is not None:
                writer.close()

    # Partitions without rows get an empty file with the same columns.
    if spill_schema is None:
        spill_schema = _spill_schema(pq.read_schema(plan.files[0]), plan.read_columns, mapping.timestamp)
    for number, writer in enumerate(writers):
        if writer is None:
            pq.write_table(spill_schema.empty_table(), paths[number])
    logger.info("routed %d rows into %d customer partitions in %s", row_offset, plan.n_partitions, folder)
    return paths, last_stamp, date_notes


def _spill_schema(schema: pa.Schema, names: list[str], timestamp: str) -> pa.Schema:
    fields = [schema.field(name) for name in names]
    return pa.schema([pa.field(f.name, pa.timestamp("ns")) if f.name == timestamp else f for f in fields])


def _parse_batch(batch: pa.RecordBatch, plan: _Plan, row_offset: int):
    """Replace the timestamp column by parsed times; return the batch, its last time and the date notes.

    As in ``load_transactions``, only rows with a customer id are parsed:
    rows without one get a missing time and are dropped, and counted, when
    their partition is loaded.
    """
    mapping = plan.mapping
    has_id = ~_missing_ids(batch.column(mapping.customer_id))
    stamps = batch.column(mapping.timestamp).to_pandas()
    report = DataQualityReport()
    parsed = pd.Series(pd.NaT, index=stamps.index, dtype="datetime64[ns]")
    if has_id.any():
        kept = stamps[has_id].reset_index(drop=True)
        positions = np.flatnonzero(has_id) + row_offset
        values = parse_timestamps(
            kept,
            column=mapping.timestamp,
            date_format=plan.date_format,
            timezone=plan.timezone,
            line_of=lambda p: f"row {int(positions[p])}",
            report=report,
        )
        parsed[has_id] = values.to_numpy()
    last = parsed.max()
    column = pa.array(parsed.to_numpy(), type=pa.timestamp("ns"), from_pandas=True)
    index = batch.schema.get_field_index(mapping.timestamp)
    batch = batch.set_column(index, pa.field(mapping.timestamp, pa.timestamp("ns")), column)
    # The source's pandas metadata would restore its time zone on the already converted wall-clock times.
    batch = batch.replace_schema_metadata(None)
    return batch, (None if pd.isna(last) else last), report.notes


def _missing_ids(ids: pa.Array) -> np.ndarray:
    """Mark null ids and blank text ids, the rows ``load_transactions`` drops, shape (n_rows,)."""
    missing = pc.is_null(ids, nan_is_null=True)
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        blank = pc.equal(pc.utf8_trim_whitespace(ids), "")
        missing = pc.or_(missing, pc.fill_null(blank, True))
    return missing.to_numpy(zero_copy_only=False)


def _partition_of(ids: pa.Array, n_partitions: int) -> np.ndarray:
    """Partition number of each row: a stable 64-bit hash of the id's text, modulo ``n_partitions``."""
    texts = pc.fill_null(pc.cast(ids, pa.string()), "").to_numpy(zero_copy_only=False)
    hashes = pd.util.hash_array(texts.astype(object))
    return (hashes % np.uint64(n_partitions)).astype(np.int64)


def _check_date_notes(seen: list[str], notes: list[str], column: str) -> list[str]:
    """Keep the inferred-format notes, and raise when two batches inferred different formats."""
    merged = list(dict.fromkeys([*seen, *notes]))
    if len(merged) > 1:
        raise TransactionLogError(
            f"batches of column {column!r} infer different date formats ({' / '.join(merged)}); "
            "pass the format with date_format (--date-format)."
        )
    return merged
