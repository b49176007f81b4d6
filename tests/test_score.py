"""Batch scoring: one row per customer, rejects with reasons, and no partial output on failure."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.scoring import score_features, score_in_chunks, unscorable_customers, write_batch_scores
from rtt_models.tracking.training import train_and_register

AS_OF = "2023-06-30"


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    """500 simulated customers plus one refund-only customer and one who starts after the cut-off."""
    simulated = simulate_transactions(500, seed=31).transactions[["customer_id", "timestamp", "amount"]]
    extra = pd.DataFrame(
        {
            "customer_id": ["Z-refund", "Z-late"],
            "timestamp": pd.to_datetime(["2023-02-01", "2023-08-15"]),
            "amount": [-20.0, 15.0],
        }
    )
    return pd.concat([simulated, extra], ignore_index=True)


@pytest.fixture(scope="module")
def trained(transactions, mlflow_store, tmp_path_factory):
    return train_and_register(
        load_transactions(transactions), AS_OF, register="score-test", model="mean_gap",
        tracking_uri=mlflow_store, experiment="test-score",
        artifact_location=str(tmp_path_factory.mktemp("score-artifacts")),
    )


@pytest.fixture(scope="module")
def champion(trained, mlflow_store):
    from rtt_models.tracking.pyfunc import load_scoring_model

    return load_scoring_model("models:/score-test@champion", tracking_uri=mlflow_store)


def test_unscorable_customers_reasons(transactions):
    log = load_transactions(transactions)
    from rtt_models.features import build_features

    features = build_features(log, AS_OF)
    rejected = unscorable_customers(log, AS_OF, features.index, occasion_rule="positive")
    assert rejected.loc["Z-refund", "reason"].startswith("no purchase occasion by the as-of date")
    assert rejected.loc["Z-late", "reason"] == "first transaction after the as-of date"
    assert rejected.index.intersection(features.index).empty
    assert len(rejected) + len(features) == transactions["customer_id"].nunique()


def test_chunks_equal_one_call(trained, champion):
    features = trained.features
    params = {"horizons": [30, 90], "as_of": AS_OF}
    chunked = score_in_chunks(lambda chunk: champion.predict(chunk, params=params), features, chunk_customers=77)
    whole = score_features(trained.model, features, [30, 90], AS_OF)
    pd.testing.assert_frame_equal(chunked, whole)


def test_chunk_size_below_one_rejected(trained):
    with pytest.raises(ValueError, match="chunk_customers must be >= 1, got 0"):
        score_in_chunks(lambda chunk: chunk, trained.features, chunk_customers=0)


def test_failing_chunk_leaves_no_output(trained, champion, tmp_path):
    from mlflow.exceptions import MlflowException

    # A customer in the fourth chunk of 100 has an impossible negative elapsed time.
    features = trained.features.drop(columns=["last_purchase_date"]).copy()
    features.iloc[350, features.columns.get_loc("elapsed_days")] = -5.0
    out = tmp_path / "scores.csv"
    params = {"horizons": [30, 90], "as_of": AS_OF}
    calls = []

    def predict(chunk):
        calls.append(len(chunk))
        return champion.predict(chunk, params=params)

    with pytest.raises(MlflowException, match="elapsed_days must be finite and >= 0"):
        write_batch_scores(predict, features, out, horizons=[30, 90], chunk_customers=100)
    assert len(calls) == 4
    assert list(tmp_path.iterdir()) == []


def test_failing_chunk_keeps_previous_output(trained, champion, tmp_path):
    from mlflow.exceptions import MlflowException

    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous night's scores")
    features = trained.features.drop(columns=["last_purchase_date"]).copy()
    features.iloc[-1, features.columns.get_loc("elapsed_days")] = float("nan")
    with pytest.raises(MlflowException):
        write_batch_scores(
            lambda chunk: champion.predict(chunk, params={"as_of": AS_OF}), features, out,
            horizons=[30, 90], chunk_customers=200,
        )
    assert out.read_bytes() == b"previous night's scores"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]


def test_cli_score_one_row_per_customer(trained, transactions, mlflow_store, tmp_path):
    from rtt_models.cli import main

    log_path = tmp_path / "transactions.csv"
    transactions.to_csv(log_path, index=False)
    out = tmp_path / "scores.csv"
    rejects = tmp_path / "rejects.csv"
    arguments = ["score", "--transactions", str(log_path), "--as-of", AS_OF, "--model", "models:/score-test@champion",
                 "--tracking-uri", mlflow_store, "--out", str(out), "--rejects", str(rejects),
                 "--chunk-customers", "150", "--horizons", "30,90"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output

    scores = pd.read_csv(out, index_col="customer_id")
    assert scores.index.is_unique
    assert set(scores.index) == set(transactions["customer_id"])
    reasons = pd.read_csv(rejects, index_col="customer_id")["reason"]
    assert {"Z-refund", "Z-late"} <= set(reasons.index)
    assert set(reasons.index) == set(scores.index) - set(trained.features.index)
    assert scores.loc[reasons.index, "risk_score"].isna().all()

    # Scored customers equal the in-process model's scores.
    expected = score_features(trained.model, trained.features, [30, 90], AS_OF)
    scored = scores.drop(index=reasons.index)
    pd.testing.assert_series_equal(scored["risk_score"], expected["risk_score"].sort_index(), check_names=False)
    assert f"{len(reasons)} without a score are listed" in result.output


def test_cli_score_default_rejects_path(trained, transactions, mlflow_store, tmp_path):
    from rtt_models.cli import main

    log_path = tmp_path / "transactions.csv"
    transactions.to_csv(log_path, index=False)
    arguments = ["score", "--transactions", str(log_path), "--as-of", AS_OF, "--model", "models:/score-test@champion",
                 "--tracking-uri", mlflow_store, "--out", str(tmp_path / "scores.parquet")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    rejected = pd.read_parquet(tmp_path / "scores.rejects.parquet")
    assert {"Z-refund", "Z-late"} <= set(rejected.index)


def test_cli_score_bad_output_name_exit_2(tmp_path):
    from rtt_models.cli import main

    result = CliRunner().invoke(main, ["score", "--model", "models:/x@champion", "--as-of", AS_OF,
                                       "--out", str(tmp_path / "scores.txt")])
    assert result.exit_code == 2
    assert "name the output file with .csv, .parquet or .pq" in result.output
    assert list(tmp_path.iterdir()) == []
