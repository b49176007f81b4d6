"""Evaluation plots as matplotlib Figures, saved as PNG.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas,
never through ``pyplot``, so nothing here changes matplotlib's global
backend or keeps figures alive after the caller drops them. Every function
returns the Figure and, given ``path``, also writes it there as PNG.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rtt_models.evaluation.metrics import calibration_table

logger = logging.getLogger("rtt_models")

#: Customers drawn by :func:`save_backtest_plots` in the survival-curve plot.
SURVIVAL_PLOT_CUSTOMERS = 5


def plot_calibration(
    predictions: Mapping[str, pd.DataFrame],
    truth: pd.DataFrame,
    horizon: int,
    n_groups: int = 10,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Plot observed against predicted P(purchase within ``horizon`` days), one curve per model.

    Parameters
    ----------
    predictions : mapping of str to DataFrame
        Model name to ``model.predict`` output with ``p_purchase_{horizon}d``,
        indexed by ``customer_id``.
    truth : DataFrame
        ``split.truth`` of the same customers.
    horizon : int
        Horizon in days, at most the holdout window.
    n_groups : int, default 10
        Groups of equal size per curve (deciles by default).
    path : path, optional
        Where to save the PNG.
    """
    figure, axes = _figure()
    bought = (truth["event"] & (truth["days_to_next"] <= horizon)).to_numpy()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, frame in predictions.items():
        predicted = frame[f"p_purchase_{horizon}d"].reindex(truth.index).to_numpy(dtype=float)
        table = calibration_table(bought, predicted, n_groups)
        axes.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel(f"predicted P(purchase within {horizon} days)")
    axes.set_ylabel("observed share who bought")
    axes.set_title(f"Calibration by group of predicted probability, {horizon} days")
    axes.legend(loc="upper left", fontsize="small")
    return _finish(figure, path)


def plot_tracking(tracking: pd.DataFrame, path: str | os.PathLike | None = None) -> Figure:
    """Plot cumulative holdout occasions, actual against each model's expectation.

    Parameters
    ----------
    tracking : DataFrame, shape (n_days, 1 + n_models)
        Indexed by day after the cut-off, with an ``actual`` column and one
        column per model, like :attr:`BacktestResult.tracking`.
    path : path, optional
        Where to save the PNG.
    """
    figure, axes = _figure()
    axes.plot(tracking.index, tracking["actual"], color="black", linewidth=2, label="actual")
    for name in tracking.columns.drop("actual"):
        axes.plot(tracking.index, tracking[name], linestyle="--", label=name)
    axes.set_xlabel("days after the cut-off")
    axes.set_ylabel("cumulative purchase occasions")
    axes.set_title("Cumulative occasions in the holdout window")
    axes.legend(loc="upper left", fontsize="small")
    return _finish(figure, path)


