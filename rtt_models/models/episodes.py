"""Gap episodes and covariates, prepared for the families fitted on episodes.

The survival regression, the boosted hazard and the dropout-timing models
all read gap episodes (one row per purchase occasion, see
:func:`rtt_models.features.build_episodes`) and a list of covariates. This
module validates both, drops the episodes that carry no information, bounds
the rows by seeded sampling, and finds the covariate columns that can enter
a regression design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Standard deviations below this are treated as zero: such a covariate is
# constant in the training rows and is left out of the design.
CONSTANT_STD = 1e-12

# Design columns whose training correlation with an earlier column exceeds
# this in absolute value (frequency = n_occasions - 1, for example) are
# left out, because their coefficients are not identifiable.
_COLLINEAR_CORRELATION = 1.0 - 1e-9

#: z-scores are clipped to this many standard deviations, in fit and predict.
Z_SCORE_LIMIT = 5.0


def default_covariates() -> list[str]:
    """Return the covariates that mean the same in episodes and customer features.

    The list is :data:`rtt_models.features.EPISODE_COVARIATES`, read at call
    time so that importing the model modules does not import the feature code.
    """
    from rtt_models.features import EPISODE_COVARIATES

    return list(EPISODE_COVARIATES)


def check_episodes(episodes: pd.DataFrame | None, covariates: list[str], model_name: str) -> pd.DataFrame:
    """Validate gap episodes and return them in a canonical row order.

    Parameters
    ----------
    episodes : DataFrame, shape (n_episodes, n_columns) or None
        Gap episodes with ``duration`` (days), ``event`` (bool) and the
        covariate columns.
    covariates : list of str
        Covariate columns the model reads.
    model_name : str
        Class name used in error messages.

    Returns
    -------
    DataFrame, shape (n_episodes, n_columns)
        A copy with float ``duration`` and bool ``event``, sorted by
        ``customer_id`` and ``occasion_date`` when both columns exist, so
        that seeded sampling does not depend on the input row order.

    Raises
    ------
    ValueError
        When episodes are missing, lack columns, or have durations that are
        negative or not finite, or events that are not 0/1.
    """
    if episodes is None:
        raise ValueError(
            f"{model_name} is fitted on gap episodes, but episodes is None; build them with "
            "rtt_models.features.build_episodes(transactions, as_of) and call fit(features, episodes)."
        )
    if not isinstance(episodes, pd.DataFrame):
        raise TypeError(
            f"{model_name} expects episodes as a pandas DataFrame, got {type(episodes).__name__}; "
            "build them with rtt_models.features.build_episodes."
        )
    missing = [column for column in ["duration", "event", *covariates] if column not in episodes.columns]
    if missing:
        raise ValueError(
            f"episodes are missing columns {missing}; pass the output of rtt_models.features.build_episodes "
            "or set covariates to columns the episodes have."
        )
    if len(episodes) == 0:
        raise ValueError(f"{model_name} cannot be fitted on 0 episodes; build episodes at a later cut-off.")

    frame = episodes.copy()
    duration = pd.to_numeric(frame["duration"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(duration) | (duration < 0)
    if bad.any():
        raise ValueError(
            f"episode duration must be finite days >= 0, but {int(bad.sum())} rows are not, for example "
            f"{frame['duration'][bad].head(3).tolist()}; rebuild the episodes with rtt_models.features.build_episodes."
        )
    event = frame["event"]
    if not event.isin([True, False, 0, 1]).all():
        raise ValueError(
            f"episode event must be bool (or 0/1), got values {sorted(map(str, event.unique()[:5]))}; "
            "set event to True where the next occasion was observed."
        )
    frame["duration"] = duration
    frame["event"] = event.astype(bool)

    # Sorting makes the seeded sampling of training rows independent of the
    # order in which the caller passed the episodes.
    if {"customer_id", "occasion_date"} <= set(frame.columns):
        frame = frame.sort_values(["customer_id", "occasion_date"], kind="stable")
    return frame


def check_prediction_columns(features, columns: list[str], model_name: str, kind: str = "covariates") -> None:
    """Raise when the features given to ``fit`` lack a column the model reads at prediction time."""
    if not isinstance(features, pd.DataFrame):
        return
    absent = [column for column in columns if column not in features.columns]
    if absent:
        raise ValueError(
            f"features are missing {kind} {absent} that {model_name} reads at prediction time; "
            "pass the output of rtt_models.features.build_features."
        )


def usable_episodes(frame: pd.DataFrame, model_name: str) -> tuple[pd.DataFrame, int]:
    """Drop episodes of duration 0 and check that some next purchase was observed.

    An episode of duration 0 ends on the cut-off day and is censored at once,
    so it adds nothing to a likelihood (and lifelines rejects it).

    Returns
    -------
    frame : DataFrame
        The episodes with a positive duration.
    n_dropped : int
        Episodes of duration 0 left out.
    """
    zero = frame["duration"].to_numpy() <= 0
    frame = frame.loc[~zero]
    if len(frame) == 0 or not frame["event"].any():
        raise ValueError(
            f"{model_name} needs episodes with at least one observed next purchase (event true and duration > 0), "
            f"got {len(frame)} usable rows; build episodes over a longer history."
        )
    return frame, int(zero.sum())


def sample_episodes(frame: pd.DataFrame, max_rows: int | None, random_state) -> pd.DataFrame:
    """Keep at most ``max_rows`` episodes by seeded uniform sampling, in their original order."""
    if max_rows is None or len(frame) <= max_rows:
        return frame
    rng = np.random.default_rng(random_state)
    return frame.iloc[np.sort(rng.choice(len(frame), size=max_rows, replace=False))]


def check_covariates(covariates, model_name: str) -> list[str]:
    """Return the covariate list, the default one for None, or raise TypeError."""
    if covariates is None:
        return default_covariates()
    if isinstance(covariates, str) or not all(isinstance(column, str) for column in covariates):
        raise TypeError(
            f"{model_name}: covariates must be a list of column names or None, got {covariates!r}; "
            "for example covariates=['frequency', 'gap_mean_days']."
        )
    if len(set(covariates)) != len(covariates):
        raise ValueError(f"{model_name}: covariates contains duplicated names: {list(covariates)}.")
    reserved = sorted({"duration", "event", "elapsed_days"} & set(covariates))
    if reserved:
        raise ValueError(
            f"{model_name}: {reserved} cannot be covariates because they are the episode target or the "
            "open-gap clock; remove them from covariates."
        )
    return list(covariates)


def independent_columns(z: pd.DataFrame) -> list[str]:
    """Return the columns of z, leaving out each one perfectly correlated with an earlier one."""
    values = z.to_numpy(dtype=float)
    values = (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), CONSTANT_STD)
    correlation = values.T @ values / len(values)
    independent: list[int] = []
    for j in range(values.shape[1]):
        if values[:, j].std() > CONSTANT_STD and not any(abs(correlation[i, j]) > _COLLINEAR_CORRELATION for i in independent):
            independent.append(j)
    return [z.columns[j] for j in independent]


def missing_indicators(raw: pd.DataFrame) -> dict[str, str]:
    """Name one indicator per distinct training pattern of missing values."""
    indicators: dict[str, str] = {}
    patterns: list[np.ndarray] = []
    for column in raw.columns:
        missing = raw[column].isna().to_numpy()
        if not missing.any() or missing.all() or any(np.array_equal(missing, seen) for seen in patterns):
            continue
        patterns.append(missing)
        indicators[f"{column}_missing"] = column
    return indicators


def check_finite_or_nan(raw: pd.DataFrame, source: str) -> None:
    """Raise ValueError for infinite covariate values, which NaN imputation cannot repair."""
    infinite = np.isinf(raw.to_numpy(dtype=float))
    if infinite.any():
        columns = raw.columns[infinite.any(axis=0)].tolist()
        raise ValueError(
            f"{source} have infinite values in covariates {columns} ({int(infinite.sum())} cells); "
            "replace them with NaN (treated as missing) or finite values."
        )
