"""``rtt features``: per-customer RTT features as of a cut-off."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtt_models.cli import main
from rtt_models.cli.common import input_options, read_log, reports_input_errors


@main.command()
@input_options
@click.option("--as-of", default=None, help="Cut-off date (YYYY-MM-DD, whole day included). Default: last day in the data.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file, CSV or Parquet by its extension.",
)
@reports_input_errors
def features(as_of, out, **options) -> None:
    """Build per-customer RTT features as of a cut-off."""
    from tqdm import tqdm

    from rtt_models.data.write import table_format, write_table
    from rtt_models.features import build_features

    table_format(out)
    with tqdm(total=3, desc="features", unit="step", file=sys.stderr, disable=None) as progress:
        progress.set_postfix_str("reading")
        log = read_log(options)
        progress.update()
        progress.set_postfix_str("building")
        report = log.report.copy()
        table = build_features(log, as_of, occasion_rule=options["occasion_rule"], report=report)
        progress.update()
        progress.set_postfix_str("writing")
        write_table(table, out)
        progress.update()
    click.echo(str(report))
    click.echo(f"Wrote features of {len(table):,} customers as of {table.attrs['as_of']} to {out}")

