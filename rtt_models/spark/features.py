"""Per-customer RTT features of a Spark DataFrame, with the same pandas code.

Spark only moves rows: every customer's rows are sent to one pandas call,
which runs :func:`~rtt_models.data.load_transactions` and
:func:`~rtt_models.features.build_features` exactly as on one machine, so the
definitions cannot drift apart.

How rows reach pandas. Each row gets a bucket,
``pmod(xxhash64(customer id as text), n_partitions)``, and
``groupBy(bucket).applyInPandas`` hands each bucket to pandas whole. A
customer's history is therefore never split, which ``mapInPandas`` could not
promise: it passes Arrow batches of at most
``spark.sql.execution.arrow.maxRecordsPerBatch`` rows (10,000 by default),
cut without regard to customers. The price is that one bucket must fit in a
Python worker's memory; raise ``n_partitions`` for larger data.

Timestamps. ``TimestampType`` values are instants: they arrive in pandas as
wall-clock times of the session time zone, are marked as such and converted
to the business time zone by the ordinary loader. ``TimestampNTZType``
values, dates and text are taken to be business wall-clock times already,
as naive pandas values are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rtt_models.data.dates import parse_timestamps
from rtt_models.data.load import ColumnMap, TransactionLog, load_transactions
from rtt_models.data.occasions import check_occasion_rule, resolve_cutoff
from rtt_models.data.report import DataQualityReport, TransactionLogError
from rtt_models.features.customer import build_features

logger = logging.getLogger("rtt_models")

#: Name of the temporary bucket column; it does not reach the output.
BUCKET_COLUMN = "_rtt_bucket"


def build_features_spark(
    spark_df,
    as_of=None,
    *,
    occasion_rule: str = "positive",
    customer_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str | None = "amount",
    quantity_col: str | None = None,
    passthrough: Sequence[str] = (),
    timezone: str = "UTC",
    date_format: str | None = None,
    drop_duplicates: bool = True,
    n_partitions: int | None = None,
):
    """Build per-customer RTT features of a Spark DataFrame of transactions.

    Parameters
    ----------
    spark_df : pyspark.sql.DataFrame
        One row per transaction.
    as_of : str, date or Timestamp, optional
        The cut-off. A date includes that whole day. None uses the last day
        with a row in the whole DataFrame (one extra pass over the
        timestamp column).
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days are purchase occasions; see ``build_features``.
    customer_col, timestamp_col : str
        Columns of customer ids and purchase times (timestamp, timestamp
        without time zone, date, or text).
    amount_col : str or None, default "amount"
        Column of net amounts (negative for refunds); None, or a name
        the DataFrame lacks when left at its default, means no amounts.
    quantity_col : str, optional
        Column of items per row.
    passthrough : sequence of str
        Columns carried to the features, each customer's value on their
        latest row.
    timezone : str, default "UTC"
        Business time zone: purchase days are calendar days there.
    date_format : str, optional
        ``strftime`` format of a text timestamp column.
    drop_duplicates : bool, default True
        Drop rows identical in every loaded column.
    n_partitions : int, optional
        Number of customer buckets, each built by one pandas call. None
        uses ``spark.sql.shuffle.partitions``.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per customer with a purchase occasion by the cut-off:
        ``customer_id`` (the input id type), then the columns of
        :func:`~rtt_models.features.build_features` (``long``, ``double``,
        and ``timestamp_ntz`` for the purchase dates), then the pass-through
        columns in their input types. Rows are in no particular order.

    Raises
    ------
    TransactionLogError
        For missing columns, an invalid cut-off, or an empty DataFrame
        without ``as_of``.
    ValueError
        For an invalid ``occasion_rule`` or ``n_partitions``.

    Notes
    -----
    The data-quality report is not returned: repairs happen on the
    executors. Text timestamps are parsed per bucket, so day/month text
    needs ``date_format`` when a bucket lacks a day above 12.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import TimestampType

    check_occasion_rule(occasion_rule)
    spark = spark_df.sparkSession
    if amount_col == "amount" and "amount" not in spark_df.columns:
        amount_col = None
    mapping = ColumnMap(customer_col, timestamp_col, amount_col, quantity_col, tuple(passthrough))
    _check_columns(spark_df, mapping)
    if n_partitions is None:
        n_partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, (int, np.integer)) or n_partitions < 1:
        raise ValueError(f"n_partitions must be a whole number >= 1, got {n_partitions!r}.")

    # Only the loaded columns travel; instants are marked with the session zone in pandas.
    names = [c for c in (customer_col, timestamp_col, amount_col, quantity_col, *passthrough) if c is not None]
    rows = spark_df.select(*dict.fromkeys(names))
    session_zone = None
    if isinstance(spark_df.schema[timestamp_col].dataType, TimestampType):
        session_zone = spark.conf.get("spark.sql.session.timeZone")
    settings = _BucketSettings(mapping, session_zone, timezone, date_format, drop_duplicates, occasion_rule)

    # The cut-off: checked on the driver, or the last day over all rows.
    if as_of is None:
        as_of = _last_day(rows, settings)
    else:
        resolve_cutoff(as_of, TransactionLog(pd.DataFrame(), timezone=timezone))

    # Buckets by a hash of the id text, each built whole by the pandas code.
    schema = feature_schema(spark_df, mapping)
    bucketed = rows.withColumn(
        BUCKET_COLUMN, F.pmod(F.xxhash64(F.col(customer_col).cast("string")), F.lit(int(n_partitions)))
    )
    column_names = schema.fieldNames()
    dtypes = _pandas_dtypes(schema)

    def features_of_bucket(frame: pd.DataFrame) -> pd.DataFrame:
        features = settings.features(frame.drop(columns=BUCKET_COLUMN), as_of)
        return _conform(features, column_names, dtypes)

    logger.info("Spark features: %d customer buckets, cut-off %s", n_partitions, as_of)
    return bucketed.groupBy(BUCKET_COLUMN).applyInPandas(features_of_bucket, schema=schema)


