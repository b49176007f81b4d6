"""The scoring model: a fitted next-purchase model as an MLflow pyfunc.

The logged model takes per-customer feature rows, as ``rtt features``
writes them, and returns one score row per customer (the columns of
:mod:`rtt_models.scoring`). It ships the ``rtt_models`` package with it
(``code_paths``) and pins the runtime requirements explicitly, so it loads
and predicts without the training data and without a source checkout.

Signature:

* inputs: ``customer_id`` (string), the feature columns the model reads
  (``double`` or ``long``), and an optional ``last_purchase_date``, which
  is checked against ``as_of`` when sent. Other columns are dropped.
* params: ``horizons`` (list of long, default the horizons given at
  logging, usually [30, 90]) and ``as_of`` (string date, default the
  training cut-off).

Bad input raises an ``MlflowException`` with error code
``INVALID_PARAMETER_VALUE``, which ``mlflow models serve`` returns as HTTP
400 with the message.
"""

from __future__ import annotations

import importlib.metadata
import logging
import pickle
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

import rtt_models
from rtt_models.scoring import check_as_of, check_horizons, score_features

logger = logging.getLogger("rtt_models")

#: Name of the pickled estimator among the logged model's artifacts.
ESTIMATOR_ARTIFACT = "estimator"

#: Distributions pinned when this package's metadata cannot be read.
FALLBACK_REQUIREMENTS = ("numpy", "pandas", "scipy", "scikit-learn", "lifelines", "mlflow", "pyarrow")


