"""The `rtt backtest` command: tables, plots, the printed comparison and bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import simulate_transactions


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("backtest") / "log.csv"
    transactions = simulate_transactions(800, seed=2).transactions
    transactions[["customer_id", "timestamp", "amount"]].to_csv(path, index=False)
    return path


def run_cli(*args):
    return CliRunner().invoke(main, ["backtest", *args], catch_exceptions=False)


def test_writes_long_table_and_prints_best_first(log_file, tmp_path):
    out = tmp_path / "metrics.csv"
    result = run_cli("--transactions", str(log_file), "--as-of", "2023-06-30,2023-09-30", "--horizons", "30,60",
                     "--models", "mean_gap,bg_nbd", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["model", "cutoff", "metric", "value"]
    assert set(table["model"]) == {"mean_gap", "bg_nbd", "days_since_last_purchase", "purchase_count"}
    assert set(table["cutoff"]) == {"2023-06-30", "2023-09-30"}
    assert {"c_index", "auc_30d", "auc_60d", "ibs", "lift_top10"} <= set(table["metric"])

    # The printed rows follow the mean C-index, best first.
    mean_c_index = table.query("metric == 'c_index'").groupby("model")["value"].mean().sort_values(ascending=False)
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["n_cutoffs", "c_index"])
    printed = [line.split()[0] for line in lines[header + 2 : header + 2 + len(mean_c_index)]]
    assert printed == mean_c_index.index.tolist()
    assert "92-day holdout window" in result.output


def test_wide_table_and_plots(log_file, tmp_path):
    out = tmp_path / "metrics.parquet"
    plots = tmp_path / "plots"
    result = run_cli("--transactions", str(log_file), "--as-of", "2023-10-31", "--models", "bg_nbd",
                     "--layout", "wide", "--no-baselines", "--top-k", "5,20", "--out", str(out), "--plots", str(plots))
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert table["model"].tolist() == ["bg_nbd"]
    assert {"fit_seconds", "precision_top5", "lift_top20", "auc_30d"} <= set(table.columns)
    assert "auc_90d" not in table.columns
    pngs = sorted(path.name for path in plots.glob("*.png"))
    assert "tracking.png" in pngs
    assert "calibration_30d.png" in pngs
    assert all((plots / name).stat().st_size > 0 for name in pngs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--as-of", "not-a-date"], "cannot read the cut-off 'not-a-date'", id="bad-date"),
        pytest.param(["--as-of", "2023-12-20", "--window-days", "30"],
                     "has no full 30-day holdout window: it would end on 2024-01-19, after the last data day "
                     "2023-12-31; use an earlier cut-off or a shorter --window-days.", id="short-window"),
        pytest.param(["--as-of", "2021-06-30", "--window-days", "90"],
                     "--as-of 2021-06-30 comes before the first day of the data, 2022-01-01, so no customer has a "
                     "purchase to score there; pass --as-of dates from 2022-01-01 to 2023-10-02", id="before-data"),
        pytest.param(["--as-of", "2023-06-30", "--models", "bg_nbd,nope"], "unknown models ['nope']",
                     id="unknown-model"),
        pytest.param(["--as-of", "2023-06-30", "--horizons", "30,soon"], "--horizons value 'soon'", id="bad-horizon"),
        pytest.param(["--as-of", "2023-06-30", "--top-k", "0"], "--top-k value 0 must lie in", id="bad-top-k"),
    ],
)
def test_bad_input_exits_2_with_one_line(log_file, tmp_path, args, message):
    out = tmp_path / "metrics.csv"
    result = CliRunner().invoke(main, ["backtest", "--transactions", str(log_file), *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert message in error_lines[0]
    assert not out.exists()


def test_bad_output_extension_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["backtest", "--as-of", "2023-06-30", "--out", str(tmp_path / "m.xlsx")])
    assert result.exit_code == 2
    assert "name the output file with .csv, .parquet or .pq" in result.output
