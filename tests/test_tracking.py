"""MLflow runs: the data fingerprint and backtest logging, against a real SQLite store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.evaluation import backtest
from rtt_models.tracking.runs import cutoff_step, data_fingerprint, feature_schema, log_backtest, metric_name, tracking_run

SMALL_LOG = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b", "c", "c", "c"],
        "timestamp": ["2023-01-05", "2023-02-10", "2023-01-20", "2023-03-01", "2023-03-15", "2023-04-30"],
        "amount": [10.0, 12.5, 7.0, 3.0, -1.0, 8.0],
    }
)


def test_fingerprint_small_log_values():
    fingerprint = data_fingerprint(load_transactions(SMALL_LOG))
    assert fingerprint["rows"] == 6
    assert fingerprint["customers"] == 3
    assert fingerprint["first_date"] == "2023-01-05"
    assert fingerprint["last_date"] == "2023-04-30"
    assert fingerprint["timezone"] == "UTC"
    assert len(fingerprint["sha256"]) == 64


def test_fingerprint_ignores_row_order():
    shuffled = SMALL_LOG.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert not shuffled.equals(SMALL_LOG)
    assert data_fingerprint(load_transactions(shuffled)) == data_fingerprint(load_transactions(SMALL_LOG))


def test_fingerprint_changes_with_one_amount():
    changed = SMALL_LOG.copy()
    changed.loc[4, "amount"] = -1.01
    before = data_fingerprint(load_transactions(SMALL_LOG))
    after = data_fingerprint(load_transactions(changed))
    assert after["sha256"] != before["sha256"]
    assert after["rows"] == before["rows"]


def test_fingerprint_changes_with_one_more_row():
    longer = pd.concat([SMALL_LOG, SMALL_LOG.iloc[[0]].assign(timestamp="2023-05-01")], ignore_index=True)
    assert data_fingerprint(load_transactions(longer))["sha256"] != data_fingerprint(load_transactions(SMALL_LOG))["sha256"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("bg_nbd.auc_30d", "bg_nbd.auc_30d", id="kept"),
        pytest.param("my model!.c_index", "my model_.c_index", id="bang"),
        pytest.param("a=b", "a_b", id="equals"),
    ],
)
def test_metric_name_sanitised(name, expected):
    assert metric_name(name) == expected


def test_cutoff_step_is_yyyymmdd():
    assert cutoff_step("1997-09-30") == 19970930


def test_feature_schema_marks_model_columns():
    features = pd.DataFrame({"elapsed_days": [1.0], "frequency": [2]}, index=pd.Index(["a"], name="customer_id"))
    features.attrs["as_of"] = "2023-06-30"

    class Fitted:
        feature_names_in_ = ["elapsed_days"]

    schema = feature_schema(features, Fitted())
    assert schema["as_of"] == "2023-06-30"
    assert schema["columns"] == [
        {"name": "elapsed_days", "dtype": "float64", "read_by_model": True},
        {"name": "frequency", "dtype": "int64", "read_by_model": False},
    ]


@pytest.fixture(scope="module")
def logged_backtest(mlflow_store, tmp_path_factory):
    """A two-model, two-cut-off backtest of 400 simulated customers, logged into the shared store."""
    from mlflow.tracking import MlflowClient

    log = load_transactions(simulate_transactions(400, seed=11).transactions)
    result = backtest(log, {"mean_gap": "mean_gap", "bg_nbd": "bg_nbd"}, ["2023-03-31", "2023-06-30"],
                      horizons=(30, 90), window_days=90)
    artifacts = tmp_path_factory.mktemp("tracking-artifacts")
    with tracking_run("test-tracking", tracking_uri=mlflow_store, artifact_location=str(artifacts)) as run:
        logged = log_backtest(result, log=log, occasion_rule="positive")
    client = MlflowClient(tracking_uri=mlflow_store)
    return log, result, logged, client, run.info.run_id


def test_backtest_metrics_per_cutoff_step(logged_backtest):
    _, result, _, client, run_id = logged_backtest
    history = client.get_metric_history(run_id, "bg_nbd.auc_30d")
    expected = result.metrics[(result.metrics["model"] == "bg_nbd") & (result.metrics["metric"] == "auc_30d")]
    assert sorted(m.step for m in history) == [20230331, 20230630]
    by_step = {m.step: m.value for m in history}
    for row in expected.itertuples(index=False):
        assert by_step[cutoff_step(row.cutoff)] == pytest.approx(row.value)


def test_backtest_summary_means_logged(logged_backtest):
    _, result, logged, client, run_id = logged_backtest
    metrics = client.get_run(run_id).data.metrics
    assert metrics["mean_gap.c_index.mean"] == pytest.approx(result.summary.loc["mean_gap", "c_index"])
    assert logged >= len(result.metrics)


def test_backtest_params_and_fingerprint(logged_backtest):
    log, _, _, client, run_id = logged_backtest
    params = client.get_run(run_id).data.params
    assert json.loads(params["cutoffs"]) == ["2023-03-31", "2023-06-30"]
    assert json.loads(params["horizons"]) == [30, 90]
    assert params["window_days"] == "90"
    assert params["occasion_rule"] == "positive"
    assert params["timezone"] == "UTC"
    assert params["data.sha256"] == data_fingerprint(log)["sha256"]
    assert params["data.rows"] == str(len(log.frame))


def test_backtest_artifacts(logged_backtest, tmp_path):
    import mlflow

    _, result, _, client, run_id = logged_backtest
    names = {a.path for a in client.list_artifacts(run_id, "backtest")}
    assert names == {"backtest/summary.csv", "backtest/metrics.csv", "backtest/per_cutoff.csv", "backtest/failures.csv"}
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="backtest/summary.csv", dst_path=str(tmp_path))
    summary = pd.read_csv(local, index_col="model")
    assert list(summary.index) == list(result.summary.index)
    schema = mlflow.artifacts.load_dict(f"runs:/{run_id}/feature_schema.json")
    assert "elapsed_days" in [c["name"] for c in schema["columns"]]
    assert np.isfinite(summary["c_index"]).all()


def test_new_experiment_artifacts_beside_store(mlflow_store):
    import mlflow

    with tracking_run("test-tracking-default-location", tracking_uri=mlflow_store):
        pass
    location = mlflow.get_experiment_by_name("test-tracking-default-location").artifact_location
    store_folder = mlflow_store.removeprefix("sqlite:///").rsplit("/", 1)[0]
    assert location.removeprefix("file://") == f"{store_folder}/mlruns/test-tracking-default-location"
