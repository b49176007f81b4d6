"""Options and error handling that every ``rtt`` command shares."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import pandas as pd

from rtt_models.data.report import TransactionLogError

logger = logging.getLogger("rtt_models")

#: Customers and seed of the built-in simulated log used when no file is given.
DEFAULT_SIMULATED_CUSTOMERS = 10_000
DEFAULT_SIMULATION_SEED = 0


class InputError(click.ClickException):
    """Bad input: one line on standard error and exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def input_options(function):
    """Attach the transaction-log options every command shares."""
    options = [
        click.option(
            "--transactions",
            "transactions",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Transaction log (CSV, Parquet or CDNOW text). Default: the built-in simulated log.",
        ),
        click.option(
            "--format",
            "file_format",
            type=click.Choice(["csv", "parquet", "cdnow", "cdnow_sample"]),
            default=None,
            help="File format; inferred from .csv, .parquet or .pq when omitted.",
        ),
        click.option("--customer-col", default="customer_id", show_default=True, help="Column of customer ids."),
        click.option(
            "--timestamp-col", default=None, help="Column of purchase times. Default: 'timestamp', else 'date'."
        ),
        click.option(
            "--amount-col", default=None, help="Column of net amounts (negative for refunds). Default: 'amount'."
        ),
        click.option("--quantity-col", default=None, help="Optional column of items per row."),
        click.option(
            "--passthrough",
            multiple=True,
            help="Column carried to the features, for example a segment. Repeat for several.",
        ),
        click.option(
            "--date-format",
            default=None,
            help="strftime format of the timestamp column, for example %d/%m/%Y. Default: ISO 8601.",
        ),
        click.option(
            "--timezone",
            default="UTC",
            show_default=True,
            help="Business time zone: purchase days are calendar days there.",
        ),
        click.option(
            "--occasion-rule",
            type=click.Choice(["positive", "all"]),
            default="positive",
            show_default=True,
            help="Which customer-days are purchase occasions: net amount > 0, or every day with a row.",
        ),
        click.option(
            "--keep-duplicates/--drop-duplicates",
            default=None,
            help="Keep or drop rows identical in every column. Default: drop, except in the CDNOW formats, "
            "whose date-only rows can repeat legitimately.",
        ),
        click.option("--separator", default=",", show_default=True, help="Field separator of a CSV file."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def reports_input_errors(function):
    """Turn the data layer's errors into exit code 2 with one line on standard error."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (TransactionLogError, ValueError, FileNotFoundError) as err:
            raise InputError(" ".join(str(err).split())) from err

    return wrapper


def read_log(options: dict):
    """Load the transaction log the shared options describe, or simulate the built-in one."""
    from rtt_models.data import load_transactions

    if options["transactions"] is None:
        from rtt_models.data import simulate_transactions

        simulated = simulate_transactions(DEFAULT_SIMULATED_CUSTOMERS, seed=DEFAULT_SIMULATION_SEED)
        click.echo(
            f"No --transactions given: using the built-in simulated log "
            f"({DEFAULT_SIMULATED_CUSTOMERS:,} customers, seed {DEFAULT_SIMULATION_SEED}).",
            err=True,
        )
        passthrough = [c for c in simulated.transactions.columns if c not in ("customer_id", "timestamp", "amount")]
        return load_transactions(
            simulated.transactions, columns={"passthrough": passthrough}, timezone=options["timezone"]
        )
    columns = column_mapping(options)
    return load_transactions(
        options["transactions"],
        format=options["file_format"],
        columns=columns,
        date_format=options["date_format"],
        timezone=options["timezone"],
        drop_duplicates=None if options["keep_duplicates"] is None else not options["keep_duplicates"],
        separator=options["separator"],
    )


def check_cutoff(features, log, report) -> None:
    """Raise when no customer has an occasion at the cut-off; note a cut-off after the data.

    An empty feature table would otherwise give a header-only file or fail
    deep inside scoring. A cut-off after the last row is legitimate (scoring
    today a log that ended last week) but stretches every elapsed time, so
    the report notes it.
    """
    stamps = log.frame["timestamp"]
    first, last = (stamps.min(), stamps.max()) if len(stamps) else (None, None)
    check_cutoff_span(len(features), features.attrs.get("as_of"), first, last, report)


def check_cutoff_span(n_customers: int, as_of, first, last, report) -> None:
    """Apply :func:`check_cutoff` from counts: customers with features, the cut-off and the log's first and last timestamps.

    ``first`` and ``last`` are None for a log with no rows left; the
    partitioned paths pass the extremes over all partitions.
    """
    if n_customers:
        last_day = last.normalize()
        cutoff_day = pd.Timestamp(as_of)
        if cutoff_day > last_day:
            report.note(
                f"the cut-off {cutoff_day.date()} is {(cutoff_day - last_day).days} days after the last row "
                f"({last_day.date()}), so every customer's elapsed days include that span"
            )
        return
    if first is None:
        raise ValueError("the transaction log has no rows left after validation; check the file and the column mapping.")
    raise ValueError(
        f"no customer has a purchase occasion on or before the cut-off {as_of}; the log runs "
        f"from {first.date()} to {last.date()}, and only days with a positive net amount count unless --occasion-rule all. "
        "Choose a cut-off inside that range."
    )


def partitioned_source(options, flags: str = "--memory-budget-mb and --partitions") -> tuple[Path, dict]:
    """Return the Parquet log and column mapping of a command run in customer partitions.

    Raises
    ------
    InputError
        When the log is not Parquet, because only Parquet can be read in batches of rows.
    """
    source = options["transactions"]
    is_parquet = options["file_format"] == "parquet" or (
        options["file_format"] is None and source is not None and source.suffix.lower() in (".parquet", ".pq")
    )
    if not is_parquet:
        raise InputError(
            f"{flags} read a Parquet log (--transactions FILE.parquet); "
            "convert the log to Parquet or leave both options out."
        )
    return source, column_mapping(options)


def column_mapping(options) -> dict:
    """Return the source column names given by the shared input options."""
    return {
        "customer_id": options["customer_col"],
        "timestamp": options["timestamp_col"],
        "amount": options["amount_col"],
        "quantity": options["quantity_col"],
        "passthrough": list(options["passthrough"]),
    }


def partition_options(what: str):
    """Add ``--memory-budget-mb`` and ``--partitions`` to a command.

    ``what`` is the help sentence that describes what the command does per partition.
    """

    def decorate(command):
        command = click.option(
            "--partitions",
            type=click.IntRange(min=1),
            default=None,
            help="Number of customer partitions for a Parquet log; overrides the count derived from "
            "--memory-budget-mb.",
        )(command)
        return click.option(
            "--memory-budget-mb",
            type=click.FloatRange(min=1),
            default=None,
            help=f"Memory for one customer partition, in MiB. {what}",
        )(command)

    return decorate

