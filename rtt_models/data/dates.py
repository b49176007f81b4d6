"""Timestamp parsing: explicit formats, safe inference, one business time zone.

Dates are parsed before any comparison, so "2023-10-01" never sorts before
"2023-9-30" as a string would. Without a format, ISO 8601 and year-first
dates are read as such; day/month dates such as ``04/05/2023`` are read only
when some value proves the order (a day above 12), and that decision goes
into the data-quality report. When no value proves it the dates are
ambiguous and reading stops with an error that names the option to set.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from rtt_models.data.report import DataQualityReport, TransactionLogError, describe_rows

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_YEAR_FIRST_SLASH = re.compile(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}$")
_DAY_MONTH = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{2}|\d{4})(?: (\d{1,2}:\d{2}(?::\d{2})?))?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def parse_timestamps(
    values: pd.Series,
    *,
    column: str,
    date_format: str | None,
    timezone: str,
    line_of: Callable[[int], str],
    report: DataQualityReport,
) -> pd.Series:
    """Parse a timestamp column into naive datetimes in the business time zone.

    Parameters
    ----------
    values : Series, shape (n_rows,)
        Datetimes, tz-aware datetimes or strings.
    column : str
        The column's name in the source, for messages.
    date_format : str or None
        A ``strftime`` format such as ``"%m/%d/%Y"``; None infers safely.
    timezone : str
        The business time zone, for example ``"Europe/Berlin"``. Tz-aware
        values are converted to it; naive values are taken to be in it.
    line_of : callable
        Maps a row position to the line number shown to the user.
    report : DataQualityReport
        Receives a note when a format is inferred.

    Returns
    -------
    Series of datetime64[ns], shape (n_rows,)
        Wall-clock times in the business time zone, without a zone.

    Raises
    ------
    TransactionLogError
        For missing or unparsable values and ambiguous day/month order.
    """
    _check_timezone(timezone)

    # Already datetimes: only the zone needs care.
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.astype("datetime64[ns]")

    missing = values.isna().to_numpy()
    if missing.any():
        raise TransactionLogError(
            f"column {column!r} has missing timestamps in {describe_rows(values, missing, line_of)}; "
            "fill them or drop those rows before loading."
        )
    if pd.api.types.is_numeric_dtype(values.dtype) and date_format is None:
        raise TransactionLogError(
            f"column {column!r} contains numbers such as {values.iloc[0]!r}, not dates; pass the date format, "
            "for example date_format='%Y%m%d' (--date-format %Y%m%d)."
        )

    # Parse each distinct text once: logs repeat the same dates many times.
    codes, uniques = pd.factorize(values.astype(str).str.strip(), sort=False)
    texts = pd.Series(uniques, dtype=object)
    if date_format is None:
        date_format = _infer_format(texts, column, values, codes, line_of, report)
    has_offset = texts.str.contains(_OFFSET).any()
    parsed = pd.to_datetime(texts, format=date_format, errors="coerce", utc=bool(has_offset))

    failed = parsed.isna().to_numpy()
    if failed.any():
        bad_rows = failed[codes]
        if 2 * bad_rows.sum() < len(values):
            advice = (
                "most rows match it, so fix or remove those rows; if it is not the column's format, pass the "
                "right one with date_format (--date-format)"
            )
        else:
            advice = "pass the right format with date_format (--date-format), for example '%Y-%m-%d' or '%d/%m/%Y %H:%M'"
        raise TransactionLogError(
            f"column {column!r} has values that do not match the date format {date_format!r} in "
            f"{describe_rows(values, bad_rows, line_of)}; {advice}."
        )
    if has_offset:
        parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
    result = parsed.to_numpy(dtype="datetime64[ns]")[codes]
    return pd.Series(result, index=values.index, name=values.name)


def _check_timezone(timezone: str) -> None:
    try:
        pd.Timestamp("2000-01-01", tz=timezone)
    except Exception as err:  # pytz and zoneinfo raise different types
        raise TransactionLogError(
            f"unknown time zone {timezone!r}; pass an IANA name such as 'UTC' or 'America/New_York'."
        ) from err


def _infer_format(
    texts: pd.Series,
    column: str,
    values: pd.Series,
    codes: np.ndarray,
    line_of: Callable[[int], str],
    report: DataQualityReport,
) -> str:
    """Choose a format for distinct date texts, or raise when the order is a guess."""
    if texts.str.fullmatch(_ISO).all():
        return "ISO8601"
    if texts.str.fullmatch(_YEAR_FIRST_SLASH).all():
        separator = "/" if "/" in texts.iloc[0] else "."
        return f"%Y{separator}%m{separator}%d"

    parts = texts.str.extract(_DAY_MONTH)
    if parts[0].isna().any():
        iso = texts.str.fullmatch(_ISO).to_numpy()
        if 2 * iso[codes].sum() > len(values):
            unknown = ~iso[codes]
            raise TransactionLogError(
                f"column {column!r} has ISO dates except in {describe_rows(values, unknown, line_of)}; "
                "fix or remove those rows, or pass the column's format with date_format (--date-format)."
            )
        unknown = parts[0].isna().to_numpy()[codes]
        raise TransactionLogError(
            f"cannot infer the date format of column {column!r} from {describe_rows(values, unknown, line_of)}; "
            "pass it with date_format (--date-format), for example '%Y-%m-%d %H:%M:%S'."
        )

    # Decide day-first or month-first only from values that prove it.
    first = parts[0].astype(int)
    second = parts[2].astype(int)
    separator = parts[1].iloc[0]
    year = "%Y" if parts[3].str.len().iloc[0] == 4 else "%y"
    time = " %H:%M:%S" if parts[4].notna().any() and parts[4].str.count(":").max() == 2 else (
        " %H:%M" if parts[4].notna().any() else ""
    )
    day_first_proof = first > 12
    month_first_proof = second > 12
    if day_first_proof.any() and month_first_proof.any():
        raise TransactionLogError(
            f"column {column!r} mixes day-first dates such as {texts[day_first_proof].iloc[0]!r} with "
            f"month-first dates such as {texts[month_first_proof].iloc[0]!r}; fix the source or pass "
            "date_format (--date-format)."
        )
    if not day_first_proof.any() and not month_first_proof.any():
        raise TransactionLogError(
            f"dates in column {column!r} such as {texts.iloc[0]!r} are ambiguous: day and month are both <= 12 "
            "in every row, so day-first and month-first read differently; pass date_format "
            "(--date-format), '%d/%m/%Y' for day-first or '%m/%d/%Y' for month-first."
        )
    if day_first_proof.any():
        chosen = f"%d{separator}%m{separator}{year}{time}"
        proof = texts[day_first_proof].iloc[0]
    else:
        chosen = f"%m{separator}%d{separator}{year}{time}"
        proof = texts[month_first_proof].iloc[0]
    report.note(f"dates in column {column!r} read with format {chosen!r} because of values such as {proof!r}")
    return chosen