class NextPurchaseScorer(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of a fitted :class:`~rtt_models.models.NextPurchaseModel`.

    Parameters
    ----------
    training_as_of : str
        Cut-off of the training data (ISO date), the default ``as_of``.
    horizons : sequence of int, default (30, 90)
        Default horizons in days.

    Notes
    -----
    The estimator is a separate artifact read in :meth:`load_context`, not
    an attribute of the pickled wrapper. The wrapper therefore stays small,
    and the estimator is pickled once, with the standard library.
    """

    def __init__(self, training_as_of: str, horizons: Sequence[int] = (30, 90)):
        self.training_as_of = training_as_of
        self.horizons = list(horizons)

    def load_context(self, context) -> None:
        """Read the fitted estimator from the model's artifacts."""
        with open(context.artifacts[ESTIMATOR_ARTIFACT], "rb") as handle:
            self.estimator_ = pickle.load(handle)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Score feature rows: one row per customer with ``customer_id`` and the score columns.

        Raises
        ------
        MlflowException
            With ``INVALID_PARAMETER_VALUE`` for bad horizons, a bad or
            mismatched ``as_of``, missing columns or invalid feature values.
        """
        params = params or {}
        horizons = params.get("horizons", self.horizons)
        as_of = params.get("as_of", self.training_as_of)
        if not isinstance(model_input, pd.DataFrame):
            raise MlflowException.invalid_parameter_value(
                f"expected a table of feature rows, got {type(model_input).__name__}; "
                "send a JSON body with 'dataframe_split' or 'dataframe_records'."
            )
        if "customer_id" not in model_input.columns:
            raise MlflowException.invalid_parameter_value("the input is missing the column customer_id.")
        try:
            scores = score_features(self.estimator_, model_input, check_horizons(horizons), as_of)
        except (ValueError, TypeError) as err:
            raise MlflowException.invalid_parameter_value(str(err)) from err
        return scores.reset_index()


def scoring_signature(model, features: pd.DataFrame, *, as_of: str, horizons: Sequence[int]) -> ModelSignature:
    """Build the signature of the scoring model.

    Parameters
    ----------
    model : NextPurchaseModel
        The fitted model; its ``feature_names_in_`` are the required columns.
    features : DataFrame
        Feature rows of the training data; the column dtypes decide
        ``long`` (integer columns) or ``double`` (everything else).
    as_of : str
        Default of the ``as_of`` param (ISO date).
    horizons : sequence of int
        Default of the ``horizons`` param, in days.
    """
    columns = [ColSpec("string", "customer_id")]
    for name in model.feature_names_in_:
        is_integer = name in features.columns and pd.api.types.is_integer_dtype(features[name])
        columns.append(ColSpec("long" if is_integer else "double", name))
    if "last_purchase_date" not in model.feature_names_in_:
        columns.append(ColSpec("datetime", "last_purchase_date", required=False))
    params = ParamSchema(
        [
            ParamSpec("horizons", "long", list(check_horizons(horizons)), shape=(-1,)),
            ParamSpec("as_of", "string", as_of),
        ]
    )
    return ModelSignature(inputs=Schema(columns), params=params)


def pip_requirements() -> list[str]:
    """Pin rtt-models' runtime dependencies at their installed versions.

    rtt-models itself is left out because its code ships with the model.
    """
    try:
        declared = importlib.metadata.requires("rtt-models") or []
    except importlib.metadata.PackageNotFoundError:
        declared = list(FALLBACK_REQUIREMENTS)
    pins = []
    for requirement in declared:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(requirement)
    return pins


def log_scoring_model(
    model,
    features: pd.DataFrame,
    *,
    as_of: str,
    horizons: Sequence[int] = (30, 90),
    name: str = "scoring_model",
    registered_model_name: str | None = None,
    example_rows: int = 5,
):
    """Log a fitted model as the scoring pyfunc in the active MLflow run.

    Parameters
    ----------
    model : NextPurchaseModel
        The fitted model.
    features : DataFrame, shape (n_customers, n_features)
        Feature rows at ``as_of``, indexed by ``customer_id``; the first
        ``example_rows`` become the input example.
    as_of : str
        Training cut-off (ISO date), the default ``as_of`` param.
    horizons : sequence of int, default (30, 90)
        Default horizons in days.
    name : str, default "scoring_model"
        Name of the logged model within the run.
    registered_model_name : str, optional
        When given, also registers a new version under this name.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri`` is the URI to load or register.
    """
    as_of = check_as_of(as_of).date().isoformat()
    horizons = check_horizons(horizons)
    signature = scoring_signature(model, features, as_of=as_of, horizons=horizons)
    example = input_example(model, features, example_rows)

    with tempfile.TemporaryDirectory(prefix="rtt-scoring-model-") as folder:
        estimator_path = Path(folder) / "estimator.pkl"
        with open(estimator_path, "wb") as handle:
            pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=NextPurchaseScorer(as_of, horizons),
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_path)},
            code_paths=[str(Path(rtt_models.__file__).parent)],
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )
    logger.info("logged the scoring model %s (as of %s)", info.model_uri, as_of)
    return info


def input_example(model, features: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """Return the first rows of ``features`` in the columns of the signature, with ``customer_id``."""
    frame = features.head(rows)
    if "customer_id" not in frame.columns:
        frame = frame.reset_index()
    columns = ["customer_id", *model.feature_names_in_]
    if "last_purchase_date" in frame.columns and "last_purchase_date" not in columns:
        columns.append("last_purchase_date")
    example = frame[columns].copy()
    example["customer_id"] = example["customer_id"].astype(str)
    return example


def load_scoring_model(model_uri: str, tracking_uri: str | None = None):
    """Load a scoring model by URI, for example ``models:/rtt@champion``.

    A ``tracking_uri``, when given, becomes MLflow's process-wide tracking
    and registry URI before ``models:/`` is resolved.

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        Call ``predict(features, params={"horizons": [...], "as_of": ...})``.
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as err:
        reason = " ".join(str(err).split())[:300]
        raise ValueError(
            f"cannot load the scoring model {model_uri!r} from the store {mlflow.get_tracking_uri()!r}: {reason}; "
            "check the registered name and alias (models:/NAME@champion) and the tracking store "
            "(--tracking-uri or $MLFLOW_TRACKING_URI; by default mlflow.db in the working folder)."
        ) from err


def signature_columns(model, features: pd.DataFrame) -> pd.DataFrame:
    """Keep ``customer_id`` and the columns of a loaded scoring model's input signature.

    The model ignores other columns anyway; dropping them first spares
    MLflow's warning about inputs outside the signature on every call.

    Parameters
    ----------
    model : mlflow.pyfunc.PyFuncModel
        From :func:`load_scoring_model`.
    features : DataFrame, shape (n_customers, n_columns)
        Feature rows with a ``customer_id`` column.
    """
    schema = model.metadata.get_input_schema()
    if schema is None:
        return features
    names = [name for name in schema.input_names() if name in features.columns and name != "customer_id"]
    return features[["customer_id", *names]]
