"""Rolling-origin backtests: refit and score every model at several cut-offs.

At each cut-off the log is split into features and holdout truth, gap
episodes are built when a model needs them, each model is cloned, fitted and
scored with :func:`rtt_models.evaluation.metrics.evaluate_predictions`. Every
cut-off uses the same holdout window, so metrics are comparable across
cut-offs. A model that fails at a cut-off is recorded with its error and the
backtest goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import form_occasions, resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.features import CalibrationHoldoutSplit, build_episodes, split_calibration_holdout
from rtt_models.features.customer import as_transaction_log
from rtt_models.models import NextPurchaseModel, make_model
from rtt_models.evaluation.metrics import (
    SCORE_BASELINES,
    evaluable_horizons,
    evaluate_predictions,
    evaluate_scores,
    predict_for_evaluation,
)

logger = logging.getLogger("rtt_models")

#: Days between points of the cumulative tracking curve; the window's last
#: day is always included.
TRACKING_STEP_DAYS = 7


@dataclass
class BacktestResult:
    """Metrics of every model at every cut-off, and what the plots need.

    Attributes
    ----------
    metrics : DataFrame, shape (n_rows, 4)
        Long table: ``model``, ``cutoff`` (Timestamp), ``metric``, ``value``.
    per_cutoff : DataFrame, shape (n_models * n_cutoffs, 2 + n_metrics)
        Wide table: one row per model and cut-off that succeeded, with
        ``fit_seconds`` (wall-clock seconds of ``fit``).
    summary : DataFrame, shape (n_models, ...)
        One row per model, indexed by ``model``: ``n_cutoffs`` scored, the mean of
        each metric over cut-offs and ``<metric>_std`` (sample standard
        deviation, NaN with one cut-off). Sorted best first by ``c_index``,
        then by ``ibs``; models without metrics come last.
    failures : DataFrame, shape (n_failures, 3)
        ``model``, ``cutoff`` and ``error`` (exception type and message).
    predictions : dict of (str, Timestamp) to DataFrame
        ``model.predict`` output per model and cut-off, indexed by ``customer_id``.
    truths : dict of Timestamp to DataFrame
        Holdout truth per cut-off.
    window_days : int
        Holdout window length, the same at every cut-off.
    horizons : list of int
        The evaluated horizons.
    latest_split : CalibrationHoldoutSplit or None
        The split at the latest cut-off.
    latest_models : dict of str to NextPurchaseModel
        Models fitted at the latest cut-off (the ones that succeeded).
    tracking : DataFrame, shape (n_days, 1 + n_models)
        At the latest cut-off, cumulative holdout occasions of the calibration
        customers by day after the cut-off: ``actual`` and one column per model
        (sum of ``expected_occasions``), indexed by ``day``.
    """

    metrics: pd.DataFrame
    per_cutoff: pd.DataFrame
    summary: pd.DataFrame
    failures: pd.DataFrame
    predictions: dict = field(default_factory=dict)
    truths: dict = field(default_factory=dict)
    window_days: int = 0
    horizons: list = field(default_factory=list)
    latest_split: CalibrationHoldoutSplit | None = None
    latest_models: dict = field(default_factory=dict)
    tracking: pd.DataFrame | None = None


def backtest(
    transactions: TransactionLog | pd.DataFrame,
    models: Mapping[str, NextPurchaseModel | str],
    cutoffs: Sequence,
    horizons: Sequence[int] = (30, 90),
    window_days: int | None = None,
    occasion_rule: str = "positive",
    progress: Callable[[str, pd.Timestamp], None] | None = None,
    *,
    top_k_percent: Sequence[float] = (10,),
    score_baselines: bool = False,
) -> BacktestResult:
    """Refit and score models at rolling-origin cut-offs.

    Parameters
    ----------
    transactions : TransactionLog or DataFrame
        The log.
    models : mapping of str to NextPurchaseModel or str
        Display name to an unfitted model, or to a short name for
        :func:`rtt_models.models.make_model`. Each is cloned before fitting.
    cutoffs : sequence of str, date or Timestamp
        Cut-offs; a date includes that whole day.
    horizons : sequence of int, default (30, 90)
        Horizons in days; those longer than the window are skipped with a
        logged warning.
    window_days : int, optional
        Holdout window in days, the same at every cut-off. Default: the days
        from the latest cut-off to the last day of the data.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days count as purchase occasions.
    progress : callable, optional
        Called as ``progress(model_name, cutoff)`` after each model and cut-off,
        for example to advance a progress bar.
    top_k_percent : sequence of float, default (10,)
        Sizes of the at-risk top groups, in percent.
    score_baselines : bool, default False
        Also score the one-line baselines "days since last purchase" and
        "purchase count" (rank metrics only), as rows named
        ``days_since_last_purchase`` and ``purchase_count``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ValueError
        When a cut-off has no full window of data after it, or the window or
        the cut-offs are invalid. The message names the cut-off and the last
        day of the data.
    """
    log = as_transaction_log(transactions)
    named_models = _resolve_models(models)
    days, window = check_cutoffs(log, cutoffs, window_days)
    scored_horizons = evaluable_horizons(horizons, window)
    logger.info(
        "backtest of %d models at %d cut-offs with a %d-day window", len(named_models), len(days), window
    )

    rows: list[dict] = []
    failures: list[dict] = []
    result = BacktestResult(
        metrics=pd.DataFrame(), per_cutoff=pd.DataFrame(), summary=pd.DataFrame(), failures=pd.DataFrame(),
        window_days=window, horizons=scored_horizons,
    )
    for cutoff in days:
        is_latest = cutoff == days[-1]

        # One split per cut-off; episodes only when some model needs them.
        split = split_calibration_holdout(log, cutoff, window, occasion_rule=occasion_rule)
        result.truths[cutoff] = split.truth
        episodes = None
        if any(model.needs_episodes for model in named_models.values()):
            episodes = build_episodes(log, cutoff, occasion_rule=occasion_rule, report=DataQualityReport())

        for name, template in named_models.items():
            try:
                model = clone(template)
                started = time.perf_counter()
                model.fit(split.features, episodes if model.needs_episodes else None)
                fit_seconds = time.perf_counter() - started
                predictions, survival = predict_for_evaluation(model, split.features, scored_horizons, window)
                metrics = evaluate_predictions(
                    predictions, survival, split.truth, scored_horizons, window, top_k_percent
                )
            except Exception as err:  # noqa: BLE001 - one failing model must not stop the others
                error = f"{type(err).__name__}: {err}"
                logger.warning("model %s failed at cut-off %s: %s", name, cutoff.date(), error)
                failures.append({"model": name, "cutoff": cutoff, "error": error})
            else:
                rows.append({"model": name, "cutoff": cutoff, **metrics, "fit_seconds": fit_seconds})
                result.predictions[(name, cutoff)] = predictions
                if is_latest:
                    result.latest_models[name] = model
            if progress is not None:
                progress(name, cutoff)

        # The one-line scores need no fitting.
        if score_baselines:
            for name, (score, scale) in SCORE_BASELINES.items():
                metrics = evaluate_scores(
                    score(split.features), split.truth, scored_horizons, window, scale=scale,
                    top_k_percent=top_k_percent,
                )
                rows.append({"model": name, "cutoff": cutoff, **metrics, "fit_seconds": math.nan})
        if is_latest:
            result.latest_split = split
            result.tracking = _tracking_table(log, split, result.latest_models, occasion_rule)

    # Tables: wide per cut-off, long, and the per-model summary.
    per_cutoff = pd.DataFrame(rows)
    if per_cutoff.empty:
        per_cutoff = pd.DataFrame(columns=["model", "cutoff", "fit_seconds"])
    result.per_cutoff = per_cutoff
    metric_columns = [c for c in per_cutoff.columns if c not in ("model", "cutoff", "fit_seconds")]
    result.metrics = (
        per_cutoff.melt(id_vars=["model", "cutoff"], value_vars=metric_columns, var_name="metric", value_name="value")
        .dropna(subset=["value"])
        .reset_index(drop=True)
    )
    result.failures = pd.DataFrame(failures, columns=["model", "cutoff", "error"])
    result.summary = summarize(per_cutoff, all_models=[*named_models, *(SCORE_BASELINES if score_baselines else ())])
    return result


def summarize(per_cutoff: pd.DataFrame, all_models: Sequence[str] = ()) -> pd.DataFrame:
    """Average each metric over cut-offs per model, best model first.

    Parameters
    ----------
    per_cutoff : DataFrame
        The wide table of :class:`BacktestResult`.
    all_models : sequence of str
        Models to list even without a successful cut-off (with
        ``n_cutoffs`` 0 and NaN metrics).

    Returns
    -------
    DataFrame
        Indexed by ``model``: ``n_cutoffs``, then for each metric its mean
        and ``<metric>_std``. Sorted by ``c_index`` descending, then ``ibs``
        ascending, missing values last.
    """
    value_columns = [c for c in per_cutoff.columns if c not in ("model", "cutoff")]
    grouped = per_cutoff.groupby("model", sort=False)[value_columns]
    means = grouped.mean()
    stds = grouped.std().add_suffix("_std")
    summary = pd.concat([grouped.size().rename("n_cutoffs"), means, stds], axis=1)
    ordered = [c for column in value_columns for c in (column, f"{column}_std")]
    summary = summary[["n_cutoffs", *ordered]]
    extra = [m for m in all_models if m not in summary.index]
    if extra:
        summary = pd.concat([summary, pd.DataFrame({"n_cutoffs": 0}, index=pd.Index(extra))])
    summary.index.name = "model"
    sort_by = [c for c in ("c_index", "ibs") if c in summary.columns]
    if sort_by:
        summary = summary.sort_values(sort_by, ascending=[c != "c_index" for c in sort_by], na_position="last")
    summary["n_cutoffs"] = summary["n_cutoffs"].astype(int)
    return summary


def predicted_cumulative_occasions(model: NextPurchaseModel, features: pd.DataFrame, days: Sequence[int]) -> pd.Series:
    """Sum over customers of ``expected_occasions_{t}d`` for each day t, indexed by ``day``."""
    grid = [int(d) for d in days if d >= 1]
    predictions = model.predict(features, horizons=grid)
    totals = [predictions[f"expected_occasions_{d}d"].sum() for d in grid]
    return pd.Series(totals, index=pd.Index(grid, name="day"), dtype=float)


def actual_cumulative_occasions(
    transactions: TransactionLog | pd.DataFrame,
    split: CalibrationHoldoutSplit,
    days: Sequence[int],
    occasion_rule: str = "positive",
) -> pd.Series:
    """Holdout occasions of the split's customers up to each day after the cut-off, indexed by ``day``."""
    log = as_transaction_log(transactions)
    cutoff = resolve_cutoff(split.as_of, log)
    window_end = cutoff.day + pd.Timedelta(days=split.window_days + 1)
    holdout = form_occasions(
        log, start=cutoff.end, end=window_end, occasion_rule=occasion_rule, report=DataQualityReport()
    )

    # Day after the cut-off of each holdout occasion of a calibration customer.
    known = np.isin(holdout.customer_ids, split.features.index.to_numpy())[holdout.customer]
    cutoff_day = (cutoff.day - pd.Timestamp("1970-01-01")).days
    day_after = np.sort(holdout.day[known] - cutoff_day)
    grid = np.asarray([int(d) for d in days], dtype=np.int64)
    counts = np.searchsorted(day_after, grid, side="right")
    return pd.Series(counts.astype(float), index=pd.Index(grid, name="day"))


