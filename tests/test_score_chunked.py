"""`rtt score` of a Parquet log in customer partitions: equal to the in-memory path, clean errors, no files left."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import DataQualityReport, load_transactions, simulate_transactions
from rtt_models.features import build_features
from rtt_models.features.chunked import plan_partitions
from rtt_models.scoring import batch_score_table, score_features, unscorable_customers
from rtt_models.scoring_chunked import score_log_in_partitions
from rtt_models.tracking.training import train_and_register

AS_OF = "2023-06-30"
MODEL_URI = "models:/score-chunked-test@champion"
#: A budget of 2 MiB splits the test log (about 22,000 rows) into several partitions.
SMALL_BUDGET_MB = 2


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    """3,000 simulated customers plus a refund-only customer and one who starts after the cut-off, as Parquet."""
    simulated = simulate_transactions(3000, seed=23).transactions
    extra = pd.DataFrame(
        {
            "customer_id": ["Z-refund", "Z-late"],
            "timestamp": pd.to_datetime(["2023-02-01", "2023-08-15"]),
            "amount": [-20.0, 15.0],
            "segment": ["a", "a"],
            "channel": ["web", "web"],
        }
    )
    path = tmp_path_factory.mktemp("score-chunked") / "log.parquet"
    pd.concat([simulated, extra], ignore_index=True).to_parquet(path, index=False, row_group_size=5_000)
    return path


@pytest.fixture(scope="module")
def trained(log_path, mlflow_store, tmp_path_factory):
    return train_and_register(
        load_transactions(log_path), AS_OF, register="score-chunked-test", model="mean_gap",
        tracking_uri=mlflow_store, experiment="test-score-chunked",
        artifact_location=str(tmp_path_factory.mktemp("score-chunked-artifacts")),
    )


def run_score(log_path, mlflow_store, out, *options, as_of=AS_OF):
    arguments = ["score", "--transactions", str(log_path), "--as-of", as_of, "--model", MODEL_URI,
                 "--tracking-uri", mlflow_store, "--out", str(out), "--chunk-customers", "400", *options]
    return CliRunner().invoke(main, arguments)


@pytest.fixture(scope="module")
def in_memory(trained, log_path, mlflow_store, tmp_path_factory):
    """Output folder and stdout of `rtt score` on the whole log, written as Parquet and as CSV."""
    folder = tmp_path_factory.mktemp("score-in-memory")
    outputs = {}
    for suffix in (".parquet", ".csv"):
        result = run_score(log_path, mlflow_store, folder / f"scores{suffix}")
        assert result.exit_code == 0, result.output
        outputs[suffix] = result.stdout
    return folder, outputs


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--partitions", "1"], id="one-partition"),
        pytest.param(["--partitions", "3"], id="three-partitions"),
        pytest.param(["--memory-budget-mb", str(SMALL_BUDGET_MB)], id="small-budget"),
    ],
)
def test_partitions_equal_in_memory_parquet(in_memory, log_path, mlflow_store, tmp_path, options):
    folder, outputs = in_memory
    result = run_score(log_path, mlflow_store, tmp_path / "scores.parquet", *options)
    assert result.exit_code == 0, result.output

    expected = pd.read_parquet(folder / "scores.parquet")
    got = pd.read_parquet(tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert expected.attrs["as_of"] == AS_OF
    assert got.attrs["as_of"] == AS_OF
    expected_rejects = pd.read_parquet(folder / "scores.rejects.parquet")
    got_rejects = pd.read_parquet(tmp_path / "scores.rejects.parquet")
    pd.testing.assert_frame_equal(got_rejects, expected_rejects, check_exact=True)

    # The printed report sums the partitions, so the output equals the in-memory one
    # once the output folder is replaced.
    expected_lines = [line.replace(str(folder), str(tmp_path)) for line in outputs[".parquet"].splitlines()]
    assert result.stdout.splitlines() == expected_lines


def test_partitions_equal_in_memory_csv_bytes(in_memory, log_path, mlflow_store, tmp_path):
    folder, _ = in_memory
    result = run_score(log_path, mlflow_store, tmp_path / "scores.csv", "--partitions", "4")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scores.csv").read_bytes() == (folder / "scores.csv").read_bytes()
    assert (tmp_path / "scores.rejects.csv").read_bytes() == (folder / "scores.rejects.csv").read_bytes()


def test_cutoff_after_log_noted_alike(trained, log_path, mlflow_store, tmp_path):
    # The log ends on 2023-12-31 (the Z-late row is earlier), so this cut-off adds a note to the report.
    in_memory_result = run_score(log_path, mlflow_store, tmp_path / "whole.csv", as_of="2024-03-31")
    chunked_result = run_score(log_path, mlflow_store, tmp_path / "parts.csv", "--partitions", "3", as_of="2024-03-31")
    assert in_memory_result.exit_code == 0, in_memory_result.output
    assert chunked_result.exit_code == 0, chunked_result.output
    assert "note: the cut-off 2024-03-31 is 91 days after the last row (2023-12-31)" in in_memory_result.stdout
    assert chunked_result.stdout == in_memory_result.stdout.replace("whole", "parts")
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "parts.rejects.csv").read_bytes() == (tmp_path / "whole.rejects.csv").read_bytes()


def test_small_budget_splits_log(log_path):
    n_rows = len(pd.read_parquet(log_path))
    assert plan_partitions(n_rows, SMALL_BUDGET_MB) >= 3


def test_rejects_name_both_reasons(in_memory):
    folder, _ = in_memory
    reasons = pd.read_parquet(folder / "scores.rejects.parquet")["reason"]
    assert reasons["Z-refund"].startswith("no purchase occasion by the as-of date")
    assert reasons["Z-late"] == "first transaction after the as-of date"


def test_output_lists_every_customer(in_memory, log_path):
    folder, _ = in_memory
    scores = pd.read_parquet(folder / "scores.parquet")
    customers = pd.read_parquet(log_path, columns=["customer_id"])["customer_id"]
    assert scores.index.is_unique
    assert scores.index.is_monotonic_increasing
    assert set(scores.index) == set(customers)


def test_library_equals_whole_log_scores(trained, log_path):
    # The fitted model in memory, without MLflow, scores each partition.
    log = load_transactions(log_path)
    whole_report = log.report.copy()
    features = build_features(log, AS_OF, report=whole_report)
    expected_rejects = unscorable_customers(log, AS_OF, features.index, occasion_rule="positive")
    expected = batch_score_table(score_features(trained.model, features, [30, 90], AS_OF), expected_rejects, [30, 90])

    def predict(chunk, as_of_day):
        return score_features(trained.model, chunk, [30, 90], as_of_day).reset_index()

    report = DataQualityReport()
    result = score_log_in_partitions(predict, log_path, AS_OF, horizons=[30, 90], n_partitions=5, report=report)
    pd.testing.assert_frame_equal(result.table, expected, check_exact=True)
    pd.testing.assert_frame_equal(result.rejected, expected_rejects, check_exact=True)
    assert result.as_of == AS_OF
    assert result.n_scored == len(features)
    assert result.n_partitions == 5
    assert result.first_timestamp == log.frame["timestamp"].min()
    assert result.last_timestamp == log.frame["timestamp"].max()
    assert report.rows_read == whole_report.rows_read
    assert report.repairs == whole_report.repairs
    assert report.notes == whole_report.notes


def test_failing_partition_leaves_no_files(trained, log_path, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    calls = []

    def predict(chunk, as_of_day):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise RuntimeError("model server went away")
        return score_features(trained.model, chunk, [30, 90], as_of_day).reset_index()

    with pytest.raises(RuntimeError, match="model server went away"):
        score_log_in_partitions(predict, log_path, AS_OF, horizons=[30, 90], n_partitions=4, temp_dir=spill)
    assert len(calls) == 2
    assert list(spill.iterdir()) == []


def test_no_occasion_before_cutoff_exit_2_no_output(trained, log_path, mlflow_store, tmp_path):
    out = tmp_path / "scores.parquet"
    arguments = ["score", "--transactions", str(log_path), "--as-of", "2000-01-31", "--model", MODEL_URI,
                 "--tracking-uri", mlflow_store, "--out", str(out), "--partitions", "3"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no customer has a purchase occasion on or before the cut-off 2000-01-31")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", [["--partitions", "3"], ["--memory-budget-mb", "64"]], ids=["partitions", "budget"])
def test_csv_log_with_partition_options_exit_2(tmp_path, option):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,1\na,2023-01-08,2\n")
    arguments = ["score", "--transactions", str(source), "--as-of", AS_OF, "--model", MODEL_URI,
                 "--out", str(tmp_path / "scores.parquet"), *option]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: --memory-budget-mb and --partitions read a Parquet log")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [source]
