"""The data-quality report and the error raised for invalid transaction logs.

Every repair the data layer makes (a dropped duplicate, a refund netted into
its day, a row after the cut-off) is counted here and never made silently.
Problems that cannot be repaired safely raise :class:`TransactionLogError`,
whose message names the column, the first offending rows and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

logger = logging.getLogger("rtt_models")

#: Repairs in the order reports list them, with the sentence each count fills.
REPAIR_DESCRIPTIONS: dict[str, str] = {
    "rows_without_customer_id": "rows with no customer id dropped",
    "duplicate_rows": "exact duplicate rows dropped",
    "rows_after_cutoff": "rows after the cut-off left out of the features",
    "refund_rows_netted": "refund rows (negative amount) netted into their day",
    "days_excluded": "customer-days not counted as purchase occasions (net amount <= 0)",
    "customers_without_occasion": "customers with rows but no purchase occasion by the cut-off",
    "customers_first_seen_after_cutoff": "customers first seen after the cut-off (reported separately)",
}


class TransactionLogError(ValueError):
    """A transaction log that cannot be read or repaired safely.

    The message names the column, the first offending rows and the fix.
    """


@dataclass
class DataQualityReport:
    """Counts of the rows read and of every repair made to them.

    Attributes
    ----------
    rows_read : int
        Rows in the source before any repair.
    repairs : dict of str to int
        Count per repair, keyed as in :data:`REPAIR_DESCRIPTIONS`.
    notes : list of str
        Decisions taken while reading, for example the date format inferred.
    """

    rows_read: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, repair: str, count: int) -> None:
        """Add ``count`` to one repair and log it when it is non-zero."""
        if repair not in REPAIR_DESCRIPTIONS:
            raise KeyError(f"unknown repair {repair!r}; known repairs are {list(REPAIR_DESCRIPTIONS)}")
        count = int(count)
        self.repairs[repair] = self.repairs.get(repair, 0) + count
        if count:
            logger.info("%d %s", count, REPAIR_DESCRIPTIONS[repair])

    def note(self, message: str) -> None:
        """Record a decision taken while reading the data."""
        self.notes.append(message)
        logger.info(message)

    def merge(self, other: DataQualityReport) -> None:
        """Add another report's rows, counts and notes to this one."""
        self.rows_read += other.rows_read
        for key, count in other.repairs.items():
            self.repairs[key] = self.repairs.get(key, 0) + count
        self.notes.extend(other.notes)

    def copy(self) -> DataQualityReport:
        """Return an independent copy, so later stages do not change this one."""
        return DataQualityReport(self.rows_read, dict(self.repairs), list(self.notes))

    def to_frame(self) -> pd.DataFrame:
        """Return the counts as a DataFrame with columns ``repair``, ``count``, ``description``."""
        rows = [("rows_read", self.rows_read, "rows in the source")]
        rows += [(key, self.repairs[key], REPAIR_DESCRIPTIONS[key]) for key in REPAIR_DESCRIPTIONS if key in self.repairs]
        return pd.DataFrame(rows, columns=["repair", "count", "description"])

    def __str__(self) -> str:
        lines = [f"Data quality: {self.rows_read:,} rows read"]
        for key in REPAIR_DESCRIPTIONS:
            if key in self.repairs:
                lines.append(f"  {self.repairs[key]:>12,}  {REPAIR_DESCRIPTIONS[key]}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def describe_rows(values: pd.Series, mask, line_of, limit: int = 5) -> str:
    """Describe the first offending rows as ``line N: 'value'`` for an error message.

    Parameters
    ----------
    values : Series, shape (n_rows,)
        The column as read.
    mask : array of bool, shape (n_rows,)
        True where a row is invalid.
    line_of : callable
        Maps a row position to the line number or row label shown to the user.
    limit : int
        How many rows to show.
    """
    positions = pd.Series(mask, copy=False).to_numpy().nonzero()[0]
    shown = ", ".join(f"{line_of(int(p))}: {values.iloc[int(p)]!r}" for p in positions[:limit])
    more = f" and {len(positions) - limit:,} more" if len(positions) > limit else ""
    return f"{len(positions):,} rows ({shown}{more})"
