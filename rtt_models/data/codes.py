"""Integer customer codes, the (customer, day) row order and exact duplicate rows.

Loading a log factorises its customer ids once and sorts its rows once by
(customer code, calendar day). Both results are cached on the
:class:`~rtt_models.data.load.TransactionLog`: duplicate detection and every
later :func:`~rtt_models.data.occasions.form_occasions` call reuse them
instead of hashing or sorting ten million rows again.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from rtt_models.data.report import TransactionLogError
from rtt_models.data.threads import count_parts, map_parts

ArrayLike = np.ndarray | ExtensionArray
NS_PER_DAY = 86_400 * 10**9


def find_blank_ids(uniques: np.ndarray, text=None) -> np.ndarray:
    """Mark the distinct ids that are empty or only whitespace.

    Parameters
    ----------
    uniques : ndarray, shape (n_ids,)
        Distinct customer ids as factorised from the source.
    text : pyarrow.Array, optional
        ``arrow_text(uniques)`` when the caller has it already.

    Returns
    -------
    ndarray of bool, shape (n_ids,)
        True for a text id that ``str.strip`` reduces to ``""``.
    """
    text = arrow_text(uniques) if text is None else text
    if text is None:
        return np.array([isinstance(u, str) and not u.strip() for u in uniques], dtype=bool)

    # A character for which str.isspace is true is never a letter or digit, so only
    # ids that are empty or start with a non-alphanumeric character need the exact check.
    import pyarrow.compute as pc

    first_is_alnum = pc.utf8_is_alnum(pc.utf8_slice_codeunits(text, 0, 1))
    suspects = np.flatnonzero(~first_is_alnum.to_numpy(zero_copy_only=False))
    blank = np.zeros(len(uniques), dtype=bool)
    blank[suspects] = [not uniques[i].strip() for i in suspects]
    return blank


def rank_codes(codes: np.ndarray, uniques: np.ndarray, text=None) -> tuple[np.ndarray, np.ndarray]:
    """Renumber factorised codes so that they follow the sorted distinct ids.

    ``text`` is ``arrow_text(uniques)`` when the caller has it already.

    Returns
    -------
    codes : ndarray of int64, shape (n_rows,)
    customer_ids : ndarray, shape (n_ids,)
        The distinct ids in sorted order; ``codes`` index into it.
    """
    uniques = np.asarray(uniques)
    order = _argsort_ids(uniques, text)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    return rank[codes], uniques[order]


def customer_day_order(codes: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Sort rows by customer code, then calendar day, keeping row order within a day.

    Parameters
    ----------
    codes : ndarray of int, shape (n_rows,)
        Customer code of each row, 0 to n_customers - 1.
    stamps : ndarray of datetime64[ns], shape (n_rows,)
        Timestamp of each row in the business time zone.

    Returns
    -------
    ndarray of int64, shape (n_rows,)
        Row positions in (customer, day) order. Rows kept by any mask stay in
        (customer, day) order when this order is filtered by that mask, so
        one sort serves every cut-off.
    """
    return stable_argsort(customer_day_keys(codes, stamps))


