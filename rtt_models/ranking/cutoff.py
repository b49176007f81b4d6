"""The cut-off of a ranking: read from the features, checked against the scores.

A ranking joins two files made separately, a scores table and a feature
table. Both describe customers as of one cut-off day, and mixing two days
gives a list whose risks and dates describe neither. The cut-off of each
table is read from its own columns:

* features: ``last_purchase_date + elapsed_days``, the same day for every
  customer;
* scores: ``expected_next_purchase_date - ceil(median_days_to_next)``, the
  inverse of how :func:`rtt_models.scoring.score_features` writes the date.
  Only rows with both values give a day, and a customer whose median lies
  beyond the model's search limit has no date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def resolve_as_of(as_of, features: pd.DataFrame) -> pd.Timestamp:
    """Return the cut-off day: the given one, checked against last purchase + elapsed days, or inferred from them."""
    implied = pd.to_datetime(features["last_purchase_date"]) + pd.to_timedelta(features["elapsed_days"], unit="D")
    implied_days = implied.dropna().dt.normalize().unique()
    if as_of is None:
        if len(implied_days) != 1:
            raise ValueError(
                f"cannot tell the cut-off: last_purchase_date + elapsed_days gives {len(implied_days)} different "
                "days; pass as_of (--as-of) with the cut-off the features were built at."
            )
        return pd.Timestamp(implied_days[0])
    try:
        day = pd.Timestamp(as_of)
    except (ValueError, TypeError) as err:
        raise ValueError(f"cannot read the cut-off {as_of!r} as a date; write it as YYYY-MM-DD.") from err
    day = day.tz_localize(None).normalize() if day.tzinfo is not None else day.normalize()
    if len(implied_days) and not (implied_days == day).all():
        raise ValueError(
            f"as_of {day.date()} is not the cut-off of the features, which is "
            f"{pd.Timestamp(implied_days.min()).date()} (last_purchase_date + elapsed_days); "
            "pass the cut-off the features were built at."
        )
    return day


def scores_cutoffs(scores: pd.DataFrame) -> list[pd.Timestamp]:
    """Return the cut-off days the scores were made at, sorted, from their dates and medians.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, n_scores)
        Score rows. The columns ``expected_next_purchase_date`` (dates or
        ISO strings) and ``median_days_to_next`` (days) are read.

    Returns
    -------
    list of Timestamp
        One day for scores of one cut-off; empty when no row has both
        columns filled, so the cut-off cannot be read.
    """
    if "expected_next_purchase_date" not in scores.columns or "median_days_to_next" not in scores.columns:
        return []
    dates = pd.to_datetime(scores["expected_next_purchase_date"], errors="coerce").dt.normalize()
    median_days = pd.to_numeric(scores["median_days_to_next"], errors="coerce")
    known = dates.notna() & np.isfinite(median_days)
    if not known.any():
        return []

    # The scorer writes the date as the cut-off plus the median rounded up to whole days.
    cutoffs = dates[known] - pd.to_timedelta(np.ceil(median_days[known]), unit="D")
    return [pd.Timestamp(day) for day in sorted(cutoffs.unique())]


def check_scores_cutoff(scores: pd.DataFrame, features_day: pd.Timestamp) -> None:
    """Raise ValueError when the scores were made at another cut-off than the features.

    Parameters
    ----------
    scores : DataFrame, shape (n_customers, n_scores)
        Score rows, as in :func:`scores_cutoffs`.
    features_day : Timestamp
        Cut-off day of the features.

    Raises
    ------
    ValueError
        When the scores give a day other than ``features_day``, or several
        days. The day recorded in ``scores.attrs["as_of"]`` (Parquet score
        files of ``rtt score`` keep it) comes first; otherwise it is derived
        from the dates and medians. Scores without either pass unchecked.
    """
    recorded = scores.attrs.get("as_of")
    if recorded is not None:
        day = pd.Timestamp(recorded).normalize()
        if day != features_day:
            raise ValueError(
                f"the scores were made as of {day.date()} (recorded in the scores file) but the features were "
                f"built as of {features_day.date()}; score and build features at the same --as-of."
            )
        return

    days = scores_cutoffs(scores)
    if not days or days == [features_day]:
        return
    scores_text = ", ".join(str(day.date()) for day in days[:3]) + (" and others" if len(days) > 3 else "")
    raise ValueError(
        f"the scores were made as of {scores_text} but the features were built as of {features_day.date()} "
        "(expected_next_purchase_date - median_days_to_next against last_purchase_date + elapsed_days); "
        "score and build features at the same --as-of."
    )
