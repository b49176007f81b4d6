"""The model registry: versions of the scoring model and the ``champion`` alias.

Each registered version carries tags that describe how to refit it
(``rtt.model``, ``rtt.settings``) and how it scored on its internal
validation (``rtt.metric``, ``rtt.metric_value``), so a later candidate can
be compared with the champion on the same validation split. The alias moves
only through :func:`promote_if_better`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from rtt_models.evaluation.metrics import BEST_AT_ONE, HIGHER_IS_BETTER, metric_family

logger = logging.getLogger("rtt_models")

#: Alias of the version that scoring jobs and the server load.
CHAMPION_ALIAS = "champion"

#: Version tags written at registration.
MODEL_TAG = "rtt.model"
SETTINGS_TAG = "rtt.settings"
AS_OF_TAG = "rtt.as_of"
METRIC_TAG = "rtt.metric"
METRIC_VALUE_TAG = "rtt.metric_value"
DECISION_TAG = "rtt.champion_decision"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate version became the champion, and why.

    Attributes
    ----------
    promoted : bool
        Whether the alias now points at the candidate.
    reason : str
        One sentence for logs and the command line.
    metric : str
        The metric compared, for example ``"c_index"``.
    candidate_value : float
        The candidate's value on the internal validation.
    champion_value : float or None
        The previous champion's value on the same validation; None without
        a previous champion.
    previous_version : str or None
        The version the alias pointed at before.
    """

    promoted: bool
    reason: str
    metric: str
    candidate_value: float
    champion_value: float | None
    previous_version: str | None


def registry_client(tracking_uri: str | None = None) -> MlflowClient:
    """Return a client of the tracking store, which is also the registry here.

    The store also becomes MLflow's process-wide registry URI, because
    ``mlflow.register_model`` writes to that one: a registry URI left over
    from loading a model of another store would otherwise receive the
    versions that this client then looks for in vain.
    """
    uri = tracking_uri or mlflow.get_tracking_uri()
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register_version(client: MlflowClient, model_uri: str, name: str, tags: dict[str, object]) -> ModelVersion:
    """Register a logged model as a new version of ``name`` with string tags."""
    version = mlflow.register_model(model_uri, name, tags={key: _tag(value) for key, value in tags.items()})
    logger.info("registered %s as version %s of %r", model_uri, version.version, name)
    return version


def champion_version(client: MlflowClient, name: str) -> ModelVersion | None:
    """Return the version the champion alias points at, or None when there is none."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST) or "not found" in err.message.lower():
            return None
        raise


def champion_refit_spec(version: ModelVersion) -> tuple[str, dict] | None:
    """Return the family name and settings of a registered version, or None if its tags lack them."""
    tags = version.tags or {}
    if MODEL_TAG not in tags:
        return None
    return tags[MODEL_TAG], json.loads(tags.get(SETTINGS_TAG) or "{}")


def is_improvement(metric: str, candidate: float, champion: float) -> bool:
    """Return whether ``candidate`` is strictly better than ``champion`` on ``metric``.

    Higher is better for ``c_index``, ``auc_*``, ``precision_top*`` and
    ``lift_top*``; lower for ``brier_*``, ``ibs``, ``ici_*`` and
    ``count_mae``; ``count_ratio`` is best at 1. A NaN candidate never
    improves; any finite candidate improves on a NaN champion.
    """
    if not math.isfinite(candidate):
        return False
    if not math.isfinite(champion):
        return True
    family = metric_family(metric)
    if family in BEST_AT_ONE:
        return abs(candidate - 1.0) < abs(champion - 1.0)
    if family not in HIGHER_IS_BETTER:
        raise ValueError(
            f"metric {metric!r} has no known direction; choose one of c_index, ibs, auc_{{h}}d, brier_{{h}}d, "
            "ici_{h}d, count_mae, count_ratio, precision_top{k}, lift_top{k}."
        )
    return candidate > champion if HIGHER_IS_BETTER[family] else candidate < champion


def check_metric(metric: str) -> str:
    """Validate a metric name for champion comparisons and return it."""
    is_improvement(metric, 0.5, 0.4)
    return metric


def promote_if_better(
    client: MlflowClient,
    name: str,
    version: ModelVersion,
    *,
    metric: str,
    candidate_value: float,
    champion_value: float | None,
    force: bool = False,
) -> PromotionDecision:
    """Move the champion alias to ``version`` when it beats the champion, or when forced.

    Parameters
    ----------
    client : MlflowClient
        Client of the registry.
    name : str
        Registered model name.
    version : ModelVersion
        The candidate, already registered.
    metric : str
        Metric compared, for example ``"c_index"``.
    candidate_value, champion_value : float
        Values on the same internal validation; ``champion_value`` is None
        when there is no champion yet or it could not be evaluated.
    force : bool, default False
        Promote whatever the values.

    Returns
    -------
    PromotionDecision
        Also written as the tag ``rtt.champion_decision`` of the version.
    """
    previous = champion_version(client, name)
    previous_number = None if previous is None else str(previous.version)

    # Decide, stating both values in the reason.
    if force:
        promoted, reason = True, f"promoted by request (--promote); {metric} {candidate_value:.4f}"
    elif previous is None:
        promoted, reason = True, f"promoted: no champion yet; {metric} {candidate_value:.4f}"
    elif champion_value is None:
        promoted = False
        reason = (
            f"kept version {previous_number}: the champion could not be evaluated on the validation split; "
            "pass --promote to replace it anyway"
        )
    elif is_improvement(metric, candidate_value, champion_value):
        promoted = True
        reason = f"promoted: {metric} {candidate_value:.4f} beats champion version {previous_number} ({champion_value:.4f})"
    else:
        promoted = False
        reason = (
            f"kept version {previous_number}: {metric} {candidate_value:.4f} does not beat the champion's "
            f"{champion_value:.4f}"
        )

    if promoted:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version.version))
    client.set_model_version_tag(name, str(version.version), DECISION_TAG, reason)
    logger.info("model %r version %s: %s", name, version.version, reason)
    return PromotionDecision(promoted, reason, metric, candidate_value, champion_value, previous_number)


def _tag(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
