"""Load transaction logs from DataFrames, CSV, Parquet and the CDNOW formats.

Every loader returns a :class:`TransactionLog`: one canonical frame plus the
data-quality report of what was repaired on the way in. The canonical frame
has the columns

* ``customer_id``: the id as given (text for files, so leading zeros stay);
* ``timestamp``: datetime64[ns], wall-clock time in the business time zone;
* ``amount``: float net amount of the row, NaN for every row when the source
  has no amount column (then every customer-day with a row is an occasion);
* ``quantity``: float items in the row, only when the source has it;
* one column per pass-through column, under its own name.

Rows are kept in source order; nothing downstream depends on that order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype

from rtt_models.data.codes import (
    arrow_text,
    customer_day_keys,
    customer_day_order,
    drop_from_order,
    exact_duplicates,
    find_blank_ids,
    rank_codes,
    stable_argsort,
)
from rtt_models.data.dates import parse_timestamps
from rtt_models.data.report import DataQualityReport, TransactionLogError, describe_rows

FORMATS = ("csv", "parquet", "cdnow", "cdnow_sample")

# The CDNOW master file has four whitespace-separated columns; the 1/10
# sample adds the sample's own customer number second.
_CDNOW_COLUMNS = ["customer_id", "date", "number_of_cds", "dollar_value"]
_CDNOW_SAMPLE_COLUMNS = ["customer_id", "sample_customer_id", "date", "number_of_cds", "dollar_value"]


@dataclass(frozen=True)
class ColumnMap:
    """Source column names of the customer id, timestamp, amount and extras.

    Attributes
    ----------
    customer_id : str
        Column of customer ids.
    timestamp : str or None
        Column of purchase times or dates. None uses ``timestamp``, or
        ``date`` when there is no ``timestamp`` column.
    amount : str or None
        Column of net amounts (negative for refunds). None uses ``amount``
        when present; a log without amounts counts every customer-day with a
        row as an occasion.
    quantity : str or None
        Optional column of items per row, summed per occasion.
    passthrough : tuple of str
        Columns carried to the features unchanged, for example a segment.
        Each customer gets the value of their latest row at the cut-off.
    """

    customer_id: str = "customer_id"
    timestamp: str | None = None
    amount: str | None = None
    quantity: str | None = None
    passthrough: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, mapping: ColumnMap | Mapping[str, object] | None) -> ColumnMap:
        """Build a ColumnMap from a dict such as ``{"customer_id": "cust", "passthrough": ["segment"]}``."""
        if mapping is None:
            return cls()
        if isinstance(mapping, ColumnMap):
            return mapping
        known = {"customer_id", "timestamp", "amount", "quantity", "passthrough"}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise TransactionLogError(
                f"unknown column mapping keys {unknown}; use {sorted(known)}, for example "
                "{'customer_id': 'CustomerID', 'timestamp': 'InvoiceDate'}."
            )
        values = dict(mapping)
        if "passthrough" in values:
            passthrough = values["passthrough"]
            values["passthrough"] = (passthrough,) if isinstance(passthrough, str) else tuple(passthrough)
        return cls(**values)


@dataclass
class TransactionLog:
    """A validated transaction log in canonical columns, with its report.

    Attributes
    ----------
    frame : DataFrame, shape (n_rows, n_columns)
        Canonical columns as described in this module's docstring.
    report : DataQualityReport
        Rows read and repairs made while loading.
    has_amount : bool
        Whether the source had amounts.
    passthrough : tuple of str
        Pass-through columns present in ``frame``.
    timezone : str
        The business time zone of ``timestamp``.

    Notes
    -----
    The customer codes and the (customer, day) row order are computed once
    per log and cached, so the log's frame must not be changed in place
    afterwards. Build a new log with :meth:`with_frame` instead.
    """

    frame: pd.DataFrame
    report: DataQualityReport = field(default_factory=DataQualityReport)
    has_amount: bool = True
    passthrough: tuple[str, ...] = ()
    timezone: str = "UTC"
    _codes: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _order: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def has_quantity(self) -> bool:
        """Whether the log has a ``quantity`` column."""
        return "quantity" in self.frame.columns

    def with_frame(self, frame: pd.DataFrame) -> TransactionLog:
        """Return a log with another frame and the same settings and report copy."""
        return replace(self, frame=frame, report=self.report.copy(), _codes=None, _order=None)

    def customer_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Integer code per row and the sorted distinct ids they index.

        Codes follow the sorted order of the ids, never the row order.

        Returns
        -------
        codes : ndarray of int64, shape (n_rows,)
        customer_ids : ndarray, shape (n_customers,)
        """
        if self._codes is None or len(self._codes[0]) != len(self.frame):
            codes, uniques = pd.factorize(self.frame["customer_id"].to_numpy(), use_na_sentinel=True)
            self._codes = rank_codes(codes, uniques)
        return self._codes

    def customer_day_order(self) -> np.ndarray:
        """Row positions sorted by customer code, then calendar day, ties in row order.

        Returns
        -------
        ndarray of int64, shape (n_rows,)
        """
        if self._order is None or len(self._order) != len(self.frame):
            codes, _ = self.customer_codes()
            self._order = customer_day_order(codes, self.frame["timestamp"].to_numpy(dtype="datetime64[ns]"))
        return self._order


