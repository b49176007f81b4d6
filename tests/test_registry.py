"""The champion alias: it moves only when a new version beats the champion, or when forced."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.tracking.registry import CHAMPION_ALIAS, is_improvement
from rtt_models.tracking.training import train_and_register


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "expected"),
    [
        pytest.param("c_index", 0.80, 0.76, True, id="c_index-higher"),
        pytest.param("c_index", 0.76, 0.76, False, id="c_index-equal"),
        pytest.param("auc_30d", 0.70, 0.71, False, id="auc-lower"),
        pytest.param("brier_90d", 0.10, 0.12, True, id="brier-lower"),
        pytest.param("ibs", 0.13, 0.12, False, id="ibs-higher"),
        pytest.param("count_ratio", 1.02, 0.95, True, id="ratio-nearer-one"),
        pytest.param("c_index", float("nan"), 0.5, False, id="nan-candidate"),
        pytest.param("c_index", 0.5, float("nan"), True, id="nan-champion"),
    ],
)
def test_is_improvement_directions(metric, candidate, champion, expected):
    assert is_improvement(metric, candidate, champion) is expected


def test_is_improvement_unknown_metric():
    with pytest.raises(ValueError, match="metric 'speed' has no known direction"):
        is_improvement("speed", 1.0, 0.0)


@pytest.fixture(scope="module")
def training(mlflow_store, tmp_path_factory):
    log = load_transactions(simulate_transactions(1500, seed=3).transactions)
    artifacts = str(tmp_path_factory.mktemp("registry-artifacts"))

    def train(model, promote=False, metric="c_index"):
        return train_and_register(
            log, "2023-06-30", register="registry-test", model=model, promote=promote, metric=metric,
            tracking_uri=mlflow_store, experiment="test-registry", artifact_location=artifacts,
        )

    return train


def _champion(mlflow_store) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    return str(client.get_model_version_by_alias("registry-test", CHAMPION_ALIAS).version)


def test_champion_moves_only_on_improvement(training, mlflow_store):
    from mlflow.tracking import MlflowClient

    # First version: no champion yet, so it becomes the champion.
    first = training("mean_gap")
    assert first.decision.promoted
    assert first.decision.champion_value is None
    assert _champion(mlflow_store) == first.version

    # Same family on the same data: equal metric, the alias stays.
    same = training("mean_gap")
    assert not same.decision.promoted
    assert same.decision.champion_value == pytest.approx(same.decision.candidate_value)
    assert "does not beat" in same.decision.reason
    assert _champion(mlflow_store) == first.version

    # A family that ranks better on the simulated log takes the alias.
    better = training("bg_nbd")
    assert better.decision.candidate_value > better.decision.champion_value
    assert better.decision.promoted
    assert better.decision.previous_version == first.version
    assert _champion(mlflow_store) == better.version

    # Both values and the decision are on record in the run and the version.
    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    run = client.get_run(better.run_id)
    assert float(run.data.params["candidate.c_index"]) == pytest.approx(better.decision.candidate_value)
    assert float(run.data.params["champion.c_index"]) == pytest.approx(better.decision.champion_value)
    assert run.data.tags["rtt.promoted"] == "true"
    version = client.get_model_version("registry-test", better.version)
    assert version.tags["rtt.model"] == "bg_nbd"
    assert version.tags["rtt.champion_decision"] == better.decision.reason

    # A worse family stays out, unless promotion is forced.
    worse = training("mean_gap")
    assert not worse.decision.promoted
    assert _champion(mlflow_store) == better.version
    forced = training("mean_gap", promote=True)
    assert forced.decision.promoted
    assert _champion(mlflow_store) == forced.version


def test_auto_picks_best_candidate(training):
    result = training("auto", promote=True)
    candidates = result.validation.summary.drop(index="current champion", errors="ignore")
    assert result.model_name == candidates["c_index"].idxmax()
    assert result.decision.candidate_value == pytest.approx(candidates["c_index"].max())


def test_settings_with_auto_rejected():
    log = load_transactions(simulate_transactions(50, seed=1).transactions)
    with pytest.raises(ValueError, match="cannot go with --model auto"):
        train_and_register(log, "2023-06-30", register="x", model="auto", settings={"penalizer": 0.1})


def test_cli_train_prints_decision(mlflow_store, tmp_path, monkeypatch):
    from rtt_models.cli import main

    import mlflow

    transactions = tmp_path / "transactions.csv"
    simulate_transactions(600, seed=9).transactions.to_csv(transactions, index=False)
    monkeypatch.chdir(tmp_path)

    # The store fixes an experiment's artifact folder at creation; keep it in tmp_path.
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.create_experiment("test-registry-cli", artifact_location=str(tmp_path / "artifacts"))
    arguments = ["train", "--transactions", str(transactions), "--as-of", "2023-06-30", "--model", "bg_nbd",
                 "--setting", "penalizer=0.01", "--register", "registry-cli", "--tracking-uri", mlflow_store,
                 "--experiment", "test-registry-cli"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert "Registered registry-cli version 1" in result.output
    assert "promoted: no champion yet" in result.output

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)
    version = client.get_model_version_by_alias("registry-cli", CHAMPION_ALIAS)
    assert json.loads(version.tags["rtt.settings"]) == {"penalizer": 0.01}


def test_cli_train_bad_metric_exit_2(tmp_path):
    from rtt_models.cli import main

    result = CliRunner().invoke(main, ["train", "--as-of", "2023-06-30", "--register", "x", "--metric", "speed"])
    assert result.exit_code == 2
    assert "metric 'speed' has no known direction" in result.output