# ------------------------------------------------------------- helpers


def _resolve_models(models: Mapping[str, NextPurchaseModel | str]) -> dict[str, NextPurchaseModel]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError(
            f"models must be a non-empty mapping of names to models or model names, got {models!r}; "
            "for example {'bg_nbd': 'bg_nbd'}."
        )
    resolved = {}
    for name, model in models.items():
        if isinstance(model, str):
            model = make_model(model)
        if not isinstance(model, NextPurchaseModel):
            raise TypeError(
                f"model {name!r} is a {type(model).__name__}, not a NextPurchaseModel or a model name."
            )
        resolved[str(name)] = model
    return resolved


def check_cutoffs(
    log: TransactionLog,
    cutoffs: Sequence,
    window_days: int | None,
    *,
    cutoffs_name: str = "cutoffs",
    window_name: str = "window_days",
) -> tuple[list[pd.Timestamp], int]:
    """Resolve the cut-offs to days and check that each has a full window of data after it.

    Parameters
    ----------
    log : TransactionLog
        The log.
    cutoffs : sequence of str, date or Timestamp
        Cut-offs; a date includes that whole day.
    window_days : int or None
        Holdout window in days; None takes the days from the latest cut-off
        to the last day of the data.
    cutoffs_name, window_name : str
        How the messages name the cut-offs and the window, for example the
        command-line options ``--as-of`` and ``--window-days``.

    Returns
    -------
    days : list of Timestamp
        The cut-off days, sorted.
    window : int
        The holdout window in days.

    Raises
    ------
    ValueError
        For no cut-off, a repeated one, one before the first day of the data,
        or one without a full window of data after it. The message names the
        cut-off, the first or last day of the data and the dates that work.
    """
    if isinstance(cutoffs, (str, dt.date)):
        cutoffs = [cutoffs]
    cutoffs = list(cutoffs)
    if not cutoffs:
        raise ValueError(f"{cutoffs_name} is empty; pass at least one cut-off date, for example 1997-09-30.")
    if log.frame.empty:
        raise ValueError("the transaction log is empty, so there is nothing to backtest.")
    days = sorted(resolve_cutoff(c, log).day for c in cutoffs)
    duplicated = sorted({d.date().isoformat() for d in days if days.count(d) > 1})
    if duplicated:
        raise ValueError(f"{cutoffs_name} {duplicated} are given more than once; pass each day once.")
    first_day = log.frame["timestamp"].min().normalize()
    last_day = log.frame["timestamp"].max().normalize()
    early = [d.date().isoformat() for d in days if d < first_day]
    if early:
        # The latest cut-off that works leaves at least one day of holdout,
        # or the whole window when one is given.
        latest = last_day - pd.Timedelta(days=window_days if isinstance(window_days, (int, np.integer)) else 1)
        verb = "comes" if len(early) == 1 else "come"
        raise ValueError(
            f"{cutoffs_name} {', '.join(early)} {verb} before the first day of the data, {first_day.date()}, so no "
            f"customer has a purchase to score there; pass {cutoffs_name} dates from {first_day.date()} to "
            f"{latest.date()} (later ones give the models more history)."
        )

    # Default: the window from the latest cut-off to the end of the data.
    if window_days is None:
        window = int((last_day - days[-1]).days)
        if window < 1:
            raise ValueError(
                f"the latest cut-off {days[-1].date()} leaves no day of data after it (the last data day is "
                f"{last_day.date()}); choose an earlier cut-off in {cutoffs_name}."
            )
    else:
        if isinstance(window_days, bool) or not isinstance(window_days, (int, np.integer)) or window_days < 1:
            raise ValueError(f"{window_name} must be a whole number of days >= 1, got {window_days!r}.")
        window = int(window_days)
    for day in days:
        window_last = day + pd.Timedelta(days=window)
        if window_last > last_day:
            raise ValueError(
                f"cut-off {day.date()} has no full {window}-day holdout window: it would end on "
                f"{window_last.date()}, after the last data day {last_day.date()}; use an earlier cut-off "
                f"or a shorter {window_name}."
            )
    return days, window