def load_transactions(
    source: str | os.PathLike | pd.DataFrame,
    *,
    format: str | None = None,
    columns: ColumnMap | Mapping[str, object] | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    drop_duplicates: bool | None = None,
    separator: str = ",",
) -> TransactionLog:
    """Read and validate a transaction log.

    Parameters
    ----------
    source : path or DataFrame
        A CSV, Parquet or CDNOW text file, or a DataFrame.
    format : {"csv", "parquet", "cdnow", "cdnow_sample"}, optional
        File format; inferred from the extension ``.csv``, ``.parquet`` or
        ``.pq`` when omitted. ``cdnow`` reads the CDNOW master file (customer
        id, YYYYMMDD date, number of CDs, dollar value; with or without its
        header line); ``cdnow_sample`` reads the CDNOW 1/10 sample, which has
        the sample's own customer number as an extra second column.
    columns : ColumnMap or dict, optional
        Source column names; see :class:`ColumnMap`. Ignored for CDNOW.
    date_format : str, optional
        ``strftime`` format of the timestamp column, for example
        ``"%d/%m/%Y"``. Without it ISO 8601 is read, and day/month order is
        inferred only where a value proves it.
    timezone : str, default "UTC"
        Business time zone: purchase days are calendar days there.
    drop_duplicates : bool, optional
        Drop rows identical in every loaded column, counting them. The
        default drops them, except in the CDNOW formats: their rows carry a
        date but no time, so two identical lines are two orders on one day.
    separator : str, default ","
        Field separator of a CSV file, for example ``";"``.

    Returns
    -------
    TransactionLog

    Raises
    ------
    TransactionLogError
        Missing columns, unparsable or ambiguous dates, non-numeric amounts.
    """
    report = DataQualityReport()
    fmt = _resolve_format(source, format)

    # Read the raw rows; CDNOW files fix their own columns and date format.
    if fmt in ("cdnow", "cdnow_sample"):
        raw, first_line = _read_cdnow(source, fmt)
        mapping = ColumnMap(customer_id="customer_id", timestamp="date", amount="dollar_value", quantity="number_of_cds")
        date_format = "%Y%m%d"
    else:
        mapping = ColumnMap.from_mapping(columns)
        raw, first_line = _read_table(source, fmt, mapping, separator)
    report.rows_read = len(raw)
    if drop_duplicates is None:
        drop_duplicates = fmt not in ("cdnow", "cdnow_sample")
    mapping = _resolve_columns(mapping, raw.columns)

    def line_of(position: int) -> str:
        if first_line is None:
            return f"row {position}"
        return f"line {position + first_line}"

    # Customer ids: rows without one cannot belong to anybody and are dropped.
    # Ids are factorised once here; blank ids are found among the distinct ones.
    ids = raw[mapping.customer_id]
    codes, uniques = pd.factorize(ids.to_numpy(), use_na_sentinel=True)
    text_ids = arrow_text(uniques)
    no_id = (codes < 0) | np.r_[find_blank_ids(uniques, text_ids), False][codes]

    # Canonical columns as arrays over the source rows. Dropped rows are removed once, at the end.
    columns = {"customer_id": _values(ids)}
    if no_id.any():
        stamps = _parse_with_ids(raw, mapping, no_id, date_format, timezone, line_of, report)
    else:
        stamps = parse_timestamps(
            raw[mapping.timestamp],
            column=mapping.timestamp,
            date_format=date_format,
            timezone=timezone,
            line_of=line_of,
            report=report,
        )
    columns["timestamp"] = stamps.to_numpy(dtype="datetime64[ns]")
    has_amount = mapping.amount is not None
    columns["amount"] = _numeric(raw, mapping.amount, line_of).to_numpy() if has_amount else np.full(len(raw), np.nan)
    if mapping.quantity is not None:
        columns["quantity"] = _numeric(raw, mapping.quantity, line_of).to_numpy()
    for column in mapping.passthrough:
        columns[column] = _values(raw[column])

    # Repairs, each counted: rows without a customer id, exact duplicates.
    report.add("rows_without_customer_id", int(no_id.sum()))
    if no_id.any():
        columns = {name: values[~no_id] for name, values in columns.items()}
        codes = codes[~no_id]

    # One sort by (customer, day) finds the duplicates and is kept for forming occasions.
    codes, customer_ids = rank_codes(codes, uniques, text_ids)
    keys = customer_day_keys(codes, columns["timestamp"])
    order = stable_argsort(keys)
    if drop_duplicates:
        duplicated = exact_duplicates(columns, codes, keys, order)
        report.add("duplicate_rows", int(duplicated.sum()))
    else:
        duplicated = np.zeros(len(codes), dtype=bool)
    del keys
    if duplicated.any():
        columns = {name: values[~duplicated] for name, values in columns.items()}
        codes = codes[~duplicated]
        order = drop_from_order(order, ~duplicated)
    elif not no_id.any():
        # Nothing was dropped, so the id and pass-through columns still share the caller's memory.
        columns = {name: values.copy() for name, values in columns.items()}
    if not has_amount:
        report.note("the log has no amount column: every customer-day with a row is a purchase occasion")

    frame = pd.DataFrame(columns, copy=False)
    return TransactionLog(
        frame, report, has_amount, tuple(mapping.passthrough), timezone,
        _codes=(codes, customer_ids), _order=order,
    )


