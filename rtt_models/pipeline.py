"""The main job: from a transaction log to a registered model, scores and an intervention list.

:func:`run_pipeline` chains every stage of rtt-models and writes each output
into one folder:

1. ``features.parquet``: per-customer features at the cut-off;
2. ``backtest_summary.csv`` and ``plots/``: every family backtested at
   cut-offs before ``as_of`` whose holdout windows end by ``as_of``, beside
   the one-line scores (days since last purchase, purchase count), logged to
   MLflow;
3. the best family trained at ``as_of``, logged, registered, and aliased
   ``champion`` when it beats the current champion;
4. ``scores.csv`` (and ``scores.rejects.csv``): every customer scored
   through the registered MLflow model, in chunks;
5. ``intervention_list.csv``: the customers ranked by lapse risk x value at
   stake, with tiers, reasons and contact-by dates.

Nothing after ``as_of`` is read by any stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.data.write import write_table
from rtt_models.evaluation import backtest
from rtt_models.evaluation.backtest import check_history_before
from rtt_models.features import build_features
from rtt_models.models import model_names
from rtt_models.ranking import export_table, rank_customers, select_campaign
from rtt_models.scoring import unscorable_customers, write_batch_scores
from rtt_models.tracking import log_backtest, tracking_run
from rtt_models.tracking.pyfunc import load_scoring_model, signature_columns
from rtt_models.tracking.training import train_and_register

logger = logging.getLogger("rtt_models")

#: Minimum history before the earliest backtest cut-off, in days.
MIN_HISTORY_DAYS = 60

#: One-line scores the backtest adds; they cannot be trained or registered.
_ONE_LINE_SCORES = ("days_since_last_purchase", "purchase_count")


@dataclass
class PipelineResult:
    """Output locations and summary of the main job.

    Attributes
    ----------
    as_of : str
        Cut-off day (ISO date).
    out_dir : Path
        Folder of the output files.
    files : dict of str to Path
        Output files by role: features, backtest, plots, scores, rejects,
        intervention_list.
    backtest_summary : DataFrame or None
        Mean metrics per model over the backtest cut-offs, best first; None
        when the data is too short for a backtest.
    model_name : str
        Family trained and registered.
    model_uri : str
        URI of the logged scoring model.
    registered : str
        ``models:/NAME/VERSION`` of the new version.
    promoted : bool
        Whether the champion alias moved to it.
    decision_reason : str
        Why the alias moved or stayed, with both validation values.
    run_ids : dict of str to str
        MLflow runs by stage (backtest, train).
    report : DataQualityReport
        Rows read and repairs made up to the cut-off.
    n_scored : int
        Customers with scores.
    n_rejected : int
        Customers without scores (listed in the rejects file).
    tier_counts : Series
        Customers per tier in the intervention list.
    value_at_stake : float
        Sum of the value at stake over the intervention list, in the
        currency of the log (NaN without amounts).
    """

    as_of: str
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    backtest_summary: pd.DataFrame | None = None
    model_name: str = ""
    model_uri: str = ""
    registered: str = ""
    promoted: bool = False
    decision_reason: str = ""
    run_ids: dict[str, str] = field(default_factory=dict)
    report: DataQualityReport = field(default_factory=DataQualityReport)
    n_scored: int = 0
    n_rejected: int = 0
    tier_counts: pd.Series = field(default_factory=lambda: pd.Series(dtype=int))
    value_at_stake: float = float("nan")


def backtest_cutoffs(log: TransactionLog, as_of, window_days: int, count: int) -> list[pd.Timestamp]:
    """Cut-offs ``as_of - k * window_days`` (k = count..1) with enough history before them.

    Every holdout window ends on or before the cut-off day ``as_of``, so the
    backtest never reads data after it. Cut-offs with fewer than
    :data:`MIN_HISTORY_DAYS` days of data before them are left out.
    """
    day = resolve_cutoff(as_of, log).day
    first_day = log.frame["timestamp"].min().normalize()
    cutoffs = [day - pd.Timedelta(days=k * window_days) for k in range(count, 0, -1)]
    return [c for c in cutoffs if c - first_day >= pd.Timedelta(days=MIN_HISTORY_DAYS)]


def run_pipeline(
    log: TransactionLog,
    *,
    out_dir: str | Path,
    as_of=None,
    horizons: Sequence[int] = (30, 90),
    models: Sequence[str] | None = None,
    n_backtest_cutoffs: int = 1,
    rank_horizon: int | None = None,
    top_n: int | None = None,
    register: str = "rtt-next-purchase",
    metric: str = "c_index",
    occasion_rule: str = "positive",
    experiment: str | None = None,
    tracking_uri: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PipelineResult:
    """Run the main job end to end and write every output into ``out_dir``.

    Parameters
    ----------
    log : TransactionLog
        The transaction log.
    out_dir : path
        Output folder, created when absent.
    as_of : str, date or Timestamp, optional
        Cut-off; a date includes the whole day. Default: last day in the data.
    horizons : sequence of int, default (30, 90)
        Horizons in days; the largest is also the backtest window.
    models : sequence of str, optional
        Families to backtest; default every family.
    n_backtest_cutoffs : int, default 1
        Backtest cut-offs, each one window apart, the last one window before
        ``as_of``.
    rank_horizon : int, optional
        Horizon of the intervention list in days; default the largest horizon.
    top_n : int, optional
        Keep at most this many customers in the intervention list.
    register : str, default "rtt-next-purchase"
        Registered model name.
    metric : str, default "c_index"
        Metric that picks the best family and decides the champion alias.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days count as purchase occasions.
    experiment, tracking_uri : str, optional
        MLflow experiment and tracking store; MLflow's defaults otherwise
        (``mlflow.db`` in the working directory).
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    PipelineResult

    Raises
    ------
    ValueError
        For a rank horizon not among the horizons, or an ``as_of`` fewer
        than the largest horizon's days after the first day of the data,
        which leaves the training's internal validation no data.
    """
    step = progress or (lambda stage: None)
    horizons = sorted({int(h) for h in horizons})
    window_days = horizons[-1]
    rank_horizon = int(rank_horizon or window_days)
    if rank_horizon not in horizons:
        raise ValueError(f"rank horizon {rank_horizon} days is not among the horizons {horizons}; add it to them.")
    check_history_before(log, as_of, window_days, as_of_name="as_of", window_name="the largest horizon")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    candidates = list(models or model_names())

    # Features at the cut-off.
    step("features")
    report = log.report.copy()
    features = build_features(log, as_of, occasion_rule=occasion_rule, report=report)
    as_of_day = features.attrs["as_of"]
    result = PipelineResult(as_of=as_of_day, out_dir=out_dir, report=report)
    result.files["features"] = write_table(features, out_dir / "features.parquet")

    # Backtest every family inside the calibration data, then pick the best.
    step("backtest")
    cutoffs = backtest_cutoffs(log, as_of_day, window_days, n_backtest_cutoffs)
    best = candidates[0]
    if cutoffs:
        tested = backtest(
            log, {name: name for name in candidates}, cutoffs, horizons, window_days, occasion_rule,
            score_baselines=True,
        )
        result.backtest_summary = tested.summary
        result.files["backtest"] = write_table(tested.summary, out_dir / "backtest_summary.csv")
        plots_dir = out_dir / "plots"
        from rtt_models.evaluation.plots import save_backtest_plots

        save_backtest_plots(tested, plots_dir)
        result.files["plots"] = plots_dir
        with tracking_run(experiment, tracking_uri=tracking_uri, run_name="backtest") as run:
            log_backtest(tested, log=log, occasion_rule=occasion_rule, plots_dir=plots_dir)
        result.run_ids["backtest"] = run.info.run_id
        best = _best_family(tested, candidates, metric)
    else:
        logger.warning(
            "the data before %s is too short for a %d-day backtest window; training %s without a comparison",
            as_of_day, window_days, best,
        )

    # Train the best family at the cut-off, register it, update the champion.
    step("train")
    trained = train_and_register(
        log, as_of_day, register=register, model=best, horizons=horizons, metric=metric,
        occasion_rule=occasion_rule, experiment=experiment, tracking_uri=tracking_uri,
        validation_days=window_days,
    )
    result.model_name = trained.model_name
    result.model_uri = trained.model_uri
    result.registered = f"models:/{register}/{trained.version}"
    result.promoted = bool(trained.decision.promoted)
    result.decision_reason = trained.decision.reason
    result.run_ids["train"] = trained.run_id

    # Score every customer through the registered scoring model.
    step("score")
    scorer = load_scoring_model(result.registered, tracking_uri=tracking_uri)
    params = {"horizons": horizons, "as_of": as_of_day}
    rejected = unscorable_customers(log, as_of_day, features.index, occasion_rule=occasion_rule)
    result.files["rejects"] = write_table(rejected, out_dir / "scores.rejects.csv")
    scores = write_batch_scores(
        lambda chunk: scorer.predict(signature_columns(scorer, chunk), params=params), features, out_dir / "scores.csv",
        horizons=horizons, rejected=rejected, progress=False,
    )
    result.files["scores"] = out_dir / "scores.csv"
    result.n_scored = len(features)
    result.n_rejected = len(rejected)

    # The intervention list.
    step("rank")
    ranked = rank_customers(scores.loc[features.index], features, rank_horizon, as_of=as_of_day)
    campaign = select_campaign(ranked, top_n=top_n)
    result.files["intervention_list"] = export_table(campaign.customers, out_dir / "intervention_list.csv")
    result.tier_counts = campaign.customers["tier"].value_counts()
    result.value_at_stake = float(campaign.customers["value_at_stake"].sum(min_count=1))
    return result


def _best_family(tested, candidates: Sequence[str], metric: str) -> str:
    """Return the family with the best mean metric over the backtest cut-offs."""
    from rtt_models.evaluation.metrics import HIGHER_IS_BETTER, metric_family

    summary = tested.summary
    rows = summary.loc[[name for name in summary.index if name in candidates and name not in _ONE_LINE_SCORES]]
    if metric not in rows.columns:
        raise ValueError(f"metric {metric!r} is not in the backtest summary; choose one of {list(rows.columns)}.")
    rows = rows[rows[metric].notna()]
    if rows.empty:
        raise ValueError(f"no family produced the metric {metric!r} in the backtest; see its failures.")
    higher_is_better = HIGHER_IS_BETTER.get(metric_family(metric), True)
    ordered = rows[metric].sort_values(ascending=not higher_is_better, kind="mergesort")
    return str(ordered.index[0])
