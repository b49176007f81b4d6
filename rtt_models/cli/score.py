"""``rtt score``: score every customer of a log with a registered model, in chunks."""

from __future__ import annotations

from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import check_cutoff, input_options, read_log, reports_input_errors
from rtt_models.cli.train import _horizons


@main.command()
@input_options
@click.option("--model", "model_uri", required=True, help="Scoring model URI, for example models:/rtt@champion.")
@click.option("--as-of", required=True, help="Scoring cut-off (YYYY-MM-DD, whole day included).")
@click.option("--horizons", default="30,90", show_default=True, help="Horizons in days, comma-separated.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scores, CSV or Parquet by its extension; one row per customer of the log.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Customers without a score and the reason. Default: <out name>.rejects<out suffix> beside --out.",
)
@click.option(
    "--chunk-customers",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Customers scored per call of the model.",
)
@click.option("--tracking-uri", default=None, help="MLflow tracking store of models:/ URIs. Default: $MLFLOW_TRACKING_URI, else mlflow.db here.")
@reports_input_errors
def score(model_uri, as_of, horizons, out, rejects, chunk_customers, tracking_uri, **options) -> None:
    """Score every customer of a transaction log as of a cut-off with a scoring model."""
    from rtt_models.data.write import table_format, write_table
    from rtt_models.features import build_features
    from rtt_models.scoring import unscorable_customers, write_batch_scores
    from rtt_models.tracking.pyfunc import load_scoring_model, signature_columns

    # Validate every option before reading data or loading the model.
    table_format(out)
    rejects = rejects or out.with_name(f"{out.stem}.rejects{out.suffix}")
    table_format(rejects)
    horizon_days = _horizons(horizons)

    # Features, then the scores of every customer that has some.
    log = read_log(options)
    report = log.report.copy()
    features = build_features(log, as_of, occasion_rule=options["occasion_rule"], report=report)
    check_cutoff(features, log, report)
    as_of_day = features.attrs["as_of"]
    model = load_scoring_model(model_uri, tracking_uri=tracking_uri)
    params = {"horizons": horizon_days, "as_of": as_of_day}
    rejected = unscorable_customers(log, as_of, features.index, occasion_rule=options["occasion_rule"])

    # The score file is written only after every chunk has been scored, and
    # the rejects file after it, so a failure leaves neither behind.
    table = write_batch_scores(
        lambda chunk: model.predict(signature_columns(model, chunk), params=params),
        features,
        out,
        horizons=horizon_days,
        rejected=rejected,
        chunk_customers=chunk_customers,
    )
    write_table(rejected, rejects)
    click.echo(str(report))
    click.echo(
        f"Scored {len(features):,} customers as of {as_of_day} with {model_uri}; "
        f"{len(rejected):,} without a score are listed in {rejects}."
    )
    click.echo(f"Wrote {len(table):,} rows to {out}")