def _parse_with_ids(raw, mapping, no_id, date_format, timezone, line_of, report) -> pd.Series:
    """Parse timestamps only on rows that have a customer id (the others are dropped)."""
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    keep = ~no_id
    values = raw[mapping.timestamp][keep]
    positions = np.flatnonzero(keep)
    parsed[keep] = parse_timestamps(
        values.reset_index(drop=True),
        column=mapping.timestamp,
        date_format=date_format,
        timezone=timezone,
        line_of=lambda p: line_of(int(positions[p])),
        report=report,
    ).to_numpy()
    return parsed


def _values(column: pd.Series) -> np.ndarray | ExtensionArray:
    """Values of a column: its extension array for an extension dtype, else a numpy array."""
    if isinstance(column.dtype, ExtensionDtype):
        return column.array
    return column.to_numpy()


def _resolve_format(source, format: str | None) -> str:
    if isinstance(source, pd.DataFrame):
        if format not in (None, "dataframe"):
            raise TransactionLogError(f"format {format!r} applies to files; a DataFrame needs no format.")
        return "dataframe"
    if format is not None:
        if format not in FORMATS:
            raise TransactionLogError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}.")
        return format
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise TransactionLogError(
        f"cannot tell the format of {os.fspath(source)!r} from its extension {suffix!r}; pass format "
        f"(--format), one of {', '.join(FORMATS)}."
    )


