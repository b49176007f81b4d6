"""MLflow tracking, the scoring model and the model registry.

This package is the only part of rtt-models that imports MLflow.

* :mod:`~rtt_models.tracking.runs`: runs, the data fingerprint, backtest logging;
* :mod:`~rtt_models.tracking.pyfunc`: the scoring model (an MLflow pyfunc);
* :mod:`~rtt_models.tracking.registry`: registered versions and the ``champion`` alias;
* :mod:`~rtt_models.tracking.training`: train, log, register and promote in one call.
"""

from rtt_models.tracking.pyfunc import NextPurchaseScorer, load_scoring_model, log_scoring_model
from rtt_models.tracking.registry import CHAMPION_ALIAS, PromotionDecision, promote_if_better
from rtt_models.tracking.runs import data_fingerprint, feature_schema, log_backtest, tracking_run
from rtt_models.tracking.training import TrainingResult, train_and_register

__all__ = [
    "CHAMPION_ALIAS",
    "NextPurchaseScorer",
    "PromotionDecision",
    "TrainingResult",
    "data_fingerprint",
    "feature_schema",
    "load_scoring_model",
    "log_backtest",
    "log_scoring_model",
    "promote_if_better",
    "tracking_run",
    "train_and_register",
]
