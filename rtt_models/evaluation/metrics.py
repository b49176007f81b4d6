"""Metrics of next-purchase predictions against the holdout truth of a split.

Every metric compares a model's outputs at a cut-off with what happened in
the holdout window after it (see :func:`rtt_models.features.split_calibration_holdout`).
The truth is censored only at the window's end, so for every horizon
``h <= window_days`` the label "bought within h days" is known exactly for
every customer, and the Brier scores below need no censoring weights.
Horizons beyond the window cannot be scored: they are skipped and named in a
logged warning.

Metric keys
-----------
``c_index``
    Harrell's C-index of the time to the first holdout purchase, scored on
    the time scale: the restricted mean days to the next purchase over the
    window, ``integral_0^window S_i(t) dt`` (higher buys later).
``auc_{h}d``, ``brier_{h}d``
    ROC AUC and Brier score of ``p_purchase_{h}d`` against "bought within h".
``ici_{h}d``
    Integrated calibration index, decile version without lowess smoothing.
    Customers are cut into deciles of predicted probability, and equal
    predictions stay in one decile (see :func:`calibration_table`). The ICI
    is the mean over customers of ``|mean predicted - observed rate|`` of
    their decile, so each decile weighs by its size.
``ibs``
    Integrated Brier score: the Brier score of ``S_i(t)`` against "no
    purchase by day t" on the day grid 0..window, integrated by trapezoid
    and divided by the window length.
``count_ratio``, ``count_mae``
    Holdout occasions: sum of ``expected_occasions_{window}d`` over the sum
    of actual occasions (best at 1), and the per-customer mean absolute error.
``precision_top{k}``, ``lift_top{k}``
    At-risk ranking: customers are ranked by lapse risk ``1 - p_purchase_{H}d``
    at the largest evaluable horizon H (equal to ``risk_score`` when H is the
    largest horizon passed to ``predict``). Precision is the share of the
    top k percent who made no purchase within H days; lift is precision over
    that share among all customers.
``n_customers``, ``base_rate_{h}d``
    Customers scored and the share of them who bought within h days.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score

logger = logging.getLogger("rtt_models")

#: Whether a higher value is better, by metric family (the key without its
#: ``_{h}d`` or ``{k}`` suffix). ``count_ratio`` is best at 1 and is absent,
#: as are the descriptive ``n_customers`` and ``base_rate``.
HIGHER_IS_BETTER: dict[str, bool] = {
    "c_index": True,
    "auc": True,
    "brier": False,
    "ici": False,
    "ibs": False,
    "count_mae": False,
    "precision_top": True,
    "lift_top": True,
    "fit_seconds": False,
}

#: Metrics whose best value is 1 rather than a maximum or minimum.
BEST_AT_ONE: tuple[str, ...] = ("count_ratio",)

#: Scales a plain score can be on: "time" (higher buys later, so higher is
#: more likely to lapse) or "risk" (higher buys sooner).
SCORE_SCALES = ("time", "risk")


def metric_family(key: str) -> str:
    """Return the family of a metric key: ``"auc"`` for ``"auc_30d"``, ``"lift_top"`` for ``"lift_top10"``."""
    for family in (*HIGHER_IS_BETTER, *BEST_AT_ONE, "base_rate", "n_customers"):
        if key == family or key.startswith(family + "_") or (family.endswith("_top") and key.startswith(family)):
            return family
    return key


def evaluable_horizons(horizons: Sequence[int], window_days: int) -> list[int]:
    """Return the horizons that fit in the window, logging a warning that names the others.

    Parameters
    ----------
    horizons : sequence of int
        Horizons in days after the cut-off.
    window_days : int
        Length of the holdout window in days.

    Returns
    -------
    list of int
        The sorted distinct horizons ``h`` with ``1 <= h <= window_days``.
    """
    values = _check_horizon_values(horizons)
    skipped = [h for h in values if h > window_days]
    if skipped:
        logger.warning(
            "horizons %s days are longer than the %d-day holdout window and are skipped; "
            "pass horizons of at most %d days or a longer window",
            skipped,
            window_days,
            window_days,
        )
    return [h for h in values if h <= window_days]


# --------------------------------------------------------------- metrics


def harrell_c_index(days_to_next, event, time_score) -> float:
    """Harrell's C-index of a score on the time scale (higher buys later).

    A pair is comparable when the customer with the shorter time bought; a
    pair with equal times is comparable only when exactly the censored one
    is second. Ties in the score count one half. Computed by
    :func:`lifelines.utils.concordance_index`.

    Parameters
    ----------
    days_to_next : array-like of float, shape (n_customers,)
        Days to the first holdout purchase, or the window length if none.
    event : array-like of bool, shape (n_customers,)
        Whether the customer bought in the window.
    time_score : array-like of float, shape (n_customers,)
        Predicted score, higher meaning a later purchase.

    Returns
    -------
    float
        In [0, 1], 0.5 for a random score; NaN when no pair is comparable.
    """
    times = np.asarray(days_to_next, dtype=float)
    events = np.asarray(event, dtype=bool)
    scores = np.asarray(time_score, dtype=float)
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            f"the C-index needs finite scores, but {int((~np.isfinite(scores)).sum())} are NaN or infinite; "
            "fill or drop those customers first."
        )
    if not events.any():
        logger.warning("no customer bought in the holdout window, so the C-index is undefined (NaN)")
        return math.nan
    return float(concordance_index(times, scores, events))


def roc_auc(bought, p_purchase) -> float:
    """ROC AUC of purchase probabilities against 0/1 outcomes; NaN when only one outcome occurs."""
    labels = np.asarray(bought, dtype=bool)
    if labels.all() or not labels.any():
        logger.warning("every customer has the same outcome, so the AUC is undefined (NaN)")
        return math.nan
    return float(roc_auc_score(labels, np.asarray(p_purchase, dtype=float)))


def brier_score(bought, p_purchase) -> float:
    """Mean squared difference between purchase probabilities and 0/1 outcomes."""
    labels = np.asarray(bought, dtype=float)
    return float(np.mean((np.asarray(p_purchase, dtype=float) - labels) ** 2))


def calibration_table(bought, p_purchase, n_groups: int = 10) -> pd.DataFrame:
    """Predicted against observed purchase rate by group of predicted probability.

    A customer whose prediction has rank ``r`` (0-based, ties taking their
    lowest rank) goes to group ``floor(r * n_groups / n)``: deciles of equal
    size by default, except that equal predictions always share a group, so
    tied predictions give fewer or larger groups. The grouping does not depend
    on row order.

    Parameters
    ----------
    bought : array-like of bool, shape (n_customers,)
        Whether each customer bought within the horizon.
    p_purchase : array-like of float, shape (n_customers,)
        Predicted probability of that.
    n_groups : int, default 10
        Number of groups (deciles by default).

    Returns
    -------
    DataFrame, shape (n_nonempty_groups, 3)
        Indexed by ``group`` (0 = lowest predictions), columns ``n``,
        ``mean_predicted`` and ``observed_rate``.
    """
    labels = np.asarray(bought, dtype=float)
    predicted = np.asarray(p_purchase, dtype=float)
    if labels.shape != predicted.shape or labels.size == 0:
        raise ValueError(
            f"calibration needs outcomes and predictions of the same non-zero length, got {labels.size} "
            f"and {predicted.size}."
        )
    lowest_rank = pd.Series(predicted).rank(method="min").to_numpy() - 1
    group = np.floor(lowest_rank * n_groups / predicted.size).astype(np.int64)
    table = (
        pd.DataFrame({"group": group, "predicted": predicted, "observed": labels})
        .groupby("group")
        .agg(n=("predicted", "size"), mean_predicted=("predicted", "mean"), observed_rate=("observed", "mean"))
        .reset_index(drop=True)
    )
    table.index.name = "group"
    return table


def integrated_calibration_index(bought, p_purchase, n_groups: int = 10) -> float:
    """Count-weighted mean of ``|mean predicted - observed rate|`` over the groups of :func:`calibration_table`."""
    table = calibration_table(bought, p_purchase, n_groups)
    gap = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float((gap * table["n"]).sum() / table["n"].sum())


def integrated_brier_score(survival: pd.DataFrame, days_to_next, event, window_days: int) -> float:
    """Brier score of survival curves integrated over the window, divided by its length.

    ``BS(t) = mean_i (S_i(t) - 1[no purchase by day t])^2`` on the columns of
    ``survival`` in [0, window_days], integrated by trapezoid. Exact without
    censoring weights, because the truth is censored only at the window's end.

    Parameters
    ----------
    survival : DataFrame, shape (n_customers, n_times)
        ``S_i(t)`` with columns in days; they must include 0 and ``window_days``.
    days_to_next, event : array-like, shape (n_customers,)
        The holdout truth in the row order of ``survival``.
    window_days : int
        Length of the holdout window in days.
    """
    times = np.asarray(survival.columns, dtype=float)
    if not (np.isclose(times, 0).any() and np.isclose(times, window_days).any()):
        raise ValueError(
            f"the integrated Brier score needs survival at day 0 and day {window_days}, but the columns run "
            f"from {times.min():g} to {times.max():g}; call predict_survival(features, range(0, {window_days} + 1))."
        )
    inside = (times >= 0) & (times <= window_days)
    grid = times[inside]
    order = np.argsort(grid)
    grid = grid[order]
    curves = survival.to_numpy(dtype=float)[:, inside][:, order]

    # The customer has not bought by day t when there was no event, or the
    # first purchase came after t.
    time_values = np.asarray(days_to_next, dtype=float)[:, None]
    events = np.asarray(event, dtype=bool)[:, None]
    not_yet = ~events | (time_values > grid[None, :])
    brier_by_day = np.mean((curves - not_yet) ** 2, axis=0)
    return float(np.trapezoid(brier_by_day, grid) / window_days)


def top_k_precision(at_risk, lapse_score, k_percent: float) -> float:
    """Share of at-risk customers among the ``k_percent`` with the highest lapse score.

    The top group contains ``ceil(k_percent / 100 * n)`` customers. Customers
    tied with the last one taken count with their group's mean label, which
    is the expected precision under random tie-breaking; a constant score
    therefore has precision equal to the base rate.

    Parameters
    ----------
    at_risk : array-like of bool, shape (n_customers,)
        Whether each customer made no purchase within the horizon.
    lapse_score : array-like of float, shape (n_customers,)
        Higher means more likely to lapse.
    k_percent : float
        Size of the top group, in percent of customers, in (0, 100].
    """
    labels = np.asarray(at_risk, dtype=float)
    scores = np.asarray(lapse_score, dtype=float)
    if not 0 < k_percent <= 100:
        raise ValueError(f"top_k_percent values must lie in (0, 100], got {k_percent!r}.")
    n_top = max(1, math.ceil(k_percent / 100 * labels.size - 1e-9))
    threshold = np.sort(scores)[::-1][n_top - 1]
    above = scores > threshold
    tied = scores == threshold
    taken_from_ties = n_top - int(above.sum())
    hits = labels[above].sum() + taken_from_ties * labels[tied].mean()
    return float(hits / n_top)


# ------------------------------------------------------- entry points


def evaluate_predictions(
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    truth: pd.DataFrame,
    horizons: Sequence[int],
    window_days: int,
    top_k_percent: Sequence[float] = (10,),
) -> dict[str, float]:
    """Score one model's outputs at a cut-off against the holdout truth.

    Parameters
    ----------
    predictions : DataFrame, shape (n_customers, n_columns)
        Output of ``model.predict(features, horizons)``, indexed by
        ``customer_id``. It needs ``p_purchase_{h}d`` for each evaluable
        horizon; ``expected_occasions_{window_days}d`` enables the count
        metrics, which are skipped with a warning without it.
    survival : DataFrame, shape (n_customers, n_times), or None
        Output of ``model.predict_survival(features, range(0, window_days + 1))``.
        Without it ``ibs`` is skipped and the C-index uses
        ``expected_days_to_next`` (restricted to the largest predicted horizon).
    truth : DataFrame, shape (n_customers, 5)
        ``split.truth``: ``days_to_next``, ``event``, ``n_occasions_holdout``.
        Every customer in it must be in ``predictions``.
    horizons : sequence of int
        Horizons in days; those longer than the window are skipped with a
        logged warning.
    window_days : int
        Length of the holdout window in days.
    top_k_percent : sequence of float, default (10,)
        Sizes of the at-risk top groups, in percent.

    Returns
    -------
    dict of str to float
        The metric keys described in the module docstring.
    """
    predictions = _aligned(predictions, truth, "predictions")
    days = truth["days_to_next"].to_numpy(dtype=float)
    event = truth["event"].to_numpy(dtype=bool)
    scored = evaluable_horizons(horizons, window_days)
    missing = [f"p_purchase_{h}d" for h in scored if f"p_purchase_{h}d" not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions lack columns {missing}; call model.predict(features, horizons={scored}) "
            "so that every evaluated horizon is predicted."
        )
    metrics: dict[str, float] = {"n_customers": float(len(truth))}

    # Ranking of the time to the first purchase, on the time scale.
    if survival is not None:
        survival = _aligned(survival, truth, "survival")
        metrics["c_index"] = harrell_c_index(days, event, _restricted_mean_days(survival, window_days))
        metrics["ibs"] = integrated_brier_score(survival, days, event, window_days)
    else:
        metrics["c_index"] = harrell_c_index(days, event, predictions["expected_days_to_next"])

    # Discrimination and calibration of P(purchase within h), per horizon.
    for h in scored:
        bought = event & (days <= h)
        p_purchase = predictions[f"p_purchase_{h}d"].to_numpy(dtype=float)
        metrics[f"base_rate_{h}d"] = float(bought.mean())
        metrics[f"auc_{h}d"] = roc_auc(bought, p_purchase)
        metrics[f"brier_{h}d"] = brier_score(bought, p_purchase)
        metrics[f"ici_{h}d"] = integrated_calibration_index(bought, p_purchase)

    # Holdout occasion counts, as BTYD studies report them.
    count_column = f"expected_occasions_{window_days}d"
    if count_column in predictions.columns:
        expected = predictions[count_column].to_numpy(dtype=float)
        actual = truth["n_occasions_holdout"].to_numpy(dtype=float)
        metrics["count_ratio"] = float(expected.sum() / actual.sum()) if actual.sum() > 0 else math.nan
        metrics["count_mae"] = float(np.mean(np.abs(expected - actual)))
    else:
        logger.warning(
            "predictions lack %s, so count_ratio and count_mae are skipped; include %d in the horizons passed "
            "to predict",
            count_column,
            window_days,
        )

    # At-risk ranking at the largest evaluable horizon.
    if scored:
        largest = scored[-1]
        lapse = 1.0 - predictions[f"p_purchase_{largest}d"].to_numpy(dtype=float)
        metrics.update(_top_k_metrics(~(event & (days <= largest)), lapse, top_k_percent))
    return metrics


def evaluate_model(model, split, horizons: Sequence[int] = (30, 90), top_k_percent: Sequence[float] = (10,)) -> dict:
    """Score a fitted model on a calibration/holdout split; nothing is fitted.

    Parameters
    ----------
    model : NextPurchaseModel
        A fitted model.
    split : CalibrationHoldoutSplit
        Its ``features`` are scored and compared with its ``truth``.
    horizons : sequence of int, default (30, 90)
        Horizons in days; those longer than ``split.window_days`` are skipped.
    top_k_percent : sequence of float, default (10,)
        Sizes of the at-risk top groups, in percent.

    Returns
    -------
    dict of str to float
        As :func:`evaluate_predictions`.
    """
    predictions, survival = predict_for_evaluation(model, split.features, horizons, split.window_days)
    return evaluate_predictions(predictions, survival, split.truth, horizons, split.window_days, top_k_percent)


def predict_for_evaluation(model, features: pd.DataFrame, horizons: Sequence[int], window_days: int):
    """Predict what :func:`evaluate_predictions` needs.

    Returns
    -------
    predictions : DataFrame
        ``model.predict`` at the evaluable horizons and at ``window_days``.
    survival : DataFrame, shape (n_customers, window_days + 1)
        ``model.predict_survival`` on the day grid 0..window_days.
    """
    predict_horizons = sorted({*evaluable_horizons(horizons, window_days), int(window_days)})
    predictions = model.predict(features, horizons=predict_horizons)
    survival = model.predict_survival(features, np.arange(0, window_days + 1))
    return predictions, survival


def evaluate_scores(
    score_by_customer: pd.Series,
    truth: pd.DataFrame,
    horizons: Sequence[int],
    window_days: int,
    *,
    scale: str = "time",
    top_k_percent: Sequence[float] = (10,),
) -> dict[str, float]:
    """Compute the rank metrics of a plain score, such as days since last purchase.

    Parameters
    ----------
    score_by_customer : Series, shape (n_customers,)
        One score per customer, indexed by ``customer_id``; every customer of
        ``truth`` must have a finite score.
    truth : DataFrame
        ``split.truth``.
    horizons : sequence of int
        Horizons in days for the AUC; those longer than the window are skipped.
    window_days : int
        Length of the holdout window in days.
    scale : {"time", "risk"}, default "time"
        "time" when a higher score means a later purchase (days since last
        purchase), "risk" when it means a sooner one (purchase count).
    top_k_percent : sequence of float, default (10,)
        Sizes of the at-risk top groups, in percent.

    Returns
    -------
    dict of str to float
        ``n_customers``, ``c_index``, ``base_rate_{h}d``, ``auc_{h}d``,
        ``precision_top{k}`` and ``lift_top{k}``; the at-risk ranking uses the
        largest evaluable horizon.
    """
    time_score = _as_time_scale(_aligned(score_by_customer, truth, "score_by_customer"), scale)
    days = truth["days_to_next"].to_numpy(dtype=float)
    event = truth["event"].to_numpy(dtype=bool)
    scored = evaluable_horizons(horizons, window_days)

    metrics: dict[str, float] = {"n_customers": float(len(truth))}
    metrics["c_index"] = harrell_c_index(days, event, time_score)
    for h in scored:
        bought = event & (days <= h)
        metrics[f"base_rate_{h}d"] = float(bought.mean())
        metrics[f"auc_{h}d"] = roc_auc(bought, -time_score)
    if scored:
        metrics.update(_top_k_metrics(~(event & (days <= scored[-1])), time_score, top_k_percent))
    return metrics


def score_days_since_last_purchase(features: pd.DataFrame) -> pd.Series:
    """Return ``elapsed_days`` as a one-line score on the time scale (higher buys later)."""
    return features["elapsed_days"].astype(float).rename("days_since_last_purchase")


def score_purchase_count(features: pd.DataFrame) -> pd.Series:
    """Return ``n_occasions`` as a one-line score on the risk scale (higher buys sooner)."""
    return features["n_occasions"].astype(float).rename("purchase_count")


#: One-line baseline scores: name -> (function of the features, scale).
SCORE_BASELINES = {
    "days_since_last_purchase": (score_days_since_last_purchase, "time"),
    "purchase_count": (score_purchase_count, "risk"),
}


# ------------------------------------------------------------- helpers


def _top_k_metrics(at_risk: np.ndarray, lapse_score: np.ndarray, top_k_percent: Sequence[float]) -> dict[str, float]:
    base_rate = float(np.mean(at_risk))
    metrics = {}
    for k in top_k_percent:
        label = f"{k:g}"
        precision = top_k_precision(at_risk, lapse_score, float(k))
        metrics[f"precision_top{label}"] = precision
        metrics[f"lift_top{label}"] = precision / base_rate if base_rate > 0 else math.nan
    return metrics


def _as_time_scale(score: pd.Series, scale: str) -> np.ndarray:
    """Turn a score into the time scale (higher buys later): the one place that flips signs."""
    if scale not in SCORE_SCALES:
        raise ValueError(f"scale must be 'time' (higher buys later) or 'risk' (higher buys sooner), got {scale!r}.")
    values = np.asarray(score, dtype=float)
    return values if scale == "time" else -values


def _restricted_mean_days(survival: pd.DataFrame, window_days: int) -> np.ndarray:
    """``integral_0^window S_i(t) dt`` over the survival columns in [0, window], in days."""
    times = np.asarray(survival.columns, dtype=float)
    inside = (times >= 0) & (times <= window_days)
    order = np.argsort(times[inside])
    return np.trapezoid(survival.to_numpy(dtype=float)[:, inside][:, order], times[inside][order], axis=1)


def _aligned(frame, truth: pd.DataFrame, name: str):
    """Reorder ``frame`` to the customers of ``truth``, raising when some are missing."""
    if isinstance(frame, pd.DataFrame) and "customer_id" in frame.columns:
        frame = frame.set_index("customer_id")
    if frame.index.has_duplicates:
        raise ValueError(f"{name} has duplicated customer_id values; pass one row per customer.")
    missing = truth.index.difference(frame.index)
    if len(missing):
        raise ValueError(
            f"{name} has no row for {len(missing)} of the {len(truth)} customers in the truth, for example "
            f"{missing[:5].tolist()}; score split.features, the customers the truth was built for."
        )
    return frame.reindex(truth.index)


def _check_horizon_values(horizons: Sequence[int]) -> list[int]:
    values = np.atleast_1d(np.asarray(horizons, dtype=float))
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 1) or np.any(values != np.round(values)):
        raise ValueError(
            f"horizons must be whole days >= 1, for example (30, 90); got {list(np.atleast_1d(horizons))}."
        )
    return sorted({int(v) for v in values})