def _read_table(source, fmt: str, mapping: ColumnMap, separator: str = ",") -> tuple[pd.DataFrame, int | None]:
    """Read a DataFrame, CSV or Parquet source; return it and the line number of its first row."""
    if fmt == "dataframe":
        return source, None
    _check_file(source)
    if fmt == "parquet":
        import pyarrow as pa

        try:
            return pd.read_parquet(source), None
        except (pa.ArrowInvalid, OSError) as err:
            raise TransactionLogError(
                f"cannot read {os.fspath(source)!r} as Parquet: {err}. An empty or truncated file gives this; "
                "write the file again, or pass format (--format) csv for a text log."
            ) from err
    try:
        # Text ids keep leading zeros; line numbers count the header as line 1.
        frame = pd.read_csv(source, dtype={mapping.customer_id: str}, skipinitialspace=True, sep=separator)
    except pd.errors.EmptyDataError as err:
        raise TransactionLogError(f"{os.fspath(source)!r} is empty; a CSV log needs a header line and rows.") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise TransactionLogError(f"cannot read {os.fspath(source)!r} as CSV: {err}") from err
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        found = [s for s in (",", ";", "\t", "|") if s != separator and s in header]
        if found:
            raise TransactionLogError(
                f"{os.fspath(source)!r} has one column named {header!r}, which looks separated by {found[0]!r}; "
                f"pass separator={found[0]!r} (--separator)."
            )
    return frame, 2


def _read_cdnow(source, fmt: str) -> tuple[pd.DataFrame, int]:
    """Read the CDNOW master or 1/10 sample file, with or without a header line."""
    if isinstance(source, pd.DataFrame):
        raise TransactionLogError(f"format {fmt!r} reads a CDNOW text file; pass its path.")
    _check_file(source)
    names = _CDNOW_COLUMNS if fmt == "cdnow" else _CDNOW_SAMPLE_COLUMNS
    with open(source, encoding="utf-8") as handle:
        first_tokens = handle.readline().split()
    has_header = bool(first_tokens) and not first_tokens[0].isdigit()
    if len(first_tokens) != len(names):
        raise TransactionLogError(
            f"{os.fspath(source)!r} has {len(first_tokens)} columns on its first line, but the {fmt} format has "
            f"{len(names)} ({', '.join(names)}); use format "
            f"{'cdnow_sample' if fmt == 'cdnow' else 'cdnow'} or csv."
        )
    frame = pd.read_csv(
        source,
        sep=r"\s+",
        header=None,
        names=names,
        skiprows=1 if has_header else 0,
        dtype={"customer_id": str, "sample_customer_id": str, "date": str},
        engine="c",
    )
    return frame, 2 if has_header else 1


def _check_file(source) -> None:
    if not Path(source).is_file():
        raise TransactionLogError(f"transaction file {os.fspath(source)!r} not found; check the path.")


def _resolve_columns(mapping: ColumnMap, available: Sequence[str]) -> ColumnMap:
    """Fill default column names and raise for any that are missing."""
    available = list(available)
    timestamp = mapping.timestamp
    if timestamp is None:
        timestamp = "timestamp" if "timestamp" in available else "date"
    amount = mapping.amount
    if amount is None and "amount" in available:
        amount = "amount"
    resolved = replace(mapping, timestamp=timestamp, amount=amount)

    needed = {"customer_id": resolved.customer_id, "timestamp": timestamp}
    if mapping.amount is not None:
        needed["amount"] = amount
    if mapping.quantity is not None:
        needed["quantity"] = mapping.quantity
    missing = [f"{role} column {name!r}" for role, name in needed.items() if name not in available]
    missing += [f"pass-through column {name!r}" for name in mapping.passthrough if name not in available]
    if missing:
        raise TransactionLogError(
            f"missing {', '.join(missing)}; the source has columns {available}. Map yours with "
            "columns={'customer_id': ..., 'timestamp': ..., 'amount': ...} "
            "(--customer-col, --timestamp-col, --amount-col)."
        )
    reserved = {"customer_id", "timestamp", "amount", "quantity"}
    clashing = [name for name in mapping.passthrough if name in reserved]
    if clashing:
        raise TransactionLogError(
            f"pass-through columns {clashing} reuse a reserved name; rename them in the source."
        )
    return resolved


def _numeric(raw: pd.DataFrame, column: str, line_of) -> pd.Series:
    """Convert a column to float, raising for text, missing and infinite values."""
    values = raw[column]
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    invalid = (numbers.isna() | ~np.isfinite(numbers)).to_numpy()
    if invalid.any():
        raise TransactionLogError(
            f"column {column!r} must hold finite numbers, but has missing or non-numeric values in "
            f"{describe_rows(values, invalid, line_of)}; fix or drop those rows (a refund is a negative amount)."
        )
    return numbers
