"""``rtt run``: the main job, from a transaction log to an intervention list."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import input_options, read_log, reports_input_errors
from rtt_models.cli.train import _horizons

_STAGES = ("features", "backtest", "train", "score", "rank")


@main.command()
@input_options
@click.option("--as-of", default=None, help="Cut-off date (YYYY-MM-DD, whole day included). Default: last day in the data.")
@click.option("--horizons", default="30,90", show_default=True, help="Horizons in days; the largest is the backtest window.")
@click.option(
    "--models",
    default="all",
    show_default=True,
    help="Families to backtest, comma-separated, or 'all'.",
)
@click.option(
    "--backtest-cutoffs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Backtest cut-offs, one window apart, the last one window before --as-of.",
)
@click.option("--rank-horizon", type=int, default=None, help="Horizon of the intervention list in days. Default: the largest horizon.")
@click.option("--top", "top_n", type=click.IntRange(min=1), default=None, help="Keep at most this many customers in the list.")
@click.option("--register", "register_name", default="rtt-next-purchase", show_default=True, help="Registered model name.")
@click.option("--metric", default="c_index", show_default=True, help="Backtest metric that picks the family to train.")
@click.option(
    "--out",
    "out_dir",
    default="rtt_output",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking store. Default: $MLFLOW_TRACKING_URI, else mlflow.db (and the artifacts in mlruns/) "
    "in the --out folder.",
)
@click.option("--experiment", default=None, help="MLflow experiment name. Default: rtt-models.")
@reports_input_errors
def run(as_of, horizons, models, backtest_cutoffs, rank_horizon, top_n, register_name, metric, out_dir, tracking_uri,
        experiment, **options) -> None:
    """Run the whole pipeline: features, backtest, train and register, score, intervention list."""
    from tqdm import tqdm

    from rtt_models.evaluation.backtest import check_history_before
    from rtt_models.models import model_names
    from rtt_models.pipeline import run_pipeline

    # Validate every option before reading data.
    horizon_days = _horizons(horizons)
    names = model_names() if models.strip() == "all" else [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if m not in model_names()]
    if unknown or not names:
        raise ValueError(f"unknown --models {unknown or models!r}; choose from {', '.join(model_names())} or 'all'.")

    # MLflow's own default store is mlflow.db and mlruns/ in the working
    # folder, so `rtt run` points it at the output folder instead.
    if tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI"):
        tracking_uri = f"sqlite:///{(out_dir / 'mlflow.db').resolve().as_posix()}"

    log = read_log(options)
    # The training validates over the largest horizon before the cut-off.
    # Checking here names the options in the message.
    check_history_before(log, as_of, max(horizon_days), as_of_name="--as-of",
                         window_name="the largest of --horizons")
    with tqdm(total=len(_STAGES), desc="rtt run", unit="stage", file=sys.stderr, disable=None) as bar:

        def advance(stage: str) -> None:
            if bar.n < _STAGES.index(stage):
                bar.update(_STAGES.index(stage) - bar.n)
            bar.set_postfix_str(stage)

        result = run_pipeline(
            log,
            out_dir=out_dir,
            as_of=as_of,
            horizons=horizon_days,
            models=names,
            n_backtest_cutoffs=backtest_cutoffs,
            rank_horizon=rank_horizon,
            top_n=top_n,
            register=register_name,
            metric=metric,
            occasion_rule=options["occasion_rule"],
            experiment=experiment,
            tracking_uri=tracking_uri,
            progress=advance,
        )
        bar.update(len(_STAGES) - bar.n)

    click.echo(str(result.report))
    if result.backtest_summary is not None:
        summary_columns = [c for c in ("c_index", f"auc_{horizon_days[0]}d", "ibs") if c in result.backtest_summary.columns]
        click.echo("Backtest, best first:")
        click.echo(result.backtest_summary[summary_columns].round(4).to_string())
    click.echo(f"As of {result.as_of}: trained {result.model_name}; registered {result.registered} "
               f"({'now champion' if result.promoted else 'champion unchanged'}).")
    for role in ("features", "backtest", "plots", "scores", "rejects", "intervention_list"):
        if role in result.files:
            click.echo(f"  {role:<18} {result.files[role]}")
    click.echo(f"  {'mlflow runs':<18} {', '.join(f'{k} {v}' for k, v in result.run_ids.items())}")
    click.echo(f"  {'serving uri':<18} models:/{register_name}@champion")
    click.echo(f"  {'tracking store':<18} {tracking_uri or os.environ['MLFLOW_TRACKING_URI']}")
    click.echo(f"  {'logged model':<18} {result.model_uri}")
    click.echo(result.decision_reason)
    tiers = ", ".join(f"{tier} {count:,}" for tier, count in result.tier_counts.items())
    value = "unknown (no amounts)" if result.value_at_stake != result.value_at_stake else f"{result.value_at_stake:,.2f}"
    click.echo(f"Scored {result.n_scored:,} customers ({result.n_rejected:,} rejected). Tiers: {tiers}. "
               f"Value at stake: {value}.")
