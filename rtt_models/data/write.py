"""Atomic writing of result tables as CSV or Parquet."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def table_format(path: str | os.PathLike) -> str:
    """Return ``"csv"`` or ``"parquet"`` from a file name, raising for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"cannot write {os.fspath(path)!r}: name the output file with .csv, .parquet or .pq.")


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a table atomically: to a temporary file beside ``path``, then rename.

    A failure or an interruption leaves no partial file at ``path``; an
    existing file there stays as it was until the rename replaces it.

    Parameters
    ----------
    frame : DataFrame
        The table.
    path : path
        Destination ending in ``.csv``, ``.parquet`` or ``.pq``.
    index : bool, default True
        Whether to write the index (for example ``customer_id``) as a column;
        it is the first column in both formats.
    """
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        if fmt == "csv":
            frame.to_csv(temporary, index=index)
        else:
            write_parquet(frame, temporary, index=index)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions any new file gets under the process umask.
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> None:
    """Write a DataFrame as Parquet with its named index columns first.

    ``DataFrame.to_parquet`` appends the index after the other columns, so
    DuckDB, Spark or Arrow readers would see ``customer_id`` last. The file
    keeps pandas' metadata and ``frame.attrs``, so ``pandas.read_parquet``
    returns the same frame as after ``to_parquet``.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=index)
    leading = [name for name in frame.index.names if name is not None and name in table.column_names] if index else []
    if leading:
        table = table.select(leading + [name for name in table.column_names if name not in leading])
    if frame.attrs:
        metadata = dict(table.schema.metadata or {})
        metadata[b"PANDAS_ATTRS"] = json.dumps(frame.attrs).encode()
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)


def default_file_mode() -> int:
    """Return the mode a newly created file gets under the process umask, for example 0o644."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
