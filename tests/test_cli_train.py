"""The `rtt train` command: the cut-off check before the internal validation, and the URIs it prints."""

from __future__ import annotations

import mlflow
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import simulate_transactions


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    """600 simulated customers (seed 9), purchases from 2022-01-01 to 2023-12-31."""
    path = tmp_path_factory.mktemp("train") / "transactions.csv"
    simulate_transactions(600, seed=9).transactions.to_csv(path, index=False)
    return path


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--as-of", "2021-06-30"],
            "error: --as-of 2021-06-30 is too early: the internal validation needs 90 days of data before it, and "
            "the data start on 2022-01-01; pass --as-of 2022-04-01 or later, or shorten --validation-days "
            "(default: the largest of --horizons).",
            id="before-data",
        ),
        pytest.param(
            ["--as-of", "2022-02-15", "--validation-days", "60"],
            "error: --as-of 2022-02-15 is too early: the internal validation needs 60 days of data before it, and "
            "the data start on 2022-01-01; pass --as-of 2022-03-02 or later, or shorten --validation-days "
            "(default: the largest of --horizons).",
            id="short-history",
        ),
        pytest.param(
            ["--as-of", "2022-02-15", "--horizons", "30,120"],
            "error: --as-of 2022-02-15 is too early: the internal validation needs 120 days of data before it",
            id="largest-horizon",
        ),
    ],
)
def test_train_too_early_exits_2(log_file, args, message):
    result = CliRunner().invoke(
        main, ["train", "--transactions", str(log_file), "--register", "never-registered", *args]
    )
    assert result.exit_code == 2, result.output
    lines = error_lines(result.output)
    assert len(lines) == 1
    assert lines[0].startswith(message)
    assert "2021-04-01" not in result.output


def test_train_prints_champion_uri(log_file, mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The store fixes an experiment's artifact folder when it creates the experiment, so it goes in tmp_path.
    mlflow.set_tracking_uri(mlflow_store)
    mlflow.create_experiment("test-cli-train", artifact_location=str(tmp_path / "artifacts"))
    arguments = ["train", "--transactions", str(log_file), "--as-of", "2023-06-30", "--model", "mean_gap",
                 "--register", "cli-train-uris", "--tracking-uri", mlflow_store, "--experiment", "test-cli-train"]

    first = CliRunner().invoke(main, arguments)
    assert first.exit_code == 0, first.output
    assert "Registered cli-train-uris version 1: models:/cli-train-uris/1 (logged model models:/m-" in first.output
    assert "Score with --model models:/cli-train-uris@champion (version 1)" in first.output

    # A second version that does not beat the champion leaves the alias on version 1.
    second = CliRunner().invoke(main, arguments)
    assert second.exit_code == 0, second.output
    assert "Registered cli-train-uris version 2: models:/cli-train-uris/2" in second.output
    assert "Score with --model models:/cli-train-uris@champion (version 1)" in second.output


def test_train_and_register_too_early_raises(log_file):
    from rtt_models.data import load_transactions
    from rtt_models.tracking.training import train_and_register

    with pytest.raises(ValueError, match=r"as_of 2021-06-30 is too early: .* data start on 2022-01-01; pass as_of 2022-04-01"):
        train_and_register(load_transactions(log_file), "2021-06-30", register="never-registered")


def test_train_prints_no_mlflow_notices(log_file, tmp_path):
    # MLflow's table setup, input-example and pickling notices are hidden
    # unless --verbose. A fresh process gives the output a user gets.
    import os
    import subprocess
    import sys

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "rtt_models.cli", "train", "--transactions", str(log_file), "--as-of",
               "2023-06-30", "--model", "mean_gap", "--register", "quiet-train", "--tracking-uri", store]
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_LOGGING_LEVEL"}
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "Score with --model models:/quiet-train@champion (version 1)" in result.stdout
    for notice in ("CloudPickle", "Add type hints", "Creating initial MLflow database tables"):
        assert notice not in result.stderr
        assert notice not in result.stdout
