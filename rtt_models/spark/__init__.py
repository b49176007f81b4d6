"""Apache Spark: the same per-customer feature code on partitions, and spark_udf scoring.

Needs the ``spark`` extra (``pip install 'rtt-models[spark]'``) and Java 17
or later. Every session comes from :func:`local_session`, bound to
127.0.0.1 with the web UI off. The submodules import pyspark on use, so
importing this package does not need it.
"""

from __future__ import annotations

__all__ = ["build_features_spark", "local_session", "score_spark"]


def __getattr__(name):
    # Imported on first use: pyspark (and MLflow for scoring) load only when needed.
    if name == "local_session":
        from rtt_models.spark.session import local_session

        return local_session
    if name == "build_features_spark":
        from rtt_models.spark.features import build_features_spark

        return build_features_spark
    if name == "score_spark":
        from rtt_models.spark.scoring import score_spark

        return score_spark
    raise AttributeError(f"module 'rtt_models.spark' has no attribute {name!r}")
