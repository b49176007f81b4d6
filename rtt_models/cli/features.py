"""``rtt features``: per-customer RTT features as of a cut-off."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import (
    check_cutoff,
    input_options,
    partition_options,
    partitioned_source,
    read_log,
    reports_input_errors,
)


@main.command()
@input_options
@click.option("--as-of", default=None, help="Cut-off date (YYYY-MM-DD, whole day included). Default: last day in the data.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file, CSV or Parquet by its extension.",
)
@partition_options("Builds a Parquet log in customer partitions sized to it instead of loading it whole.")
@reports_input_errors
def features(as_of, out, memory_budget_mb, partitions, **options) -> None:
    """Build per-customer RTT features as of a cut-off."""
    from rtt_models.data.write import table_format, write_table

    table_format(out)
    if memory_budget_mb is not None or partitions is not None:
        table, report = _chunked_features(as_of, memory_budget_mb, partitions, options)
        write_table(table, out)
    else:
        table, report = _in_memory_features(as_of, out, options)
    click.echo(str(report))
    click.echo(f"Wrote features of {len(table):,} customers as of {table.attrs['as_of']} to {out}")


def _in_memory_features(as_of, out, options):
    """Load the whole log, build its features and write them, with a three-step progress bar."""
    from tqdm import tqdm

    from rtt_models.data.write import write_table
    from rtt_models.features import build_features

    with tqdm(total=3, desc="features", unit="step", file=sys.stderr, disable=None) as progress:
        progress.set_postfix_str("reading")
        log = read_log(options)
        progress.update()
        progress.set_postfix_str("building")
        report = log.report.copy()
        table = build_features(log, as_of, occasion_rule=options["occasion_rule"], report=report)
        check_cutoff(table, log, report)
        progress.update()
        progress.set_postfix_str("writing")
        write_table(table, out)
        progress.update()
    return table, report


def _chunked_features(as_of, memory_budget_mb, partitions, options):
    """Build the features of a Parquet log one customer partition at a time."""
    from rtt_models.data.report import DataQualityReport
    from rtt_models.features.chunked import build_features_chunked

    source, columns = partitioned_source(options)
    report = DataQualityReport()
    table = build_features_chunked(
        source,
        as_of,
        n_partitions=partitions,
        memory_budget_mb=memory_budget_mb,
        columns=columns,
        occasion_rule=options["occasion_rule"],
        timezone=options["timezone"],
        date_format=options["date_format"],
        drop_duplicates=not options["keep_duplicates"] if options["keep_duplicates"] is not None else True,
        report=report,
        progress=None,
    )
    return table, report
