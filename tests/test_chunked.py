"""Chunked features of Parquet logs: equal to the in-memory path, sized by the budget, no temporary files left."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import DataQualityReport, TransactionLogError, load_transactions, simulate_transactions
from rtt_models.features import build_features
from rtt_models.features.chunked import (
    BYTES_PER_EXTRA_COLUMN,
    BYTES_PER_ROW,
    build_features_chunked,
    iter_feature_partitions,
    plan_partitions,
)

PASSTHROUGH = {"passthrough": ["segment", "channel"]}


@pytest.fixture(scope="module")
def simulated_parquet(tmp_path_factory):
    """3,000 simulated customers (with split rows, refunds and duplicates) as one Parquet file."""
    frame = simulate_transactions(3000, seed=11).transactions
    path = tmp_path_factory.mktemp("chunked") / "log.parquet"
    frame.to_parquet(path, index=False, row_group_size=5_000)
    return path


def in_memory(source, as_of=None, **load_options):
    """Features and report of the ordinary path, loading the whole log."""
    log = load_transactions(source, **load_options)
    report = log.report.copy()
    return build_features(log, as_of, report=report), report


def assert_same_report(expected: DataQualityReport, got: DataQualityReport) -> None:
    assert got.rows_read == expected.rows_read
    assert got.repairs == expected.repairs
    assert got.notes == expected.notes


@pytest.mark.parametrize("as_of", [None, "2023-06-30"], ids=["default-cutoff", "mid-window"])
@pytest.mark.parametrize("n_partitions", [1, 3, 7])
def test_chunked_equals_in_memory(simulated_parquet, as_of, n_partitions, tmp_path):
    expected, expected_report = in_memory(simulated_parquet, as_of, columns=PASSTHROUGH)
    report = DataQualityReport()
    got = build_features_chunked(
        simulated_parquet, as_of, n_partitions=n_partitions, columns=PASSTHROUGH, report=report, temp_dir=tmp_path
    )
    pd.testing.assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs
    assert_same_report(expected_report, report)


def test_default_cutoff_is_last_day_of_whole_log(simulated_parquet):
    last_day = pd.read_parquet(simulated_parquet)["timestamp"].max().normalize()
    for features, _ in iter_feature_partitions(simulated_parquet, n_partitions=5):
        assert features.attrs["as_of"] == last_day.date().isoformat()


def test_log_has_refunds_and_duplicates(simulated_parquet):
    _, report = in_memory(simulated_parquet)
    assert report.repairs["refund_rows_netted"] > 0
    assert report.repairs["duplicate_rows"] > 0
    assert report.repairs["days_excluded"] > 0


def test_directory_of_files_equals_one_log(simulated_parquet, tmp_path):
    frame = pd.read_parquet(simulated_parquet)
    folder = tmp_path / "log"
    folder.mkdir()
    shuffled = frame.sample(frac=1.0, random_state=3)
    third = len(shuffled) // 3
    for number, start in enumerate((0, third, 2 * third)):
        end = start + third if number < 2 else len(shuffled)
        shuffled.iloc[start:end].to_parquet(folder / f"part-{number}.parquet", index=False)
    expected, _ = in_memory(simulated_parquet, "2023-09-30")
    got = build_features_chunked(folder, "2023-09-30", n_partitions=4)
    pd.testing.assert_frame_equal(got, expected)


def test_missing_ids_blank_ids_and_duplicates_counted(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", None, "  ", "b", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                ["2023-01-01", "2023-01-01", None, "2023-02-01", "2023-01-05", "2023-01-20", "2023-01-20",
                 "2023-03-01"]
            ),
            "amount": [10.0, 10.0, 5.0, 5.0, 8.0, 9.0, -9.0, 4.0],
        }
    )
    path = tmp_path / "small.parquet"
    frame.to_parquet(path, index=False)
    expected, expected_report = in_memory(path)
    report = DataQualityReport()
    got = build_features_chunked(path, n_partitions=3, report=report)
    pd.testing.assert_frame_equal(got, expected)
    assert report.repairs["rows_without_customer_id"] == 2
    assert report.repairs["duplicate_rows"] == 1
    assert_same_report(expected_report, report)


def test_empty_log(tmp_path):
    path = tmp_path / "empty.parquet"
    empty = pd.DataFrame({"customer_id": pd.Series([], dtype=object), "timestamp": pd.Series([], dtype="datetime64[ns]"),
                          "amount": pd.Series([], dtype=float)})
    empty.to_parquet(path, index=False)
    with pytest.raises(TransactionLogError, match="the transaction log is empty"):
        build_features_chunked(path, n_partitions=2)
    expected, _ = in_memory(path, "2023-01-31")
    got = build_features_chunked(path, "2023-01-31", n_partitions=2)
    assert got.empty
    assert list(got.columns) == list(expected.columns)
    assert got.attrs == {"as_of": "2023-01-31"}


def test_time_zone_aware_timestamps(simulated_parquet, tmp_path):
    frame = pd.read_parquet(simulated_parquet)
    frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC")
    path = tmp_path / "utc.parquet"
    frame.to_parquet(path, index=False)
    expected, _ = in_memory(path, timezone="Asia/Tokyo")
    got = build_features_chunked(path, n_partitions=3, timezone="Asia/Tokyo")
    pd.testing.assert_frame_equal(got, expected)


def test_text_timestamps_and_mapped_columns(simulated_parquet, tmp_path):
    frame = pd.read_parquet(simulated_parquet)
    frame = frame.rename(columns={"customer_id": "cust", "timestamp": "when", "amount": "value"})
    frame["when"] = frame["when"].dt.strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "text.parquet"
    frame.to_parquet(path, index=False)
    columns = {"customer_id": "cust", "timestamp": "when", "amount": "value"}
    expected, _ = in_memory(path, columns=columns)
    got = build_features_chunked(path, n_partitions=2, columns=columns)
    pd.testing.assert_frame_equal(got, expected)


def test_partitions_hold_disjoint_customers(simulated_parquet):
    expected, _ = in_memory(simulated_parquet)
    parts = list(iter_feature_partitions(simulated_parquet, n_partitions=4))
    assert len(parts) == 4
    ids = [features.index for features, _ in parts]
    assert sum(len(index) for index in ids) == len(expected)
    assert pd.Index(np.concatenate(ids)).sort_values().equals(expected.index)
    assert sum(report.rows_read for _, report in parts) == pq.ParquetFile(simulated_parquet).metadata.num_rows


@pytest.mark.parametrize(
    ("rows", "budget_mb", "extra", "expected"),
    [
        pytest.param(1_000_000, 100, 0, 4, id="320B-rows"),
        pytest.param(1_000_000, 100, 2, 5, id="520B-rows"),
        pytest.param(1_000, 100, 0, 1, id="small-log"),
        pytest.param(10_000_000, 1024, 0, 3, id="ten-million"),
    ],
)
def test_plan_partitions_hand_computed(rows, budget_mb, extra, expected):
    # ceil(1e6 * 320 / (100 * 2**20)) = ceil(3.05) = 4; with 520 bytes ceil(4.96) = 5.
    assert plan_partitions(rows, budget_mb, extra) == expected


def test_partition_count_follows_budget(simulated_parquet):
    rows = pq.ParquetFile(simulated_parquet).metadata.num_rows
    budget_mb = 2.0
    bytes_per_row = BYTES_PER_ROW + 2 * BYTES_PER_EXTRA_COLUMN
    expected = math.ceil(rows * bytes_per_row / (budget_mb * 2**20))
    parts = list(iter_feature_partitions(simulated_parquet, memory_budget_mb=budget_mb, columns=PASSTHROUGH))
    assert expected > 1
    assert len(parts) == expected
    smaller = list(iter_feature_partitions(simulated_parquet, memory_budget_mb=budget_mb / 2, columns=PASSTHROUGH))
    assert len(smaller) >= 2 * expected - 1


def test_temporary_files_removed_after_success(simulated_parquet, tmp_path):
    build_features_chunked(simulated_parquet, n_partitions=3, temp_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_temporary_files_removed_after_failure(tmp_path):
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(50)], "timestamp": pd.Timestamp("2023-01-01"),
         "amount": ["1.5"] * 49 + ["twelve"]}
    )
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(TransactionLogError, match="column 'amount' must hold finite numbers"):
        build_features_chunked(path, n_partitions=4, temp_dir=spill)
    assert list(spill.iterdir()) == []


def test_temporary_files_removed_when_iteration_stops_early(simulated_parquet, tmp_path):
    parts = iter_feature_partitions(simulated_parquet, n_partitions=3, temp_dir=tmp_path)
    next(parts)
    assert len(list(tmp_path.iterdir())) == 1
    parts.close()
    assert list(tmp_path.iterdir()) == []


def test_conflicting_date_formats_across_files(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    pd.DataFrame({"customer_id": ["a", "a"], "date": ["25/01/2023", "03/02/2023"]}).to_parquet(folder / "1.parquet")
    pd.DataFrame({"customer_id": ["b", "b"], "date": ["01/25/2023", "02/03/2023"]}).to_parquet(folder / "2.parquet")
    with pytest.raises(TransactionLogError, match="infer different date formats"):
        build_features_chunked(folder, n_partitions=2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"n_partitions": 0}, "n_partitions must be from 1 to 4096, got 0", id="zero-partitions"),
        pytest.param({"n_partitions": 2.5}, "n_partitions must be a whole number", id="fractional-partitions"),
        pytest.param({"memory_budget_mb": -5}, "memory_budget_mb must be a positive number", id="negative-budget"),
        pytest.param({"memory_budget_mb": 1e-6}, "raise the memory budget", id="too-many-partitions"),
        pytest.param({"occasion_rule": "net"}, "unknown occasion_rule 'net'", id="occasion-rule"),
    ],
)
def test_invalid_settings_rejected(simulated_parquet, settings, message):
    with pytest.raises(ValueError, match=message):
        build_features_chunked(simulated_parquet, **settings)


def test_missing_source_and_columns(simulated_parquet, tmp_path):
    with pytest.raises(TransactionLogError, match="not found; check the path"):
        build_features_chunked(tmp_path / "absent.parquet")
    with pytest.raises(TransactionLogError, match="missing customer_id column 'cust'"):
        build_features_chunked(simulated_parquet, columns={"customer_id": "cust"})


def test_cli_partitions_equal_in_memory(simulated_parquet, tmp_path):
    runner = CliRunner()
    whole, chunked = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    base = ["features", "--transactions", str(simulated_parquet), "--as-of", "2023-10-31"]
    first = runner.invoke(main, [*base, "--out", str(whole)], catch_exceptions=False)
    second = runner.invoke(main, [*base, "--partitions", "3", "--out", str(chunked)], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    pd.testing.assert_frame_equal(pd.read_parquet(chunked), pd.read_parquet(whole))
    assert second.output.splitlines()[:-1] == first.output.splitlines()[:-1]


def test_cli_budget_needs_parquet(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text("customer_id,date,amount\na,2023-01-01,1\n")
    result = CliRunner().invoke(
        main, ["features", "--transactions", str(source), "--memory-budget-mb", "64", "--out", str(tmp_path / "f.csv")]
    )
    assert result.exit_code == 2
    assert "read a Parquet log" in result.output
