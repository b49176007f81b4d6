"""``rtt backtest``: refit and compare models at rolling-origin cut-offs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import input_options, read_log, reports_input_errors

#: Families fitted when ``--models`` is omitted: the baselines and the
#: closed-form BTYD models, which fit in seconds on a laptop-sized log.
DEFAULT_MODELS = ("mean_gap", "kaplan_meier", "bg_nbd", "pareto_nbd")

#: Summary columns printed, when present; ``{h}`` repeats for each horizon and ``{k}`` for each top group.
PRINTED_METRICS = ("n_cutoffs", "c_index", "auc_{h}d", "brier_{h}d", "ibs", "count_ratio", "count_mae", "lift_top{k}",
                   "fit_seconds")


@main.command()
@input_options
@click.option(
    "--as-of",
    "as_of",
    required=True,
    help="Cut-off dates, comma-separated (YYYY-MM-DD, whole day included); models are refitted at each.",
)
@click.option("--horizons", default="30,90", show_default=True, help="Horizons in days, comma-separated.")
@click.option(
    "--models",
    default=",".join(DEFAULT_MODELS),
    show_default=True,
    help="Model names, comma-separated, or 'all' for every family.",
)
@click.option(
    "--window-days",
    type=int,
    default=None,
    help="Holdout window in days after each cut-off. Default: from the latest cut-off to the last day of the data.",
)
@click.option("--top-k", default="10", show_default=True, help="At-risk top groups in percent, comma-separated.")
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also score 'days since last purchase' and 'purchase count' as one-line rankings.",
)
@click.option(
    "--layout",
    type=click.Choice(["long", "wide"]),
    default="long",
    show_default=True,
    help="Output table: long (model, cutoff, metric, value) or wide (one row per model and cut-off).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Metrics table, CSV or Parquet by its extension.",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for PNG plots of the latest cut-off.",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow tracking store of the backtest run. Default: $MLFLOW_TRACKING_URI, else mlflow.db here.",
)
@click.option(
    "--experiment",
    default=None,
    help="MLflow experiment of the backtest run (every backtest is logged). Default: rtt-models.",
)
@reports_input_errors
def backtest(as_of, horizons, models, window_days, top_k, baselines, layout, out, plots_dir, tracking_uri, experiment,
             **options) -> None:
    """Backtest models at rolling-origin cut-offs and print the comparison, best first."""
    from tqdm import tqdm

    from rtt_models.data.write import table_format, write_table
    from rtt_models.evaluation import backtest as run_backtest
    from rtt_models.evaluation.backtest import check_cutoffs
    from rtt_models.models import model_names

    # Validate every option before reading data.
    table_format(out)
    cutoffs = _split_list(as_of, "--as-of")
    horizon_days = [_whole_days(value, "--horizons") for value in _split_list(horizons, "--horizons")]
    top_k_percent = [_percent(value) for value in _split_list(top_k, "--top-k")]
    names = model_names() if models.strip() == "all" else _split_list(models, "--models")
    unknown = [name for name in names if name not in model_names()]
    if unknown:
        raise ValueError(f"unknown models {unknown} in --models; choose from {', '.join(model_names())} or 'all'.")

    log = read_log(options)
    # The backtest checks the cut-offs too, but this check names the options in its message.
    check_cutoffs(log, cutoffs, window_days, cutoffs_name="--as-of", window_name="--window-days")
    with tqdm(total=len(names) * len(cutoffs), desc="backtest", unit="fit", file=sys.stderr, disable=None) as bar:

        def advance(model_name, cutoff) -> None:
            bar.set_postfix_str(f"{model_name} @ {cutoff.date()}")
            bar.update()

        result = run_backtest(
            log,
            {name: name for name in names},
            cutoffs,
            horizons=horizon_days,
            window_days=window_days,
            occasion_rule=options["occasion_rule"],
            progress=advance,
            top_k_percent=top_k_percent,
            score_baselines=baselines,
        )

    table = result.metrics if layout == "long" else result.per_cutoff
    write_table(table, out, index=False)
    if plots_dir is not None:
        from rtt_models.evaluation.plots import save_backtest_plots

        written = save_backtest_plots(result, plots_dir)
        click.echo(f"Wrote {len(written)} plots to {plots_dir}")
    from rtt_models.tracking import log_backtest, tracking_run

    with tracking_run(experiment, tracking_uri=tracking_uri, run_name="backtest") as run:
        log_backtest(result, log=log, occasion_rule=options["occasion_rule"], plots_dir=plots_dir)
    click.echo(f"Logged MLflow run {run.info.run_id}")

    click.echo(
        f"Cut-offs {', '.join(str(c.date()) for c in result.truths)} with a {result.window_days}-day holdout "
        "window. Mean over cut-offs, best model first:"
    )
    click.echo(_summary_text(result.summary, result.horizons, top_k_percent))
    for row in result.failures.itertuples(index=False):
        click.echo(f"failed: {row.model} at {row.cutoff.date()}: {row.error}", err=True)
    click.echo(f"Wrote {layout} metrics table ({len(table):,} rows) to {out}")


def _summary_text(summary, horizons, top_k_percent) -> str:
    columns = []
    for column in PRINTED_METRICS:
        if "{h}" in column:
            expanded = [column.format(h=h) for h in horizons]
        elif "{k}" in column:
            expanded = [column.format(k=f"{k:g}") for k in top_k_percent]
        else:
            expanded = [column]
        columns.extend(c for c in expanded if c in summary.columns)
    return summary[columns].to_string(float_format=lambda value: f"{value:.3f}", na_rep="-")


def _split_list(text: str, option: str) -> list[str]:
    values = [value.strip() for value in text.split(",") if value.strip()]
    if not values:
        raise ValueError(f"{option} is empty; give one or more comma-separated values.")
    return values


def _whole_days(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise ValueError(f"{option} value {text!r} is not a whole number of days; write for example 30,90.") from err
    if value < 1:
        raise ValueError(f"{option} value {value} must be at least 1 day.")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise ValueError(f"--top-k value {text!r} is not a number; write percentages such as 5,10.") from err
    if not 0 < value <= 100:
        raise ValueError(f"--top-k value {text} must lie in (0, 100].")
    return value
