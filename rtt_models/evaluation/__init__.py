"""Metrics, rolling-origin backtests and plots for next-purchase models.

Plots are in :mod:`rtt_models.evaluation.plots`, imported on first use so that
scoring metrics never loads matplotlib.
"""

from rtt_models.evaluation.backtest import BacktestResult, backtest, summarize
from rtt_models.evaluation.metrics import (
    HIGHER_IS_BETTER,
    evaluate_model,
    evaluate_predictions,
    evaluate_scores,
    score_days_since_last_purchase,
    score_purchase_count,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "BacktestResult",
    "backtest",
    "evaluate_model",
    "evaluate_predictions",
    "evaluate_scores",
    "score_days_since_last_purchase",
    "score_purchase_count",
    "summarize",
]