def customer_day_keys(codes: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Compute one non-negative int64 per row that orders rows by (customer code, calendar day).

    Parameters and shapes as in :func:`customer_day_order`.
    """
    days = stamps.view("int64") // NS_PER_DAY
    missing = np.isnat(stamps)
    if missing.any():
        # Missing times fall outside every window, so any day keeps the key in range.
        days = np.where(missing, days[~missing].min() if (~missing).any() else 0, days)
    first_day = days.min() if days.size else 0
    span = days.max() - first_day + 1 if days.size else 1
    days -= first_day
    days += np.multiply(codes, span, dtype=np.int64)
    return days


def stable_argsort(keys: np.ndarray, n_parts: int | None = None) -> np.ndarray:
    """Return the stable argsort of non-negative int64 keys, shape (n_rows,), as int64.

    The rows are first split stably into ``n_parts`` ranges of key values
    (by default one per million rows), and each range is then sorted on its
    own, in parallel threads. Concatenating the ranges gives the same order
    as one stable sort of all keys.
    """
    # Range numbers are stored as uint16.
    n_parts = min(count_parts(keys.size) if n_parts is None else n_parts, 2**16)
    if n_parts == 1 or not keys.size:
        return _radix_argsort(keys)
    width = int(keys.max()) // n_parts + 1
    part = np.floor_divide(keys, width, out=np.empty(keys.size, dtype=np.uint16), casting="unsafe")
    grouped = np.argsort(part, kind="stable")
    offsets = np.r_[0, np.cumsum(np.bincount(part, minlength=n_parts))]
    del part
    order = np.empty(keys.size, dtype=np.int64)

    def sort_range(index: int) -> None:
        rows = grouped[offsets[index]:offsets[index + 1]]
        order[offsets[index]:offsets[index + 1]] = rows[_radix_argsort(keys[rows] - index * width)]

    map_parts(sort_range, range(n_parts))
    return order


def _radix_argsort(keys: np.ndarray) -> np.ndarray:
    """Return the stable argsort of non-negative int64 keys, by radix sort when they fit in 32 bits.

    numpy sorts 16-bit integers stably by radix sort in linear time. Two such
    passes (low 16 bits, then high 16 bits) therefore sort keys below 2**32
    about a third faster than numpy's stable sort (timsort) of int64 on ten
    million keys.
    """
    if not keys.size or keys.max() >= 2**32:
        return np.argsort(keys, kind="stable").astype(np.int64, copy=False)
    # The little-endian 16-bit halves of each 32-bit key, as strided views.
    halves = keys.astype("<u4").view("<u2")
    order = np.argsort(halves[0::2], kind="stable")
    if keys.max() >= 2**16:
        order = order[np.argsort(halves[1::2][order], kind="stable")]
    return order.astype(np.int64, copy=False)


def exact_duplicates(
    columns: Mapping[str, ArrayLike], codes: np.ndarray, keys: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """Mark rows equal in every column to an earlier row, shape (n_rows,).

    Two equal rows share their customer and calendar day, so only rows whose
    (customer, day) has more than one row are compared. Those are compared
    exactly on every column, with the integer customer codes in place of the
    id texts because that is faster and equivalent.

    Parameters
    ----------
    columns : dict of str to array, each of shape (n_rows,)
        Canonical columns, including ``customer_id`` and ``timestamp``.
    codes : ndarray of int, shape (n_rows,)
        Customer code of each row.
    keys : ndarray of int64, shape (n_rows,)
        The rows' keys from :func:`customer_day_keys`.
    order : ndarray of int64, shape (n_rows,)
        Row positions in key order, from :func:`stable_argsort`.
    """
    sorted_keys = keys[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    del sorted_keys
    shares_day = np.zeros(len(codes), dtype=bool)
    shares_day[1:] = same
    shares_day[:-1] |= same

    duplicated = np.zeros(len(codes), dtype=bool)
    if not shares_day.any():
        return duplicated
    # Candidates in row order, so that the first of equal rows is the one kept.
    rows = np.sort(order[shares_day])
    candidates = pd.DataFrame({name: values[rows] for name, values in columns.items() if name != "customer_id"})
    candidates["_customer_code"] = codes[rows]
    duplicated[rows] = candidates.duplicated(keep="first").to_numpy()
    return duplicated


def drop_from_order(order: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Return the order of the rows where ``keep`` is true, as positions among those rows."""
    new_position = np.cumsum(keep)
    new_position -= 1
    kept_order = order[keep[order]]
    return np.take(new_position, kept_order, out=kept_order)


def arrow_text(uniques: np.ndarray):
    """Return distinct text ids as a pyarrow string array, or None for ids of other types."""
    if uniques.dtype != object or not uniques.size or not all(isinstance(u, str) for u in uniques[:100]):
        return None
    import pyarrow as pa

    try:
        return pa.array(uniques, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # _argsort_ids raises for mixed id types


def _argsort_ids(uniques: np.ndarray, text=None) -> np.ndarray:
    """Order of distinct ids; text ids are sorted by Arrow, several times faster than numpy on objects."""
    text = arrow_text(uniques) if text is None else text
    if text is not None:
        import pyarrow.compute as pc

        return pc.sort_indices(text).to_numpy()
    try:
        return np.argsort(uniques, kind="stable")
    except TypeError as err:
        kinds = sorted({type(u).__name__ for u in uniques})
        raise TransactionLogError(
            f"customer ids mix the types {kinds}, so they cannot be ordered; convert the id column to text, "
            "for example frame['customer_id'] = frame['customer_id'].astype(str)."
        ) from err