def check_history_before(
    log: TransactionLog, as_of, window_days: int, *, as_of_name: str = "as_of", window_name: str = "validation_days"
) -> None:
    """Check that ``window_days`` days of data lie before ``as_of``, as an internal validation needs.

    A validation that ends at ``as_of`` has its cut-off ``window_days``
    before it, and that cut-off must fall on or after the first day of the
    data.

    Parameters
    ----------
    log : TransactionLog
        The log.
    as_of : str, date, Timestamp or None
        The cut-off the user gave; None is the last day of the data.
    window_days : int
        The validation window in days.
    as_of_name, window_name : str
        How the message names the cut-off and the setting of the window, for
        example ``--as-of`` and ``--validation-days``. The message ends
        "or shorten <window_name>".

    Raises
    ------
    ValueError
        When ``as_of`` is fewer than ``window_days`` days after the first day
        of the data. The message names ``as_of``, the first day, the
        earliest ``as_of`` that works and ``window_name``.
    """
    if log.frame.empty:
        return
    day = resolve_cutoff(as_of, log).day
    first_day = log.frame["timestamp"].min().normalize()
    earliest = first_day + pd.Timedelta(days=int(window_days))
    if day < earliest:
        raise ValueError(
            f"{as_of_name} {day.date()} is too early: the internal validation needs {int(window_days)} days of data "
            f"before it, and the data start on {first_day.date()}; pass {as_of_name} {earliest.date()} or later, "
            f"or shorten {window_name}."
        )


def _tracking_table(log, split, models: Mapping[str, NextPurchaseModel], occasion_rule: str) -> pd.DataFrame:
    """Cumulative actual and predicted holdout occasions on a weekly day grid."""
    window = split.window_days
    days = sorted({*range(TRACKING_STEP_DAYS, window + 1, TRACKING_STEP_DAYS), window})
    table = pd.DataFrame({"actual": actual_cumulative_occasions(log, split, days, occasion_rule)})
    for name, model in models.items():
        try:
            table[name] = predicted_cumulative_occasions(model, split.features, days)
        except Exception as err:  # noqa: BLE001 - the tracking curve is optional output
            logger.warning("model %s failed to predict the tracking curve: %s: %s", name, type(err).__name__, err)
            table[name] = math.nan
    return table
