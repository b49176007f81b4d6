"""``rtt rank``: an intervention list from scores and features."""

from __future__ import annotations

import os
from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import reports_input_errors


@main.command()
@click.option(
    "--scores",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scores file from rtt score (CSV or Parquet): customer_id and p_purchase_{h}d columns. Its cut-off "
    "must be that of the features.",
)
@click.option(
    "--features",
    "features_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Features file from rtt features at the same cut-off (CSV or Parquet).",
)
@click.option("--horizon", required=True, type=int, help="Horizon in days; the scores need its p_purchase_{h}d column.")
@click.option(
    "--as-of",
    default=None,
    help="Cut-off date of the features (YYYY-MM-DD). Default: last_purchase_date + elapsed_days of the features.",
)
@click.option("--top", "top_n", type=int, default=None, help="List at most this many customers.")
@click.option("--min-value", type=float, default=None, help="Minimum value at stake, in the currency of the log.")
@click.option("--min-risk", type=float, default=None, help="Minimum lapse risk at the horizon, between 0 and 1.")
@click.option(
    "--quota",
    "quotas",
    multiple=True,
    metavar="SEGMENT=N",
    help="At most N customers of a segment; repeat for several. '*=N' caps every segment not named.",
)
@click.option("--segment-col", default="segment", show_default=True, help="Features column that --quota refers to.")
@click.option(
    "--exclude",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File of customer ids never to list: one per line, or a CSV/Parquet customer_id column.",
)
@click.option(
    "--rank-by",
    type=click.Choice(["priority", "risk"]),
    default="priority",
    show_default=True,
    help="priority: value at stake (lapse risk x spend over the horizon); risk: lapse risk alone.",
)
@click.option(
    "--lead-days",
    type=int,
    default=7,
    show_default=True,
    help="Days between the contact-by date and the day the customer becomes overdue.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output list, CSV (safe for spreadsheets) or Parquet by its extension.",
)
@reports_input_errors
def rank(
    scores, features_path, horizon, as_of, top_n, min_value, min_risk, quotas, segment_col, exclude, rank_by,
    lead_days, out,
) -> None:
    """Rank customers at risk of lapsing and write the intervention list."""
    from rtt_models.data.write import table_format
    from rtt_models.ranking import export_table, rank_customers, select_campaign

    table_format(out)
    score_table = read_customer_table(scores, "scores")
    feature_table = read_customer_table(features_path, "features")
    ranked = rank_customers(
        score_table, feature_table, horizon, as_of=as_of, rank_by=rank_by, lead_days=lead_days
    )
    campaign = select_campaign(
        ranked,
        top_n=top_n,
        min_value=min_value,
        min_risk=min_risk,
        quotas=list(quotas) or None,
        segment_col=segment_col,
        exclude=exclude,
    )
    export_table(campaign.customers, out)

    attrs = ranked.attrs
    click.echo(f"Ranked by {attrs['rank_by']} at a {attrs['horizon_days']}-day horizon as of {attrs['as_of']}")
    if attrs["n_unscored_features"]:
        click.echo(f"{attrs['n_unscored_features']:,} customers with features have no score and are not ranked")
    for line in campaign.summary.lines():
        click.echo(line)
    click.echo(f"Wrote {campaign.summary.selected:,} customers to {out}")


def read_customer_table(path: Path, name: str):
    """Read a CSV or Parquet table indexed by customer_id as text, so ids from either format match."""
    import pandas as pd

    from rtt_models.data.write import table_format

    if not path.is_file():
        raise FileNotFoundError(f"{name} file {os.fspath(path)!r} not found; pass an existing CSV or Parquet file.")
    try:
        fmt = table_format(path)
    except ValueError as err:
        raise ValueError(f"cannot read the {name} file {os.fspath(path)!r}: use a .csv, .parquet or .pq file.") from err
    table = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, dtype={"customer_id": str})
    if "customer_id" in table.columns:
        table = table.set_index("customer_id")
    if table.index.name != "customer_id":
        raise ValueError(
            f"the {name} file {os.fspath(path)!r} has no customer_id column; name the id column customer_id."
        )
    table.index = table.index.astype(str)
    return table
