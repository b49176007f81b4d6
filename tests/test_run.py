"""The main job end to end: `rtt run` on the built-in log and on CDNOW."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import simulate_transactions


def run_main_job(tmp_path, *args):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", *args, "--out", str(out), "--experiment", f"run-{tmp_path.name}",
               "--register", f"rtt-{tmp_path.name}"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_on_builtin_log_writes_every_output(tmp_path):
    out, output = run_main_job(tmp_path, "--models", "kaplan_meier,bg_nbd,pareto_nbd")
    for name in ("features.parquet", "backtest_summary.csv", "scores.csv", "scores.rejects.csv",
                 "intervention_list.csv"):
        assert (out / name).is_file(), name
    assert any((out / "plots").glob("*.png"))

    features = pd.read_parquet(out / "features.parquet")
    scores = pd.read_csv(out / "scores.csv")
    rejects = pd.read_csv(out / "scores.rejects.csv")
    assert scores["customer_id"].is_unique
    assert len(scores) == len(features) + len(rejects)
    assert scores.dropna(subset=["p_purchase_90d"])["p_purchase_90d"].between(0, 1).all()

    summary = pd.read_csv(out / "backtest_summary.csv", index_col=0)
    assert {"kaplan_meier", "bg_nbd", "pareto_nbd", "days_since_last_purchase"} <= set(summary.index)
    trained = next(line for line in output.splitlines() if "trained" in line)
    best = summary.drop(index=["days_since_last_purchase", "purchase_count"])["c_index"].idxmax()
    assert f"trained {best};" in trained

    listed = pd.read_csv(out / "intervention_list.csv", dtype={"customer_id": str})
    assert len(listed) == len(features)
    assert listed["customer_id"].is_unique
    assert set(listed["tier"]) <= {"overdue", "at risk", "due soon", "active"}
    for label in ("scores", "intervention_list", "mlflow runs", "serving uri", "Tiers:", "Value at stake"):
        assert label in output


@pytest.mark.shared_data
def test_run_on_cdnow_reference_cutoff(tmp_path, shared_data_dir):
    out, output = run_main_job(
        tmp_path, "--transactions", str(shared_data_dir / "cdnow" / "CDNOW_master.txt"), "--format", "cdnow",
        "--as-of", "1997-09-30", "--occasion-rule", "all",
    )
    scores = pd.read_csv(out / "scores.csv", dtype={"customer_id": str})
    assert len(scores) == 23_570
    assert scores["p_purchase_90d"].notna().all()
    summary = pd.read_csv(out / "backtest_summary.csv", index_col=0)
    assert summary["c_index"].notna().sum() >= 5
    assert "As of 1997-09-30" in output


@pytest.fixture
def small_log(tmp_path):
    """300 simulated customers (seed 11), purchases from 2022-01-03 to 2023-12-31."""
    path = tmp_path / "transactions.csv"
    simulate_transactions(300, seed=11).transactions.to_csv(path, index=False)
    return path


def test_run_mlflow_store_in_out_folder(tmp_path, small_log, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    try:
        result = CliRunner().invoke(
            main, ["run", "--transactions", str(small_log), "--models", "mean_gap", "--register", "run-store-test"],
            catch_exceptions=False,
        )
    finally:
        # `rtt run` sets MLflow's process-wide URI. Resetting it makes later tests read $MLFLOW_TRACKING_URI again.
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    assert result.exit_code == 0, result.output

    out = work / "rtt_output"
    assert (out / "mlflow.db").is_file()
    assert any((out / "mlruns").iterdir())
    assert sorted(path.name for path in work.iterdir()) == ["rtt_output"]
    assert f"tracking store     sqlite:///{out.resolve().as_posix()}/mlflow.db" in result.output


def test_run_too_early_exits_2(tmp_path, small_log):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", "--transactions", str(small_log), "--as-of", "2022-03-01", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith(
        "error: --as-of 2022-03-01 is too early: the internal validation needs 90 days of data before it, and the "
        "data start on 2022-01-03; pass --as-of 2022-04-03 or later, or shorten the largest of --horizons."
    )
    assert not out.exists()
