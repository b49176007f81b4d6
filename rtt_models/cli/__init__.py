"""The ``rtt`` command line: the only place in the package that prints.

Every command shares the input options (file, format, column mapping, date
format, time zone, occasion rule, cut-off). Bad input ends with exit code 2
and one line on standard error, without a traceback and without a partial
output file. Each command lives in its own module of this package.
"""

from __future__ import annotations

import logging
import os

import click

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log pipeline events to standard error.")
@click.version_option(package_name="rtt-models")
def main(verbose: bool) -> None:
    """rtt-models: predict when each customer will buy again."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not verbose:
        _quiet_mlflow()


class _DropMessages(logging.Filter):
    """Drop log records whose message contains one of the given texts."""

    def __init__(self, *texts: str):
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self.texts)


def _quiet_mlflow() -> None:
    """Hide MLflow's notices that a user of the commands cannot act on; --verbose shows them.

    They are the store's table setup and input-example checks (INFO) and
    the note that the model object is pickled, which is how the scoring
    model ships by design.
    """
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_DropMessages("serialized using CloudPickle"))


# Each module adds its command to `main` when imported.
from rtt_models.cli import features  # noqa: E402, F401
from rtt_models.cli import score, train  # noqa: E402, F401
from rtt_models.cli import rank  # noqa: E402, F401
from rtt_models.cli import backtest  # noqa: E402, F401
from rtt_models.cli import run  # noqa: E402, F401
