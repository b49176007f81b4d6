"""The `rtt features` command: outputs, input errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_features_csv_from_mapped_columns(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("cust,when,value\nX,2023-03-04,12\nX,2023-03-04,8\nX,2023-03-10,30\nX,2023-03-31,5\n")
    out = tmp_path / "features.csv"
    result = run_cli("features", "--transactions", str(source), "--customer-col", "cust", "--timestamp-col", "when",
                     "--amount-col", "value", "--as-of", "2023-04-30", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, index_col="customer_id")
    assert table.loc["X", "frequency"] == 2
    assert table.loc["X", "elapsed_days"] == 30
    assert "4 rows read" in result.output


def test_features_parquet_by_extension(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,1\na,2023-01-08,2\n")
    out = tmp_path / "features.parquet"
    assert run_cli("features", "--transactions", str(source), "--out", str(out)).exit_code == 0
    assert pd.read_parquet(out).loc["a", "gap_mean_days"] == 7.0


def test_features_on_builtin_simulated_log(tmp_path):
    out = tmp_path / "features.csv"
    result = run_cli("features", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert 9_000 < len(table) <= 10_000
    assert table["customer_id"].is_unique


def test_ambiguous_dates_exit_2_one_line_no_output(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date\na,04/05/2023\na,06/05/2023\n")
    out = tmp_path / "features.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "rtt_models.cli", "features", "--transactions", str(source), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0
    assert completed.stderr.startswith("error: dates in column 'date'")
    assert "--date-format" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--transactions", "missing.csv"], "not found", id="missing-file"),
        pytest.param(["--as-of", "not-a-date"], "cannot read the cut-off", id="bad-cutoff"),
        pytest.param(["--out-suffix"], "No such option", id="unknown-option"),
    ],
)
def test_bad_input_exits_2(tmp_path, args, message):
    out = tmp_path / "features.csv"
    result = CliRunner().invoke(main, ["features", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_bad_output_extension_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["features", "--out", str(tmp_path / "features.xlsx")])
    assert result.exit_code == 2
    assert "name the output file with .csv, .parquet or .pq" in result.output


def test_every_command_has_help():
    for command in main.commands:
        result = run_cli(command, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output


def test_semicolon_file_gets_separator_hint(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id;date;amount\na;2023-01-01;5\n")
    out = tmp_path / "features.csv"
    result = CliRunner().invoke(main, ["features", "--transactions", str(source), "--out", str(out)])
    assert result.exit_code == 2
    assert "looks separated by ';'" in result.output
    fixed = run_cli("features", "--transactions", str(source), "--separator", ";", "--out", str(out))
    assert fixed.exit_code == 0
    assert pd.read_csv(out)["n_occasions"].tolist() == [1]


def test_empty_file_named_in_error(tmp_path):
    source = tmp_path / "empty.csv"
    source.write_text("")
    result = CliRunner().invoke(main, ["features", "--transactions", str(source), "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 2
    assert "empty.csv' is empty" in result.output


def test_cutoff_before_data_exits_2_without_file(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,5\n")
    out = tmp_path / "features.csv"
    result = CliRunner().invoke(main, ["features", "--transactions", str(source), "--as-of", "2000-01-01",
                                       "--out", str(out)])
    assert result.exit_code == 2
    assert "no customer has a purchase occasion on or before the cut-off 2000-01-01" in result.output
    assert "from 2023-01-01 to 2023-01-01" in result.output
    assert not out.exists()


def test_cutoff_after_data_noted(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,5\n")
    out = tmp_path / "features.csv"
    result = run_cli("features", "--transactions", str(source), "--as-of", "2023-03-02", "--out", str(out))
    assert result.exit_code == 0
    assert "is 60 days after the last row (2023-01-01)" in result.output


def test_output_files_readable_by_group(tmp_path):
    out = tmp_path / "features.csv"
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,5\n")
    run_cli("features", "--transactions", str(source), "--out", str(out))
    from rtt_models.data.write import default_file_mode

    assert out.stat().st_mode & 0o777 == default_file_mode()
