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
        Whether to write the index (for example ``customer_id``) as a column.
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
            frame.to_parquet(temporary, index=index)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions any new file gets under the process umask.
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def default_file_mode() -> int:
    """Return the mode a newly created file gets under the process umask, for example 0o644."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
