"""Command-line errors that come from MLflow or from the cut-off end with exit code 2."""

from __future__ import annotations

from click.testing import CliRunner

from rtt_models.cli import main


def test_score_with_unknown_model_exits_2(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,5\na,2023-01-09,5\n")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(main, ["score", "--model", "models:/no-such-model@champion", "--transactions",
                                       str(source), "--as-of", "2023-01-31", "--out", str(out)])
    assert result.exit_code == 2
    assert "cannot load the scoring model 'models:/no-such-model@champion'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_day_month_cutoff_rejected(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,5\n")
    result = CliRunner().invoke(main, ["features", "--transactions", str(source), "--as-of", "01/02/2023",
                                       "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 2
    assert "write it as YYYY-MM-DD" in result.output