def plot_lift(
    predictions: Mapping[str, pd.DataFrame],
    truth: pd.DataFrame,
    horizon: int,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Plot the lift of the at-risk ranking against the share of customers contacted.

    Customers are ranked by lapse risk ``1 - p_purchase_{horizon}d``. The
    lift at x percent is the share of customers without a purchase within
    ``horizon`` days among the top x percent, divided by that share overall.

    Parameters
    ----------
    predictions : mapping of str to DataFrame
        Model name to ``model.predict`` output with ``p_purchase_{horizon}d``.
    truth : DataFrame
        ``split.truth`` of the same customers.
    horizon : int
        Horizon in days, at most the holdout window.
    path : path, optional
        Where to save the PNG.
    """
    figure, axes = _figure()
    at_risk = ~(truth["event"] & (truth["days_to_next"] <= horizon)).to_numpy()
    base_rate = at_risk.mean()
    for name, frame in predictions.items():
        lapse = 1.0 - frame[f"p_purchase_{horizon}d"].reindex(truth.index).to_numpy(dtype=float)
        order = np.argsort(-lapse, kind="stable")
        hits = np.cumsum(at_risk[order])
        contacted = np.arange(1, at_risk.size + 1)
        lift = hits / contacted / base_rate if base_rate > 0 else np.full(contacted.size, np.nan)
        axes.plot(100 * contacted / at_risk.size, lift, label=name)
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="random order")
    axes.set_xlabel("customers contacted, percent, highest lapse risk first")
    axes.set_ylabel(f"lift of 'no purchase within {horizon} days'")
    axes.set_title(f"At-risk lift, {horizon} days")
    axes.legend(loc="upper right", fontsize="small")
    return _finish(figure, path)


def plot_gap_histogram(data: pd.DataFrame, bins: int = 50, path: str | os.PathLike | None = None) -> Figure:
    """Plot a histogram of gaps between purchases, in days.

    Parameters
    ----------
    data : DataFrame
        Gap episodes (uses ``duration`` where ``event`` is true: completed
        gaps), or per-customer features (overlays each customer's
        ``gap_median_days`` and ``elapsed_days``, the open gap).
    bins : int, default 50
        Histogram bins.
    path : path, optional
        Where to save the PNG.
    """
    figure, axes = _figure()
    if {"duration", "event"} <= set(data.columns):
        gaps = data.loc[data["event"].astype(bool), "duration"].to_numpy(dtype=float)
        axes.hist(gaps, bins=bins, color="tab:blue")
        axes.set_title(f"Completed gaps between purchases ({gaps.size:,})")
        axes.set_ylabel("gaps")
    elif {"gap_median_days", "elapsed_days"} <= set(data.columns):
        median_gaps = data["gap_median_days"].dropna().to_numpy(dtype=float)
        elapsed = data["elapsed_days"].to_numpy(dtype=float)
        edges = np.histogram_bin_edges(np.r_[median_gaps, elapsed], bins=bins)
        axes.hist(median_gaps, bins=edges, alpha=0.6, label="median gap (repeat customers)")
        axes.hist(elapsed, bins=edges, alpha=0.6, label="days since last purchase")
        axes.set_title("Typical gap and open gap per customer")
        axes.set_ylabel("customers")
        axes.legend(loc="upper right", fontsize="small")
    else:
        raise ValueError(
            f"cannot find gaps in columns {list(data.columns)[:8]}; pass gap episodes (duration, event) "
            "or per-customer features (gap_median_days, elapsed_days)."
        )
    axes.set_xlabel("days")
    return _finish(figure, path)


def plot_survival_curves(
    survival: pd.DataFrame,
    customers: Sequence | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Plot ``S_i(t)``, the probability of no purchase by day t, for chosen customers.

    Parameters
    ----------
    survival : DataFrame, shape (n_customers, n_times)
        ``model.predict_survival`` output, columns in days.
    customers : sequence, optional
        Customer ids to draw; default the first five rows.
    path : path, optional
        Where to save the PNG.
    """
    chosen = list(survival.index[:SURVIVAL_PLOT_CUSTOMERS]) if customers is None else list(customers)
    missing = [c for c in chosen if c not in survival.index]
    if missing:
        raise ValueError(f"customers {missing[:5]} have no survival curve; choose ids from the scored features.")
    figure, axes = _figure()
    times = np.asarray(survival.columns, dtype=float)
    for customer in chosen:
        axes.step(times, survival.loc[customer].to_numpy(dtype=float), where="post", label=str(customer))
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("days after the cut-off")
    axes.set_ylabel("P(no purchase yet)")
    axes.set_title("Survival curves of chosen customers")
    axes.legend(loc="best", fontsize="small", title="customer_id")
    return _finish(figure, path)


def save_backtest_plots(result, out_dir: str | os.PathLike, customers: Sequence | None = None) -> list[Path]:
    """Save the standard plots of a backtest's latest cut-off as PNG files.

    Writes ``calibration_{h}d.png`` and ``lift_{h}d.png`` per evaluated
    horizon, ``tracking.png``, ``gap_histogram.png`` and
    ``survival_curves.png`` (from the best model in the summary that was
    fitted at the latest cut-off).

    Parameters
    ----------
    result : BacktestResult
        A backtest with at least one model that succeeded at its latest cut-off.
    out_dir : path
        Folder to write into; created when absent.
    customers : sequence, optional
        Customer ids for the survival curves; default five customers spread
        over the best model's range of lapse risk.

    Returns
    -------
    list of Path
        The files written.
    """
    split = result.latest_split
    if split is None or not result.latest_models:
        raise ValueError("the backtest has no model fitted at its latest cut-off, so there is nothing to plot.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    latest = split.as_of
    predictions = {name: result.predictions[(name, latest)] for name in result.latest_models}
    written: list[Path] = []

    # Calibration and lift per horizon, every model on one figure.
    for h in result.horizons:
        written.append(_save(plot_calibration(predictions, split.truth, h), out / f"calibration_{h}d.png"))
        written.append(_save(plot_lift(predictions, split.truth, h), out / f"lift_{h}d.png"))

    # Tracking of cumulative occasions, and the gaps of the calibration period.
    if result.tracking is not None:
        written.append(_save(plot_tracking(result.tracking), out / "tracking.png"))
    written.append(_save(plot_gap_histogram(split.features), out / "gap_histogram.png"))

    # Survival curves from the best model, for customers spread over its lapse risk.
    best = next(name for name in result.summary.index if name in result.latest_models)
    model = result.latest_models[best]
    if customers is None:
        risk = predictions[best]["risk_score"].sort_values(kind="stable")
        positions = np.linspace(0, len(risk) - 1, min(SURVIVAL_PLOT_CUSTOMERS, len(risk))).round().astype(int)
        customers = list(risk.index[np.unique(positions)])
    features = split.features.loc[list(customers)]
    survival = model.predict_survival(features, np.arange(0, result.window_days + 1))
    figure = plot_survival_curves(survival, customers)
    figure.axes[0].set_title(f"Survival curves of chosen customers ({best})")
    written.append(_save(figure, out / "survival_curves.png"))
    logger.info("wrote %d backtest plots to %s", len(written), out)
    return written


# ------------------------------------------------------------- helpers


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # Twenty distinct colours, so that a backtest of every family (more than
    # the default cycle's ten) never draws two models alike.
    axes.set_prop_cycle(color=[colormaps["tab20"](i) for i in range(20)])
    return figure, axes


def _finish(figure: Figure, path) -> Figure:
    figure.tight_layout()
    if path is not None:
        _save(figure, path)
    return figure


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
