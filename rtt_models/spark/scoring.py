"""Score a Spark DataFrame of features with a logged scoring model through ``spark_udf``.

The model is the MLflow pyfunc of :mod:`rtt_models.tracking.pyfunc`, loaded
once per Python worker by ``mlflow.pyfunc.spark_udf`` in the worker's own
interpreter (``env_manager="local"``: no environment is built or downloaded).
Its output, one score row per customer, comes back as one struct column
whose fields are the score columns of :mod:`rtt_models.scoring`, and is
then flattened into ordinary columns. ``spark_udf`` in MLflow 3.17 accepts a
struct of ``double``, ``string`` and other primitive fields as
``result_type`` and fills each field from the prediction column of the same
name. It converts a string field with ``str``, so a missing
``expected_next_purchase_date`` arrives as the text ``"None"`` and is set
back to null here.

NOTE: this module imports MLflow, like :mod:`rtt_models.tracking`, because
Spark scoring needs ``mlflow.pyfunc.spark_udf`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rtt_models.scoring import check_as_of, check_horizons, score_columns

logger = logging.getLogger("rtt_models")

#: Name of the temporary struct column of a row's scores.
SCORES_COLUMN = "_rtt_scores"

#: Texts of a missing value after ``str()``, which ``spark_udf`` (MLflow 3.17) applies to string fields.
MISSING_TEXTS = ("None", "nan", "NaT")


def score_result_type(horizons: Sequence[int]) -> str:
    """Return the DDL struct type of one score row for these horizons (days), ``customer_id`` first."""
    fields = ["customer_id STRING"]
    for name in score_columns(check_horizons(horizons)):
        fields.append(f"{name} {'STRING' if name == 'expected_next_purchase_date' else 'DOUBLE'}")
    return ", ".join(fields)


def score_spark(
    features_sdf,
    model_uri: str,
    horizons: Sequence[int],
    as_of,
    *,
    input_columns: Sequence[str] | None = None,
):
    """Score per-customer features in Spark with a logged scoring model.

    Parameters
    ----------
    features_sdf : pyspark.sql.DataFrame
        Feature rows at ``as_of`` with a ``customer_id`` column, as
        :func:`~rtt_models.spark.features.build_features_spark` returns them.
        Ids of another type are sent as text.
    model_uri : str
        URI of the scoring model, for example ``models:/rtt@champion`` or
        ``runs:/<run_id>/scoring_model``.
    horizons : sequence of int
        Horizons in whole days after ``as_of``.
    as_of : str, date or Timestamp
        The cut-off the features were built at; the model checks it against
        ``last_purchase_date`` and ``elapsed_days``.
    input_columns : sequence of str, optional
        Columns sent to the model besides ``customer_id``. None sends the
        inputs of the model's signature that ``features_sdf`` has.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per input row: ``customer_id`` (text), then
        ``p_purchase_{h}d`` and ``expected_occasions_{h}d`` per horizon,
        ``median_days_to_next``, ``expected_days_to_next`` (restricted to the
        largest horizon), ``expected_next_purchase_date`` (ISO date text),
        ``risk_score`` (S(H): higher is more likely to lapse) and ``p_alive``.

    Raises
    ------
    ValueError
        For bad horizons or ``as_of``, a missing ``customer_id`` column, or a
        required model input that ``features_sdf`` lacks.
    """
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    days = check_horizons(horizons)
    as_of_text = check_as_of(as_of).date().isoformat()
    if "customer_id" not in features_sdf.columns:
        raise ValueError(
            f"features_sdf has no customer_id column (columns: {features_sdf.columns}); "
            "pass the output of build_features_spark."
        )
    if input_columns is None:
        input_columns = _signature_inputs(model_uri, features_sdf.columns)
    missing = [name for name in input_columns if name not in features_sdf.columns]
    if missing:
        raise ValueError(f"features_sdf lacks the model inputs {missing}; build the features the model was fitted on.")

    # One struct per row goes in and one struct of scores comes out. Ids are sent as text, the signature's type.
    spark = features_sdf.sparkSession
    predict = mlflow.pyfunc.spark_udf(
        spark,
        model_uri,
        result_type=score_result_type(days),
        env_manager="local",
        params={"horizons": days, "as_of": as_of_text},
    )
    rows = features_sdf.withColumn("customer_id", F.col("customer_id").cast("string"))
    inputs = F.struct(*[F.col(name) for name in ["customer_id", *input_columns]])
    logger.info("Spark scoring with %s: horizons %s days, as of %s", model_uri, days, as_of_text)
    scores = rows.select(predict(inputs).alias(SCORES_COLUMN)).select(f"{SCORES_COLUMN}.*")

    # spark_udf turns a missing date into the text "None", so the null is put back.
    date = F.col("expected_next_purchase_date")
    return scores.withColumn("expected_next_purchase_date", F.when(date.isin(*MISSING_TEXTS), None).otherwise(date))


def _signature_inputs(model_uri: str, available: Sequence[str]) -> list[str]:
    """Inputs of the model's signature other than ``customer_id``: required ones, and optional ones present."""
    from mlflow.models import get_model_info

    signature = get_model_info(model_uri).signature
    if signature is None or signature.inputs is None:
        raise ValueError(f"the model {model_uri} has no input signature; pass input_columns.")
    names = []
    for spec in signature.inputs.inputs:
        if spec.name == "customer_id":
            continue
        if spec.required or spec.name in available:
            names.append(spec.name)
    return names
