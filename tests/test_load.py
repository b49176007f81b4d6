"""Loading and validation: formats, column mapping, dates, time zones, repairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import ColumnMap, DataQualityReport, TransactionLogError, load_transactions
from rtt_models.features import build_features


def test_csv_with_column_mapping_and_passthrough(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("Cust,When,Value,Region\n007,2023-01-02,10.5,north\n007,2023-01-09,4,north\n")
    log = load_transactions(path, columns={"customer_id": "Cust", "timestamp": "When", "amount": "Value",
                                           "passthrough": ["Region"]})
    assert log.frame["customer_id"].tolist() == ["007", "007"]
    assert log.frame["amount"].tolist() == [10.5, 4.0]
    assert log.frame["Region"].tolist() == ["north", "north"]
    assert log.passthrough == ("Region",)


def test_parquet_round_trip_equals_dataframe(tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2023-01-01", "2023-01-03"]),
                          "amount": [1.0, 2.0]})
    frame.to_parquet(tmp_path / "log.parquet")
    from_file = load_transactions(tmp_path / "log.parquet").frame
    pd.testing.assert_frame_equal(from_file, load_transactions(frame).frame)


def test_missing_column_names_it_and_the_fix():
    frame = pd.DataFrame({"customer_id": ["a"], "day": ["2023-01-01"]})
    with pytest.raises(TransactionLogError, match=r"missing timestamp column 'date'.*--timestamp-col"):
        load_transactions(frame)


def test_unknown_mapping_key_rejected():
    with pytest.raises(TransactionLogError, match=r"unknown column mapping keys \['customer'\]"):
        ColumnMap.from_mapping({"customer": "id"})


def test_explicit_date_format_month_first():
    frame = pd.DataFrame({"customer_id": ["Z"] * 3, "date": ["11/20/2023", "12/05/2023", "01/15/2024"]})
    log = load_transactions(frame, date_format="%m/%d/%Y")
    assert log.frame["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2023-11-20", "2023-12-05", "2024-01-15"]


def test_ambiguous_day_month_dates_raise():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "date": ["04/05/2023", "06/05/2023"]})
    with pytest.raises(TransactionLogError, match=r"ambiguous.*'%d/%m/%Y' for day-first or '%m/%d/%Y'"):
        load_transactions(frame)


def test_day_first_inferred_only_from_proof():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "date": ["04/05/2023", "13/05/2023"]})
    log = load_transactions(frame)
    assert log.frame["timestamp"].dt.strftime("%Y-%m-%d").tolist() == ["2023-05-04", "2023-05-13"]
    assert any("'%d/%m/%Y'" in note for note in log.report.notes)


def test_mixed_day_and_month_first_raise():
    frame = pd.DataFrame({"customer_id": ["a", "a"], "date": ["13/05/2023", "05/14/2023"]})
    with pytest.raises(TransactionLogError, match="mixes day-first dates"):
        load_transactions(frame)


def test_unparsable_date_names_line_and_value(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date\na,2023-01-01\nb,2023-02-30\nc,yesterday\n")
    with pytest.raises(TransactionLogError, match=r"column 'date'.*line 4: 'yesterday'"):
        load_transactions(path)


def test_wrong_explicit_format_lists_rows(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,date\na,2023-01-01\nb,2023/01/02\n")
    with pytest.raises(TransactionLogError, match=r"do not match the date format '%Y-%m-%d' in 1 rows \(line 3"):
        load_transactions(path, date_format="%Y-%m-%d")


def test_dates_compared_as_dates_not_strings():
    # As strings "2023-10-01" < "2023-9-30"; as dates it is the later day.
    frame = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2023-9-30", "2023-10-01"], "amount": [5.0, 5.0]})
    features = build_features(frame)
    assert features.attrs["as_of"] == "2023-10-01"
    assert features.loc["a", "recency_days"] == 1.0


def test_non_numeric_amount_names_rows():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "date": ["2023-01-01", "2023-01-02"], "amount": ["3.5", "n/a"]})
    with pytest.raises(TransactionLogError, match=r"column 'amount' must hold finite numbers.*row 1: 'n/a'"):
        load_transactions(frame)


def test_integer_dates_need_a_format():
    frame = pd.DataFrame({"customer_id": ["a"], "date": [20230101]})
    with pytest.raises(TransactionLogError, match=r"date_format='%Y%m%d'"):
        load_transactions(frame)


def test_rows_without_customer_id_dropped_and_counted():
    frame = pd.DataFrame({"customer_id": ["a", None, " "], "date": ["2023-01-01", "bad date", "2023-01-02"],
                          "amount": [1.0, 2.0, 3.0]})
    log = load_transactions(frame)
    assert log.frame["customer_id"].tolist() == ["a"]
    assert log.report.repairs["rows_without_customer_id"] == 2


def test_exact_duplicates_dropped_and_counted():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a"], "date": ["2023-01-01"] * 3, "amount": [5.0, 5.0, 6.0]})
    log = load_transactions(frame)
    assert log.report.repairs["duplicate_rows"] == 1
    assert log.frame["amount"].tolist() == [5.0, 6.0]
    kept = load_transactions(frame, drop_duplicates=False)
    assert len(kept.frame) == 3


def test_time_zones_convert_before_days_form():
    # 23:30 in New York on 1 March is 04:30 UTC on 2 March.
    frame = pd.DataFrame({"customer_id": ["a", "a"],
                          "timestamp": ["2023-03-01T23:30:00-05:00", "2023-03-02T01:00:00-05:00"],
                          "amount": [1.0, 1.0]})
    in_new_york = build_features(load_transactions(frame, timezone="America/New_York"), occasion_rule="all")
    in_utc = build_features(load_transactions(frame, timezone="UTC"), occasion_rule="all")
    assert in_new_york.loc["a", "n_occasions"] == 2
    assert in_utc.loc["a", "n_occasions"] == 1


def test_tz_aware_column_converted_and_naive_kept():
    aware = pd.Series(pd.to_datetime(["2023-01-01 02:00"]).tz_localize("UTC"))
    frame = pd.DataFrame({"customer_id": ["a"], "timestamp": aware})
    log = load_transactions(frame, timezone="America/Los_Angeles")
    assert log.frame["timestamp"].iloc[0] == pd.Timestamp("2022-12-31 18:00")
    naive = pd.DataFrame({"customer_id": ["a"], "timestamp": pd.to_datetime(["2023-01-01 02:00"])})
    assert load_transactions(naive, timezone="Asia/Tokyo").frame["timestamp"].iloc[0] == pd.Timestamp("2023-01-01 02:00")


def test_unknown_time_zone_rejected():
    frame = pd.DataFrame({"customer_id": ["a"], "date": ["2023-01-01"]})
    with pytest.raises(TransactionLogError, match="unknown time zone 'Mars/Olympus'"):
        load_transactions(frame, timezone="Mars/Olympus")


def test_unknown_extension_asks_for_format(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("x")
    with pytest.raises(TransactionLogError, match=r"pass format \(--format\)"):
        load_transactions(path)


@pytest.mark.parametrize("header", [True, False], ids=["with-header", "without-header"])
def test_cdnow_master_reader(tmp_path, header):
    lines = [" 00001 19970101  1   11.77", " 00002 19970112  2   12.00", " 00002 19970112  1    5.00"]
    text = ("customer_id  date number_of_cds  dollar_value\n" if header else "") + "\n".join(lines) + "\n"
    path = tmp_path / "cdnow.txt"
    path.write_text(text)
    log = load_transactions(path, format="cdnow")
    assert log.frame["customer_id"].tolist() == ["00001", "00002", "00002"]
    assert log.frame["quantity"].tolist() == [1.0, 2.0, 1.0]
    features = build_features(log, as_of="1997-01-31")
    assert features.loc["00002", "spend_total"] == pytest.approx(17.0)
    assert features.loc["00002", "quantity_mean"] == 3.0


def test_cdnow_sample_reader_skips_sample_id(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n")
    log = load_transactions(path, format="cdnow_sample")
    assert log.frame["customer_id"].tolist() == ["00004", "00004"]
    assert log.frame["timestamp"].dt.day.tolist() == [1, 18]


def test_cdnow_reader_rejects_wrong_variant(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text(" 00004 0001 19970101  2   29.33\n")
    with pytest.raises(TransactionLogError, match="use format cdnow_sample"):
        load_transactions(path, format="cdnow")


def test_report_lists_every_counted_repair():
    report = DataQualityReport(rows_read=10)
    report.add("duplicate_rows", 2)
    report.add("rows_after_cutoff", 3)
    table = report.to_frame()
    assert table["repair"].tolist() == ["rows_read", "duplicate_rows", "rows_after_cutoff"]
    assert table["count"].tolist() == [10, 2, 3]
    assert "2  exact duplicate rows dropped" in str(report)
    with pytest.raises(KeyError, match="unknown repair"):
        report.add("made_up", 1)


def test_numpy_ids_kept_as_given():
    frame = pd.DataFrame({"customer_id": np.array([3, 1, 2]), "date": ["2023-01-01"] * 3})
    features = build_features(frame)
    assert features.index.tolist() == [1, 2, 3]


def test_mixed_id_types_rejected():
    frame = pd.DataFrame({"customer_id": pd.Series([1, "a"], dtype=object), "date": ["2023-01-01", "2023-01-02"]})
    with pytest.raises(TransactionLogError, match=r"customer ids mix the types \['int', 'str'\]"):
        load_transactions(frame)


def test_duplicates_found_when_not_adjacent():
    # The two equal rows of "a" are separated by another row of the same day and by other customers.
    frame = pd.DataFrame({
        "customer_id": ["a", "b", "a", "a", "b", "a"],
        "timestamp": pd.to_datetime(["2023-01-01 10:00", "2023-01-01 10:00", "2023-01-01 12:00",
                                     "2023-01-01 10:00", "2023-01-01 10:00", "2023-01-02 10:00"]),
        "amount": [5.0, 5.0, 5.0, 5.0, 7.0, 5.0],
    })
    log = load_transactions(frame)
    assert log.report.repairs["duplicate_rows"] == 1
    assert log.frame.index.tolist() == [0, 1, 2, 3, 4]
    assert log.frame["amount"].tolist() == [5.0, 5.0, 5.0, 7.0, 5.0]
    assert log.frame["timestamp"].dt.hour.tolist() == [10, 10, 12, 10, 10]


def test_duplicates_compare_passthrough_values():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a"], "date": ["2023-01-01"] * 3, "amount": [5.0] * 3,
                          "channel": ["web", "shop", "web"]})
    log = load_transactions(frame, columns={"passthrough": ["channel"]})
    assert log.report.repairs["duplicate_rows"] == 1
    assert log.frame["channel"].tolist() == ["web", "shop"]


def test_cached_order_equals_fresh_sort():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "customer_id": rng.choice(["k", "m", "p", "q"], 200),
        "timestamp": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 90 * 24, 200), unit="h"),
        "amount": rng.choice([-5.0, 10.0, 20.0], 200),
    })
    frame = pd.concat([frame, frame.iloc[:20]], ignore_index=True)
    log = load_transactions(frame)
    codes, _ = log.customer_codes()
    days = log.frame["timestamp"].to_numpy().astype("datetime64[D]").astype(np.int64)
    expected = np.lexsort((np.arange(len(codes)), days, codes))
    np.testing.assert_array_equal(log.customer_day_order(), expected)
    fresh = log.with_frame(log.frame)
    np.testing.assert_array_equal(fresh.customer_day_order(), expected)


def test_loaded_frame_does_not_share_caller_memory():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2023-01-01", "2023-01-02"]),
                          "amount": [1.0, 2.0]})
    log = load_transactions(frame)
    frame.loc[0, "customer_id"] = "z"
    frame.loc[0, "amount"] = 99.0
    assert log.frame["customer_id"].tolist() == ["a", "b"]
    assert log.frame["amount"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "high",
    [pytest.param(1, id="one-key"), pytest.param(2**16, id="16-bit"), pytest.param(2**31, id="32-bit"),
     pytest.param(2**40, id="int64")],
)
@pytest.mark.parametrize("n_parts", [1, 7])
def test_stable_argsort_equals_numpy_stable(high, n_parts):
    from rtt_models.data.codes import stable_argsort

    keys = np.random.default_rng(0).integers(0, high, 50_000).astype(np.int64)
    np.testing.assert_array_equal(stable_argsort(keys, n_parts), np.argsort(keys, kind="stable"))


def test_blank_ids_found_by_python_rules():
    from rtt_models.data.codes import find_blank_ids

    uniques = np.array(["", " ", "\t\n", "\u2003", "\x1c", "a", " a", "_", "0"], dtype=object)
    expected = [True, True, True, True, True, False, False, False, False]
    assert find_blank_ids(uniques).tolist() == expected
    mixed = np.array(["", 3, " "], dtype=object)
    assert find_blank_ids(mixed).tolist() == [True, False, True]


def test_drop_from_order_renumbers_kept_rows():
    from rtt_models.data.codes import drop_from_order

    order = np.array([4, 0, 3, 1, 2])
    keep = np.array([True, False, True, True, False])
    # Kept rows 0, 2, 3 become 0, 1, 2, and their relative order (0, 3, 2) stays.
    assert drop_from_order(order, keep).tolist() == [0, 2, 1]


def test_few_bad_dates_ask_to_fix_rows(tmp_path):
    path = tmp_path / "log.csv"
    rows = [f"C{i},2023-01-{i + 1:02d},5" for i in range(9)] + ["C9,not a date,5"]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    with pytest.raises(TransactionLogError, match=r"ISO dates except in 1 rows \(line 11: 'not a date'\); fix or remove"):
        load_transactions(path)
    with pytest.raises(TransactionLogError, match=r"most rows match it, so fix or remove those rows"):
        load_transactions(path, date_format="%Y-%m-%d")


def test_empty_parquet_names_the_file(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"")
    with pytest.raises(TransactionLogError, match=r"cannot read '.*log\.parquet' as Parquet: .*write the file again"):
        load_transactions(path)


def test_comma_file_with_other_separator(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("customer_id,timestamp,amount\nA,2023-01-02,5\n")
    with pytest.raises(TransactionLogError, match=r"looks separated by ','; pass separator=','"):
        load_transactions(path, separator=";")
