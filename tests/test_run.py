"""The main job end to end: `rtt run` on the built-in log and on CDNOW."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main


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
