"""``rtt score``: score every customer of a log with a registered model, in chunks."""

from __future__ import annotations

from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import (
    check_cutoff,
    check_cutoff_span,
    input_options,
    partition_options,
    partitioned_source,
    read_log,
    reports_input_errors,
)
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
@partition_options(
    "Scores a Parquet log in customer partitions sized to it instead of loading it whole. The model's "
    "memory for one chunk (see --chunk-customers) and the score rows of all customers come on top."
)
@click.option("--tracking-uri", default=None, help="MLflow tracking store of models:/ URIs. Default: $MLFLOW_TRACKING_URI, else mlflow.db here.")
@reports_input_errors
def score(
    model_uri, as_of, horizons, out, rejects, chunk_customers, memory_budget_mb, partitions, tracking_uri, **options
) -> None:
    """Score every customer of a transaction log as of a cut-off with a scoring model."""
    from rtt_models.data.write import table_format, write_table

    # Validate every option before reading data or loading the model.
    table_format(out)
    rejects = rejects or out.with_name(f"{out.stem}.rejects{out.suffix}")
    table_format(rejects)
    horizon_days = _horizons(horizons)
    settings = dict(model_uri=model_uri, as_of=as_of, horizon_days=horizon_days, chunk_customers=chunk_customers,
                    tracking_uri=tracking_uri)

    if memory_budget_mb is not None or partitions is not None:
        table, rejected, report, n_scored, as_of_day = _score_in_partitions(
            memory_budget_mb, partitions, options, **settings
        )
        # The score file is written once every partition has been scored, and the rejects file after it.
        write_table(table, out)
    else:
        table, rejected, report, n_scored, as_of_day = _score_in_memory(out, options, **settings)
    write_table(rejected, rejects)
    click.echo(str(report))
    click.echo(
        f"Scored {n_scored:,} customers as of {as_of_day} with {model_uri}; "
        f"{len(rejected):,} without a score are listed in {rejects}."
    )
    click.echo(f"Wrote {len(table):,} rows to {out}")


def _score_in_memory(out, options, *, model_uri, as_of, horizon_days, chunk_customers, tracking_uri):
    """Load the whole log, score it in chunks of customers and write the score file."""
    from rtt_models.features import build_features
    from rtt_models.scoring import unscorable_customers, write_batch_scores
    from rtt_models.tracking.pyfunc import load_scoring_model, signature_columns

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
    # the rejects file after it, so a failed chunk leaves neither behind.
    table = write_batch_scores(
        lambda chunk: model.predict(signature_columns(model, chunk), params=params),
        features,
        out,
        horizons=horizon_days,
        rejected=rejected,
        chunk_customers=chunk_customers,
        as_of=as_of_day,
    )
    return table, rejected, report, len(features), as_of_day


def _score_in_partitions(
    memory_budget_mb, partitions, options, *, model_uri, as_of, horizon_days, chunk_customers, tracking_uri
):
    """Score a Parquet log one customer partition at a time; return the tables to write."""
    from rtt_models.data.report import DataQualityReport
    from rtt_models.scoring_chunked import score_log_in_partitions
    from rtt_models.tracking.pyfunc import load_scoring_model, signature_columns

    source, columns = partitioned_source(options)
    model = load_scoring_model(model_uri, tracking_uri=tracking_uri)

    def predict(chunk, as_of_day):
        params = {"horizons": horizon_days, "as_of": as_of_day}
        return model.predict(signature_columns(model, chunk), params=params)

    report = DataQualityReport()
    result = score_log_in_partitions(
        predict,
        source,
        as_of,
        horizons=horizon_days,
        n_partitions=partitions,
        memory_budget_mb=memory_budget_mb,
        columns=columns,
        occasion_rule=options["occasion_rule"],
        timezone=options["timezone"],
        date_format=options["date_format"],
        drop_duplicates=True if options["keep_duplicates"] is None else not options["keep_duplicates"],
        chunk_customers=chunk_customers,
        report=report,
        progress=None,
    )

    check_cutoff_span(result.n_scored, result.as_of, result.first_timestamp, result.last_timestamp, report)
    result.table.attrs["as_of"] = result.as_of
    return result.table, result.rejected, report, result.n_scored, result.as_of
