"""Spark: a loopback-only session, features equal to pandas, spark_udf scores equal to the pyfunc's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed; install the extra: pip install -e '.[spark]'")

from rtt_models.data import TransactionLogError, load_transactions, simulate_transactions  # noqa: E402
from rtt_models.features import build_features  # noqa: E402
from rtt_models.spark.features import build_features_spark  # noqa: E402
from rtt_models.spark.session import local_session  # noqa: E402

AS_OF = "2023-06-30"
PASSTHROUGH = ["segment", "channel"]
#: Feature columns BG/NBD reads.
MODEL_INPUTS = ["frequency", "recency_days", "tenure_days", "elapsed_days"]


@pytest.fixture(scope="module")
def spark():
    session = local_session("rtt-models-tests", cores=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def transactions():
    """3,000 simulated customers with split rows, refunds and duplicates."""
    return simulate_transactions(3000, seed=17).transactions


def spark_features_frame(features_sdf, attrs) -> pd.DataFrame:
    frame = features_sdf.toPandas().set_index("customer_id").sort_index()
    frame.attrs = dict(attrs)
    return frame


def test_session_binds_loopback_without_ui(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.uiWebUrl is None
    assert spark.sparkContext.master == "local[2]"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_jvm_listens_only_on_loopback(spark):
    if shutil.which("ss") is None:
        pytest.skip("the ss command (iproute2) is not installed")
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    listing = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=True).stdout
    addresses = [line.split()[3] for line in listing.splitlines() if f"pid={jvm_pid}," in line]
    assert addresses, f"no listening socket of the JVM (pid {jvm_pid}) in: {listing}"
    assert all(address.startswith("127.0.0.1:") for address in addresses), addresses


def test_session_rejects_bad_cores():
    with pytest.raises(ValueError, match="cores must be a whole number >= 1, got 0"):
        local_session(cores=0)


def test_features_equal_pandas_default_cutoff(spark, transactions):
    expected = build_features(load_transactions(transactions, columns={"passthrough": PASSTHROUGH}))
    got = build_features_spark(spark.createDataFrame(transactions), passthrough=PASSTHROUGH, n_partitions=4)
    pd.testing.assert_frame_equal(spark_features_frame(got, expected.attrs), expected)


def test_features_equal_pandas_business_time_zone(spark, transactions):
    # Instants (UTC) become New York calendar days on both paths.
    instants = transactions.assign(timestamp=transactions["timestamp"].dt.tz_localize("UTC"))
    expected = build_features(load_transactions(instants, timezone="America/New_York"), AS_OF)
    got = build_features_spark(spark.createDataFrame(instants), AS_OF, timezone="America/New_York", n_partitions=3)
    pd.testing.assert_frame_equal(spark_features_frame(got, expected.attrs), expected)


def test_features_equal_pandas_text_dates_without_amounts(spark, transactions):
    text = pd.DataFrame(
        {"cust": transactions["customer_id"], "day": transactions["timestamp"].dt.strftime("%d/%m/%Y")}
    )
    expected = build_features(
        load_transactions(text, columns={"customer_id": "cust", "timestamp": "day"}, date_format="%d/%m/%Y"), AS_OF
    )
    got = build_features_spark(
        spark.createDataFrame(text), AS_OF, customer_col="cust", timestamp_col="day", date_format="%d/%m/%Y",
        n_partitions=2,
    )
    pd.testing.assert_frame_equal(spark_features_frame(got, expected.attrs), expected)


def test_missing_column_and_bad_cutoff(spark, transactions):
    sdf = spark.createDataFrame(transactions.head(20))
    with pytest.raises(TransactionLogError, match=r"missing columns \['segmnt'\]"):
        build_features_spark(sdf, passthrough=["segmnt"])
    with pytest.raises(TransactionLogError, match="cannot read the cut-off 'soon'"):
        build_features_spark(sdf, "soon")


@pytest.fixture(scope="module")
def scoring_model(transactions, mlflow_store, tmp_path_factory):
    """BG/NBD fitted on the features at AS_OF, logged as the scoring pyfunc in a SQLite store."""
    import mlflow

    from rtt_models.models import make_model
    from rtt_models.tracking.pyfunc import log_scoring_model

    features = build_features(load_transactions(transactions), AS_OF)
    model = make_model("bg_nbd").fit(features)
    mlflow.set_tracking_uri(mlflow_store)
    experiment = mlflow.create_experiment(
        "test-spark", artifact_location=str(tmp_path_factory.mktemp("spark-artifacts"))
    )
    with mlflow.start_run(experiment_id=experiment):
        info = log_scoring_model(model, features, as_of=AS_OF, horizons=(30, 90))
    return info.model_uri, features


def test_spark_udf_scores_equal_pyfunc(spark, transactions, scoring_model):
    from rtt_models.spark.scoring import score_spark
    from rtt_models.tracking.pyfunc import load_scoring_model

    model_uri, features = scoring_model
    assert list(load_scoring_model(model_uri).metadata.signature.inputs.input_names())[1:5] == MODEL_INPUTS
    inputs = features.reset_index()[["customer_id", "last_purchase_date", *MODEL_INPUTS]]
    expected = load_scoring_model(model_uri).predict(
        inputs, params={"horizons": [7, 30, 90], "as_of": AS_OF}
    )
    expected = expected.set_index("customer_id").sort_index()
    features_sdf = build_features_spark(spark.createDataFrame(transactions), AS_OF, n_partitions=2)
    got = score_spark(features_sdf, model_uri, [7, 30, 90], AS_OF).toPandas().set_index("customer_id").sort_index()

    assert list(got.columns) == list(expected.columns)
    assert got.index.equals(expected.index)
    dates = "expected_next_purchase_date"
    pd.testing.assert_frame_equal(got.drop(columns=dates), expected.drop(columns=dates), check_exact=False, rtol=1e-12)
    assert got[dates].isna().equals(expected[dates].isna())
    known = expected[dates].notna()
    assert (got.loc[known, dates] == expected.loc[known, dates]).all()


def test_spark_udf_rejects_features_without_ids(spark, transactions, scoring_model):
    from rtt_models.spark.scoring import score_spark

    model_uri, _ = scoring_model
    sdf = spark.createDataFrame(pd.DataFrame({"frequency": [1.0]}))
    with pytest.raises(ValueError, match="features_sdf has no customer_id column"):
        score_spark(sdf, model_uri, [30], AS_OF)
