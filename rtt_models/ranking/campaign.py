"""Intervention lists: filters and quotas applied to a ranking.

The filters run in a fixed order on a table from
:func:`rtt_models.ranking.rank_customers`, and each counts the customers it
removes:

1. ``excluded``: customer ids on the exclusion list;
2. ``below_min_risk``: ``lapse_risk < min_risk``;
3. ``below_min_value``: ``value_at_stake < min_value`` (or empty);
4. ``over_quota``: customers beyond their segment's quota, taken in rank
   order within the segment;
5. ``beyond_top_n``: customers after the first ``top_n`` left.

Every step keeps the rank order, and the ranking breaks ties by
``customer_id``, so the same inputs always give the same list.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rtt_models.ranking.priority import TIERS

logger = logging.getLogger("rtt_models")

#: Filter steps in the order they run, as keys of ``CampaignSummary.removed``.
FILTER_STEPS: tuple[str, ...] = ("excluded", "below_min_risk", "below_min_value", "over_quota", "beyond_top_n")

#: Label of each filter step in the summary lines.
STEP_LABELS: dict[str, str] = {
    "excluded": "on the exclusion list",
    "below_min_risk": "below the minimum risk",
    "below_min_value": "below the minimum value",
    "over_quota": "over a segment quota",
    "beyond_top_n": "beyond the top N",
}

#: Quota key that applies to every segment without its own quota.
OTHER_SEGMENTS = "*"


@dataclass
class CampaignSummary:
    """Counts of a campaign selection.

    Attributes
    ----------
    ranked : int
        Customers in the ranking before any filter.
    removed : dict of str to int
        Customers removed by each step of :data:`FILTER_STEPS`, in that order.
    selected : int
        Customers in the list.
    tier_counts : dict of str to int
        Selected customers per tier, in the order of :data:`TIERS`.
    value_at_stake : float
        Sum of ``value_at_stake`` over the list, in the currency of the log;
        NaN when the log has no amounts.
    exclusions_not_ranked : int
        Ids on the exclusion list that are not in the ranking.
    """

    ranked: int
    removed: dict[str, int] = field(default_factory=dict)
    selected: int = 0
    tier_counts: dict[str, int] = field(default_factory=dict)
    value_at_stake: float = float("nan")
    exclusions_not_ranked: int = 0

    def lines(self) -> list[str]:
        """Describe the selection in a few lines of plain text."""
        removed = ", ".join(f"{STEP_LABELS[step]} {count:,}" for step, count in self.removed.items() if count)
        tiers = ", ".join(f"{tier} {count:,}" for tier, count in self.tier_counts.items())
        value = "unknown (no amounts)" if np.isnan(self.value_at_stake) else f"{self.value_at_stake:,.2f}"
        lines = [
            f"Customers ranked: {self.ranked:,}; listed: {self.selected:,}",
            f"Removed: {removed or 'none'}",
            f"Tiers: {tiers or 'none'}",
            f"Value at stake of the list: {value}",
        ]
        if self.exclusions_not_ranked:
            lines.append(f"Exclusion ids not in the ranking: {self.exclusions_not_ranked:,}")
        return lines


@dataclass
class Campaign:
    """A selected intervention list and its summary.

    Attributes
    ----------
    customers : DataFrame, shape (n_selected, n_columns)
        Rows of the ranking that passed every filter, in rank order; the
        ``rank`` column keeps each customer's rank in the full ranking.
    summary : CampaignSummary
    """

    customers: pd.DataFrame
    summary: CampaignSummary


def select_campaign(
    ranked: pd.DataFrame,
    *,
    top_n: int | None = None,
    min_value: float | None = None,
    min_risk: float | None = None,
    quotas: Mapping[str, int] | Iterable[str] | None = None,
    segment_col: str = "segment",
    exclude: str | os.PathLike | Iterable | None = None,
) -> Campaign:
    """Select the customers to contact from a ranking.

    Parameters
    ----------
    ranked : DataFrame, shape (n_customers, n_columns)
        Output of :func:`rtt_models.ranking.rank_customers`, indexed by
        ``customer_id``.
    top_n : int, optional
        Keep at most this many customers, the best ranked.
    min_value : float, optional
        Keep customers whose ``value_at_stake`` is at least this, in the
        currency of the log.
    min_risk : float, optional
        Keep customers whose ``lapse_risk`` is at least this, in [0, 1].
    quotas : dict or iterable of "SEGMENT=N" strings, optional
        Most customers to keep per value of ``segment_col``. A segment
        without a quota is not capped, unless the key ``"*"`` sets a quota
        for every segment not named (``"*": 0`` keeps only the named ones).
        Segment values are compared as text.
    segment_col : str, default "segment"
        Column of the segments the quotas refer to.
    exclude : path or iterable of ids, optional
        Customers never to list. A ``str`` or path names a file (see
        :func:`read_exclusion_list`); any other iterable contains the ids.
        Ids are compared as text, so ``42`` and ``"42"`` are the same id.

    Returns
    -------
    Campaign
        The list and the counts removed by each filter, which are also logged.
    """
    for column in ("rank", "lapse_risk", "value_at_stake", "tier"):
        if column not in ranked.columns:
            raise ValueError(f"the ranking has no column {column!r}; pass the output of rank_customers.")
    top_n, min_value, min_risk = _check_limits(top_n, min_value, min_risk)
    quota_by_segment = parse_quotas(quotas) if quotas is not None else {}
    if quota_by_segment and segment_col not in ranked.columns:
        raise ValueError(
            f"quotas need the segment column {segment_col!r}, which the ranking does not have; "
            f"name one of its columns: {', '.join(map(str, ranked.columns))}."
        )

    selected = ranked.sort_values("rank", kind="stable")
    summary = CampaignSummary(ranked=len(selected))
    ids_as_text = selected.index.astype(str)

    # 1. The exclusion list.
    excluded_ids = set()
    if isinstance(exclude, (str, os.PathLike)):
        excluded_ids = set(read_exclusion_list(exclude))
    elif exclude is not None:
        excluded_ids = set(map(str, exclude))
    summary.exclusions_not_ranked = len(excluded_ids - set(ids_as_text))
    selected = _keep(selected, ~ids_as_text.isin(excluded_ids), "excluded", summary)

    # 2-3. Thresholds on risk and value.
    if min_risk is not None:
        selected = _keep(selected, selected["lapse_risk"].to_numpy() >= min_risk, "below_min_risk", summary)
    else:
        summary.removed["below_min_risk"] = 0
    if min_value is not None:
        if len(ranked) and not np.isfinite(ranked["value_at_stake"].to_numpy(dtype=float)).any():
            raise ValueError(
                "min_value needs value_at_stake, which is empty because the log has no amounts; "
                "drop the minimum value or load a log with an amount column."
            )
        selected = _keep(selected, selected["value_at_stake"].to_numpy() >= min_value, "below_min_value", summary)
    else:
        summary.removed["below_min_value"] = 0

    # 4. Quotas, filled in rank order within each segment.
    if quota_by_segment:
        segment = selected[segment_col].astype("string")
        limit = segment.map(quota_by_segment).astype(float)
        if OTHER_SEGMENTS in quota_by_segment:
            limit = limit.fillna(float(quota_by_segment[OTHER_SEGMENTS]))
        position = segment.groupby(segment, sort=False, dropna=False).cumcount()
        within = (limit.isna() | (position < limit)).to_numpy()
        selected = _keep(selected, within, "over_quota", summary)
    else:
        summary.removed["over_quota"] = 0

    # 5. The overall cap.
    keep_head = np.arange(len(selected)) < (top_n if top_n is not None else len(selected))
    selected = _keep(selected, keep_head, "beyond_top_n", summary)

    summary.selected = len(selected)
    counts = selected["tier"].value_counts()
    summary.tier_counts = {tier: int(counts.get(tier, 0)) for tier in TIERS}
    values = selected["value_at_stake"].to_numpy(dtype=float)
    summary.value_at_stake = float(np.nansum(values)) if np.isfinite(values).any() else float("nan")
    logger.info("campaign list: %d of %d ranked customers selected", summary.selected, summary.ranked)
    return Campaign(selected, summary)


def parse_quotas(quotas: Mapping[str, int] | Iterable[str]) -> dict[str, int]:
    """Read quotas from a mapping or from ``"SEGMENT=N"`` strings into ``{segment: N}``.

    The last ``=`` separates the segment from the count, so segment names may
    contain ``=``. Counts are whole numbers >= 0.
    """
    if isinstance(quotas, str):
        quotas = [quotas]
    if isinstance(quotas, Mapping):
        pairs = [(str(segment), count) for segment, count in quotas.items()]
    else:
        pairs = []
        for text in quotas:
            segment, sep, count = str(text).rpartition("=")
            if not sep or not segment:
                raise ValueError(f"quota {text!r} is not SEGMENT=N; write it like 'frequent=100'.")
            pairs.append((segment, count.strip()))
    parsed = {}
    for segment, count in pairs:
        try:
            number = int(count)
        except (TypeError, ValueError):
            number = -1
        if isinstance(count, bool) or number < 0 or (isinstance(count, float) and not count.is_integer()):
            raise ValueError(f"quota of segment {segment!r} must be a whole number >= 0, got {count!r}.")
        if segment in parsed:
            raise ValueError(f"segment {segment!r} has two quotas; give each segment one.")
        parsed[segment] = number
    return parsed


def read_exclusion_list(path: str | os.PathLike) -> list[str]:
    """Read customer ids to exclude from a file.

    A ``.csv`` or ``.parquet`` file gives its ``customer_id`` column, or its
    only column. Any other file contains one id per line; blank lines and a
    first line reading ``customer_id`` are skipped. Ids are returned as text
    with surrounding spaces removed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exclusion list {os.fspath(path)!r} not found; pass an existing file of customer ids.")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        table = pd.read_csv(path, dtype=str) if suffix == ".csv" else pd.read_parquet(path)
        if "customer_id" in table.columns:
            column = table["customer_id"]
        elif table.shape[1] == 1:
            column = table.iloc[:, 0]
        else:
            raise ValueError(
                f"exclusion list {os.fspath(path)!r} has columns {list(table.columns)} but no customer_id; "
                "name the column of ids customer_id."
            )
        return [str(value).strip() for value in column.dropna()]
    lines = [line.strip() for line in path.read_text().splitlines()]
    if lines and lines[0] == "customer_id":
        lines = lines[1:]
    return [line for line in lines if line]


def _check_limits(top_n, min_value, min_risk):
    if top_n is not None and (isinstance(top_n, bool) or not float(top_n).is_integer() or top_n < 1):
        raise ValueError(f"top_n must be a whole number of customers >= 1, got {top_n!r}.")
    if min_value is not None and not np.isfinite(float(min_value)):
        raise ValueError(f"min_value must be a finite amount, got {min_value!r}.")
    if min_risk is not None and not 0.0 <= float(min_risk) <= 1.0:
        raise ValueError(f"min_risk must be a lapse risk in [0, 1], got {min_risk!r}.")
    return (
        None if top_n is None else int(top_n),
        None if min_value is None else float(min_value),
        None if min_risk is None else float(min_risk),
    )


def _keep(selected: pd.DataFrame, mask: np.ndarray, step: str, summary: CampaignSummary) -> pd.DataFrame:
    """Apply one filter and record how many customers it removed."""
    mask = np.asarray(mask, dtype=bool)
    removed = int((~mask).sum())
    summary.removed[step] = removed
    if removed:
        logger.info("campaign filter %s removed %d customers", step, removed)
    return selected[mask]
