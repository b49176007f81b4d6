"""Train, log and register a scoring model, and move the champion alias on improvement.

The internal validation is one calibration/holdout split inside the
training data: the cut-off lies ``validation_days`` before ``as_of`` and its
holdout window ends at ``as_of``, so nothing after ``as_of`` is read. On
that split the evaluation harness fits and scores

* the requested family, or with ``model="auto"`` every candidate family,
  the best of which by ``metric`` is trained;
* the current champion's family and settings (from its version tags),
  refitted on the same calibration period. Neither model has seen the
  validation window, so the two values are comparable.

The chosen family is then fitted on the features at ``as_of``, logged as
the scoring pyfunc in one MLflow run with its params, data fingerprint,
validation metrics and feature schema, and registered as a new version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mlflow
import pandas as pd

from rtt_models.data.load import TransactionLog
from rtt_models.data.occasions import resolve_cutoff
from rtt_models.data.report import DataQualityReport
from rtt_models.evaluation import BacktestResult, backtest
from rtt_models.evaluation.backtest import check_history_before
from rtt_models.features import build_episodes, build_features
from rtt_models.models import NextPurchaseModel, make_model
from rtt_models.scoring import check_horizons
from rtt_models.tracking import registry
from rtt_models.tracking.pyfunc import log_scoring_model
from rtt_models.tracking.runs import (
    log_data_fingerprint,
    log_feature_schema,
    log_metric_rows,
    log_params,
    log_table,
    tracking_run,
)

logger = logging.getLogger("rtt_models")

#: Families compared by ``model="auto"``: the baselines and the closed-form
#: BTYD models, which fit in seconds on 10,000 customers.
AUTO_CANDIDATES = ("mean_gap", "kaplan_meier", "bg_nbd", "pareto_nbd")

# Name of the champion's refit in the validation backtest; a family name
# cannot take it because it contains a space.
_CHAMPION_KEY = "current champion"


@dataclass
class TrainingResult:
    """Outcome of :func:`train_and_register`: the model trained, the run, the version and the decision.

    Attributes
    ----------
    model_name : str
        Family trained, for example ``"bg_nbd"``.
    settings : dict
        Its constructor settings.
    model : NextPurchaseModel
        The model fitted on the features at ``as_of``.
    features : DataFrame
        Those features, indexed by ``customer_id``.
    as_of : str
        Training cut-off (ISO date).
    run_id : str
        MLflow run of the training.
    model_uri : str
        URI of the logged scoring model.
    version : str
        Registered version number.
    decision : PromotionDecision
        Whether the champion alias moved, with both metric values.
    validation : BacktestResult
        The internal validation backtest.
    """

    model_name: str
    settings: dict
    model: NextPurchaseModel
    features: pd.DataFrame
    as_of: str
    run_id: str
    model_uri: str
    version: str
    decision: registry.PromotionDecision
    validation: BacktestResult


def train_and_register(
    log: TransactionLog,
    as_of,
    *,
    register: str,
    model: str = "auto",
    settings: Mapping[str, object] | None = None,
    horizons: Sequence[int] = (30, 90),
    metric: str = "c_index",
    promote: bool = False,
    occasion_rule: str = "positive",
    validation_days: int | None = None,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    artifact_location: str | None = None,
    progress: Callable[[str, pd.Timestamp], None] | None = None,
) -> TrainingResult:
    """Fit a next-purchase model, log it, register a version and decide on the champion alias.

    Parameters
    ----------
    log : TransactionLog
        The transaction log; rows after ``as_of`` are never read.
    as_of : str, date or Timestamp
        Training cut-off (a date includes the whole day).
    register : str
        Registered model name.
    model : str, default "auto"
        A family from :func:`rtt_models.models.model_names`, or ``"auto"``
        to pick the best of ``candidates`` on the internal validation.
    settings : mapping, optional
        Constructor settings of ``model``; not allowed with ``"auto"``.
    horizons : sequence of int, default (30, 90)
        Default horizons of the scoring model, in days.
    metric : str, default "c_index"
        Metric that picks the family and decides the promotion.
    promote : bool, default False
        Move the champion alias even without an improvement.
    occasion_rule : {"positive", "all"}, default "positive"
        Which customer-days are purchase occasions.
    validation_days : int, optional
        Holdout window of the internal validation, ending at ``as_of``.
        Default: the largest horizon.
    candidates : sequence of str
        Families compared by ``model="auto"``.
    experiment, tracking_uri, artifact_location : str, optional
        Where the run goes; see :func:`rtt_models.tracking.tracking_run`.
    progress : callable, optional
        Called as ``progress(model_name, cutoff)`` after each validation fit.

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError
        For an unknown family or metric, settings with ``"auto"``, or when no
        candidate could be fitted on the validation split.
    """
    settings = dict(settings or {})
    horizons = check_horizons(horizons)
    registry.check_metric(metric)
    if model == "auto" and settings:
        raise ValueError(f"model settings {sorted(settings)} need a named model; they cannot go with --model auto.")
    cutoff = resolve_cutoff(as_of, log)
    as_of_text = cutoff.day.date().isoformat()
    window = int(validation_days or max(horizons))
    check_history_before(log, cutoff.day, window, as_of_name="as_of", window_name="validation_days")
    validation_cutoff = cutoff.day - pd.Timedelta(days=window)
    client = registry.registry_client(tracking_uri)

    # Validation: the candidates and the champion's refit on one split.
    templates = {name: make_model(name) for name in candidates} if model == "auto" else {model: make_model(model, **settings)}
    champion = registry.champion_version(client, register)
    refit = registry.champion_refit_spec(champion) if champion is not None else None
    if refit is not None:
        templates[_CHAMPION_KEY] = make_model(refit[0], **refit[1])
    validation = backtest(
        log, templates, [validation_cutoff], horizons=horizons, window_days=window,
        occasion_rule=occasion_rule, progress=progress,
    )
    chosen = _choose(validation, [name for name in templates if name != _CHAMPION_KEY], metric)
    chosen_settings = settings if model != "auto" else {}
    candidate_value = _metric_value(validation, chosen, metric)
    champion_value = _metric_value(validation, _CHAMPION_KEY, metric) if refit is not None else None

    # The final fit uses everything up to as_of.
    final = make_model(chosen, **chosen_settings)
    features = build_features(log, as_of_text, occasion_rule=occasion_rule)
    episodes = None
    if final.needs_episodes:
        episodes = build_episodes(log, as_of_text, occasion_rule=occasion_rule, report=DataQualityReport())
    final.fit(features, episodes)

    with tracking_run(experiment, tracking_uri=tracking_uri, artifact_location=artifact_location,
                      run_name=f"train {chosen} {as_of_text}") as run:
        log_params(
            {
                "model": chosen,
                "model_requested": model,
                "settings": chosen_settings,
                "as_of": as_of_text,
                "horizons": horizons,
                "occasion_rule": occasion_rule,
                "timezone": log.timezone,
                "metric": metric,
                "validation_cutoff": validation_cutoff.date().isoformat(),
                "validation_days": window,
                "register": register,
            }
        )
        log_data_fingerprint(log)
        validation_rows = validation.metrics[validation.metrics["model"] == chosen]
        log_metric_rows([(f"validation.{row.metric}", row.value, 0) for row in validation_rows.itertuples(index=False)])
        log_table(validation.summary, "validation/summary.csv")
        log_feature_schema(features, final)
        info = log_scoring_model(final, features, as_of=as_of_text, horizons=horizons)

        # Register, then decide on the alias with both values on record.
        version = registry.register_version(
            client,
            info.model_uri,
            register,
            {
                registry.MODEL_TAG: chosen,
                registry.SETTINGS_TAG: chosen_settings,
                registry.AS_OF_TAG: as_of_text,
                registry.METRIC_TAG: metric,
                registry.METRIC_VALUE_TAG: candidate_value,
            },
        )
        decision = registry.promote_if_better(
            client, register, version, metric=metric, candidate_value=candidate_value,
            champion_value=champion_value, force=promote,
        )
        log_params(
            {
                "registered_version": str(version.version),
                "champion_version_before": decision.previous_version,
                f"candidate.{metric}": candidate_value,
                f"champion.{metric}": champion_value,
            }
        )
        mlflow.set_tags({"rtt.champion_decision": decision.reason, "rtt.promoted": str(decision.promoted).lower()})

    return TrainingResult(
        chosen, chosen_settings, final, features, as_of_text, run.info.run_id, info.model_uri,
        str(version.version), decision, validation,
    )


def _choose(validation: BacktestResult, names: Sequence[str], metric: str) -> str:
    """Return the best family on the validation split by ``metric``."""
    best = None
    for name in names:
        value = _metric_value(validation, name, metric)
        if best is None or registry.is_improvement(metric, value, _metric_value(validation, best, metric)):
            best = name
    if best is None or not pd.notna(_metric_value(validation, best, metric)):
        failures = "; ".join(f"{row.model}: {row.error}" for row in validation.failures.itertuples(index=False))
        raise ValueError(
            f"no model could be scored on {metric} at the validation cut-off "
            f"{min(validation.truths).date()}: {failures or 'the metric is missing'}; "
            "check --metric and that the log has purchases before the validation cut-off."
        )
    return best


def _metric_value(validation: BacktestResult, name: str, metric: str) -> float:
    rows = validation.metrics[(validation.metrics["model"] == name) & (validation.metrics["metric"] == metric)]
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")
