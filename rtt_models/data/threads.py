"""Run per-customer work on ranges of customers, in parallel threads.

Work on ten million rows is split into ranges of customers of about
:data:`ROWS_PER_PART` rows each. Small parts keep every temporary array
small, so the allocator reuses freed memory instead of mapping fresh pages,
which the kernel must zero. On ten million rows on a 2-core Linux machine
this cut the kernel time of ``build_features`` from about 1.8 s to 0.5 s.
numpy releases the GIL inside gathers, ufuncs, reductions and sorts of
numeric arrays, so the parts run in one thread per core. Each per-customer
value is computed from that customer's rows alone, so splitting the
customers never changes a result.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

#: Rows per part. Arrays of a million rows (8 MB of float64) stay below the
#: 32 MB upper limit of glibc's dynamic M_MMAP_THRESHOLD (mallopt(3)), so
#: their freed memory is reused. NOTE: chosen from timings on one 2-core
#: Linux machine.
ROWS_PER_PART = 1_000_000

T = TypeVar("T")
R = TypeVar("R")


def count_parts(n_rows: int) -> int:
    """Number of parts of about :data:`ROWS_PER_PART` rows for ``n_rows`` rows, at least one."""
    return max(1, -(-n_rows // ROWS_PER_PART))


def usable_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def balanced_cuts(offsets: np.ndarray, n_parts: int) -> np.ndarray:
    """Split customers into ``n_parts`` ranges of about equal numbers of rows.

    Parameters
    ----------
    offsets : ndarray of int, shape (n_customers + 1,)
        Customer k's rows are ``offsets[k]:offsets[k + 1]``.
    n_parts : int
        Number of ranges wanted.

    Returns
    -------
    ndarray of int64, shape (n_parts + 1,)
        Customer codes where the ranges start, then ``n_customers``; a range
        may be empty when one customer has most rows.
    """
    n_customers = len(offsets) - 1
    targets = offsets[-1] * np.arange(1, n_parts) // n_parts
    inner = np.searchsorted(offsets, targets, side="left")
    cuts = np.r_[0, np.clip(inner, 0, n_customers), n_customers]
    return np.maximum.accumulate(cuts).astype(np.int64)


def map_parts(function: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """Apply ``function`` to each part in up to one thread per core, and return the results in the parts' order."""
    workers = min(len(parts), usable_cores())
    if workers <= 1:
        return [function(part) for part in parts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, parts))