class _BucketSettings:
    """Settings that a pandas call needs to load one bucket: columns, time zones, date format, occasion rule."""

    def __init__(self, mapping, session_zone, timezone, date_format, drop_duplicates, occasion_rule):
        self.mapping = mapping
        self.session_zone = session_zone
        self.timezone = timezone
        self.date_format = date_format
        self.drop_duplicates = drop_duplicates
        self.occasion_rule = occasion_rule

    def localize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Mark instants with the session zone, so the loader converts them to the business zone."""
        column = self.mapping.timestamp
        if self.session_zone is not None and pd.api.types.is_datetime64_dtype(frame[column].dtype):
            frame = frame.assign(**{column: frame[column].dt.tz_localize(self.session_zone)})
        return frame

    def load(self, frame: pd.DataFrame) -> TransactionLog:
        return load_transactions(
            self.localize(frame),
            columns=self.mapping,
            date_format=self.date_format,
            timezone=self.timezone,
            drop_duplicates=self.drop_duplicates,
        )

    def features(self, frame: pd.DataFrame, as_of) -> pd.DataFrame:
        log = self.load(frame)
        return build_features(log, as_of, occasion_rule=self.occasion_rule, report=DataQualityReport())


def _check_columns(spark_df, mapping: ColumnMap) -> None:
    needed = [mapping.customer_id, mapping.timestamp, mapping.amount, mapping.quantity, *mapping.passthrough]
    missing = [name for name in needed if name is not None and name not in spark_df.columns]
    if missing:
        raise TransactionLogError(
            f"missing columns {missing}; the Spark DataFrame has columns {spark_df.columns}. Map yours with "
            "customer_col, timestamp_col, amount_col, quantity_col and passthrough."
        )


def _last_day(rows, settings: _BucketSettings) -> pd.Timestamp:
    """Find the last calendar day with a row, over the whole DataFrame, in the business time zone.

    Each Arrow batch's timestamps are parsed with the loader's own rules
    (time zones, rows without a customer id ignored), and only the batch
    maxima are collected.
    """
    customer, timestamp = settings.mapping.customer_id, settings.mapping.timestamp

    def batch_maxima(batches):
        for frame in batches:
            stamps = _business_times(frame, settings)
            last = stamps.max() if len(stamps) else pd.NaT
            yield pd.DataFrame({"last": [None if pd.isna(last) else last.isoformat()]})

    maxima = rows.select(customer, timestamp).mapInPandas(batch_maxima, "last string").collect()
    stamps = [pd.Timestamp(row["last"]) for row in maxima if row["last"] is not None]
    if not stamps:
        raise TransactionLogError("the transaction data is empty, so there is no last day to use as the cut-off.")
    return max(stamps).normalize()


def _business_times(frame: pd.DataFrame, settings: _BucketSettings) -> pd.Series:
    """Parse the timestamps of the rows that have a customer id into business wall-clock times."""
    mapping = settings.mapping
    frame = settings.localize(frame)
    ids = frame[mapping.customer_id]
    blank = ids.map(lambda value: isinstance(value, str) and not value.strip()).astype(bool)
    kept = frame.loc[ids.notna() & ~blank, mapping.timestamp].reset_index(drop=True)
    return parse_timestamps(
        kept,
        column=mapping.timestamp,
        date_format=settings.date_format,
        timezone=settings.timezone,
        line_of=lambda position: f"row {position} of a Spark batch",
        report=DataQualityReport(),
    )


def feature_schema(spark_df, mapping: ColumnMap):
    """Spark schema of the features of a DataFrame with these columns.

    The feature columns and their types come from running
    ``build_features`` on a two-row log with the same column layout, so the
    schema follows the feature builder when it gains or loses a column.
    """
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType, TimestampNTZType

    probe = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": pd.to_datetime(["2023-01-01", "2023-01-08"])})
    probe_columns = {"passthrough": ()}
    if mapping.amount is not None:
        probe["amount"] = [10.0, 20.0]
        probe_columns["amount"] = "amount"
    if mapping.quantity is not None:
        probe["quantity"] = [1.0, 2.0]
        probe_columns["quantity"] = "quantity"
    features = build_features(load_transactions(probe, columns=probe_columns))

    fields = [StructField("customer_id", spark_df.schema[mapping.customer_id].dataType, nullable=False)]
    for name, dtype in features.dtypes.items():
        if pd.api.types.is_integer_dtype(dtype):
            spark_type = LongType()
        elif pd.api.types.is_datetime64_dtype(dtype):
            spark_type = TimestampNTZType()
        else:
            spark_type = DoubleType()
        fields.append(StructField(name, spark_type, nullable=True))
    for name in mapping.passthrough:
        fields.append(StructField(name, spark_df.schema[name].dataType, nullable=True))
    return StructType(fields)


def _pandas_dtypes(schema) -> dict[str, str]:
    from pyspark.sql.types import DoubleType, LongType, TimestampNTZType

    dtypes = {}
    for field in schema.fields:
        if isinstance(field.dataType, LongType):
            dtypes[field.name] = "int64"
        elif isinstance(field.dataType, DoubleType):
            dtypes[field.name] = "float64"
        elif isinstance(field.dataType, TimestampNTZType):
            dtypes[field.name] = "datetime64[ns]"
    return dtypes


def _conform(features: pd.DataFrame, column_names: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """Put a bucket's features in the schema's column order and types (an empty bucket has object columns)."""
    frame = features.reset_index()
    frame = frame[column_names]
    if frame.empty:
        return frame.astype({name: dtype for name, dtype in dtypes.items() if name != "customer_id"})
    return frame
