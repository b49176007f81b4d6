"""Loading, validation, the data-quality report and purchase occasions."""

from rtt_models.data.load import FORMATS, ColumnMap, TransactionLog, load_transactions
from rtt_models.data.occasions import OCCASION_RULES, Cutoff, form_occasions, resolve_cutoff
from rtt_models.data.report import DataQualityReport, TransactionLogError

__all__ = [
    "FORMATS",
    "OCCASION_RULES",
    "ColumnMap",
    "Cutoff",
    "DataQualityReport",
    "TransactionLog",
    "TransactionLogError",
    "form_occasions",
    "load_transactions",
    "resolve_cutoff",
    "simulate_transactions",
]


def __getattr__(name):
    # The simulator is imported on first use, so loading a log never pays for it.
    if name in ("simulate_transactions", "SimulatedData"):
        from rtt_models.data import simulate

        return getattr(simulate, name)
    raise AttributeError(f"module 'rtt_models.data' has no attribute {name!r}")
