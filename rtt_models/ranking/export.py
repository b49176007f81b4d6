"""Export of intervention lists for campaign and spreadsheet tools.

CSV files are made safe against spreadsheet formula injection. Spreadsheet
programs may read a text cell as a formula when it starts with ``=``, ``+``,
``-``, ``@``, a tab, a carriage return or a NUL character, so such a cell
gets a single quote in front: ``=HYPERLINK("x")`` becomes
``'=HYPERLINK("x")``, which a spreadsheet shows as literal text. OWASP ASVS
5.0, requirement 1.2.10, asks for this escape of ``=``, ``+``, ``-``, ``@``,
tab and NUL. Only text cells change: numbers, negative ones included, stay
numeric cells. Header cells follow the same rule as text cells. Parquet keeps
types, so its cells are written unchanged.

Both formats are written atomically (a temporary file beside the target,
then a rename), and the same table always gives the same bytes: dates are
written as ``YYYY-MM-DD`` and lines end with ``\\n`` on every platform.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from rtt_models.data.write import default_file_mode, table_format, write_parquet

#: First characters that make a spreadsheet read a text cell as a formula.
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "\0")

#: Prefix that makes a spreadsheet show the cell as literal text.
TEXT_PREFIX = "'"


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy in which every text cell that a spreadsheet would run as a formula starts with a quote.

    Parameters
    ----------
    frame : DataFrame
        Any table. Its index is left as it is; reset it first to treat it
        as a column.

    Returns
    -------
    DataFrame
        Same shape, index and dtypes. In object and string columns each
        ``str`` value that starts with one of :data:`FORMULA_TRIGGERS` is
        prefixed with :data:`TEXT_PREFIX`; so are such column names.
        Non-text values (numbers, dates, missing values) are unchanged.
    """
    safe = frame.copy()
    for position, column in enumerate(frame.columns):
        values = frame.iloc[:, position]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            safe.isetitem(position, values.map(_neutralised_text, na_action="ignore"))
    safe.columns = [_neutralised_text(column) for column in frame.columns]
    return safe


def export_table(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a ranked or selected list atomically as CSV or Parquet, by the file's extension.

    Parameters
    ----------
    frame : DataFrame
        The list, for example ``Campaign.customers``.
    path : path
        Destination ending in ``.csv``, ``.parquet`` or ``.pq``.
    index : bool, default True
        Whether to write the index (``customer_id``) as the first column.

    Returns
    -------
    Path
        The written file. In CSV, text cells are neutralised as described in
        the module docstring; the index is treated as a text column too.
    """
    path = Path(path)
    if table_format(path) == "parquet":
        _write_atomically(path, lambda temporary: write_parquet(frame, temporary, index=index))
        return path

    table = frame.reset_index() if index else frame
    table = neutralise_formulas(_dates_as_text(table))
    _write_atomically(path, lambda temporary: table.to_csv(temporary, index=False, lineterminator="\n"))
    return path


def _neutralised_text(value):
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return TEXT_PREFIX + value
    return value


def _dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Write day columns as YYYY-MM-DD and other timestamps in ISO 8601, so no locale or default applies."""
    frame = frame.copy()
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue
        present = values.dropna()
        whole_days = bool((present == present.dt.normalize()).all())
        text = values.dt.strftime("%Y-%m-%d") if whole_days else values.map(pd.Timestamp.isoformat, na_action="ignore")
        frame.isetitem(position, text)
    return frame


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file beside ``path`` and rename it, leaving no partial file on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
