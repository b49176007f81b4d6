"""Export of intervention lists: formula injection, numeric cells, atomic and byte-stable files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rtt_models.ranking import export_table, neutralise_formulas


def campaign_like() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "tier": ["overdue", "at risk", "active"],
            "reason": ["no purchase for 48 days", "-5% since last year", "@mention"],
            "value_at_stake": [91.25, -12.5, np.nan],
            "contact_by_date": pd.to_datetime(["2023-07-01", "2023-08-13", None]),
            "segment": ["+44 calls", "frequent", None],
        },
        index=pd.Index(['=HYPERLINK("x")', "b", "c"], name="customer_id"),
    )
    return frame


def test_formula_customer_id_exported_inert(tmp_path):
    path = export_table(campaign_like(), tmp_path / "list.csv")
    lines = path.read_bytes().split(b"\n")
    assert lines[1].startswith(b"\"'=HYPERLINK(\"\"x\"\")\",1,overdue,")
    assert b",=HYPERLINK" not in path.read_bytes()
    assert not path.read_bytes().startswith(b"=")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("=1+1", "'=1+1", id="equals"),
        pytest.param("+44 calls", "'+44 calls", id="plus"),
        pytest.param("-5%", "'-5%", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\tcmd", "'\tcmd", id="tab"),
        pytest.param("\rcmd", "'\rcmd", id="carriage-return"),
        pytest.param("\0cmd", "'\0cmd", id="nul"),
        pytest.param("a=1", "a=1", id="equals-inside"),
        pytest.param("frequent", "frequent", id="plain"),
    ],
)
def test_text_cells_neutralised(text, expected):
    frame = pd.DataFrame({"note": [text], "amount": [-3.0]})
    safe = neutralise_formulas(frame)
    assert safe.loc[0, "note"] == expected
    assert safe.loc[0, "amount"] == -3.0


def test_negative_numbers_stay_numeric(tmp_path):
    path = export_table(campaign_like(), tmp_path / "list.csv")
    text = path.read_text()
    assert "b,2,at risk,'-5% since last year,-12.5,2023-08-13,frequent\n" in text
    back = pd.read_csv(path)
    assert back["value_at_stake"].dtype == float
    assert back.loc[1, "value_at_stake"] == -12.5


def test_text_that_looks_negative_is_neutralised(tmp_path):
    frame = pd.DataFrame({"customer_id": ["-12", "7"], "amount": [-12, 7]})
    path = export_table(frame, tmp_path / "list.csv", index=False)
    assert path.read_text() == "customer_id,amount\n'-12,-12\n7,7\n"


def test_header_cells_neutralised(tmp_path):
    frame = pd.DataFrame({"=cmd": [1], "segment": ["a"]})
    path = export_table(frame, tmp_path / "list.csv", index=False)
    assert path.read_text().splitlines()[0] == "'=cmd,segment"


def test_dates_and_missing_values_in_csv(tmp_path):
    path = export_table(campaign_like(), tmp_path / "list.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "customer_id,rank,tier,reason,value_at_stake,contact_by_date,segment"
    assert lines[1].endswith(",91.25,2023-07-01,'+44 calls")
    assert lines[3] == "c,3,active,'@mention,,,"


def test_timestamps_with_time_in_iso_format(tmp_path):
    frame = pd.DataFrame({"at": pd.to_datetime(["2023-07-01 08:30", "2023-07-02 00:00"])})
    path = export_table(frame, tmp_path / "list.csv", index=False)
    assert path.read_text() == "at\n2023-07-01T08:30:00\n2023-07-02T00:00:00\n"


def test_export_leaves_input_unchanged(tmp_path):
    frame = campaign_like()
    copy = frame.copy()
    export_table(frame, tmp_path / "list.csv")
    pd.testing.assert_frame_equal(frame, copy)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_inputs_same_bytes(tmp_path, suffix):
    first = export_table(campaign_like(), tmp_path / f"first{suffix}")
    second = export_table(campaign_like(), tmp_path / f"second{suffix}")
    assert first.read_bytes() == second.read_bytes()


def test_parquet_reads_back_equal(tmp_path):
    frame = campaign_like()
    path = export_table(frame, tmp_path / "list.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)
    assert back.index[0] == '=HYPERLINK("x")'


def test_csv_reads_back_equal_apart_from_prefix(tmp_path):
    frame = campaign_like()
    path = export_table(frame, tmp_path / "list.csv")
    back = pd.read_csv(path, index_col="customer_id", parse_dates=["contact_by_date"])
    assert back.index.tolist() == ["'=HYPERLINK(\"x\")", "b", "c"]
    pd.testing.assert_series_equal(back["value_at_stake"], frame["value_at_stake"].set_axis(back.index))
    pd.testing.assert_series_equal(back["contact_by_date"], frame["contact_by_date"].set_axis(back.index))


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "list.parquet"
    target.write_bytes(b"previous")
    unwritable = pd.DataFrame({"mixed": [1, "a"]})
    with pytest.raises(Exception, match="mixed"):
        export_table(unwritable, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["list.parquet"]


def test_bad_extension_rejected(tmp_path):
    with pytest.raises(ValueError, match="name the output file with .csv, .parquet or .pq"):
        export_table(campaign_like(), tmp_path / "list.xlsx")


def test_parquet_puts_customer_id_first(tmp_path):
    import pyarrow.parquet as pq

    from rtt_models.data.write import write_table

    frame = pd.DataFrame({"risk": [0.5, 0.25], "tier": ["high", "low"]}, index=pd.Index(["c1", "c2"], name="customer_id"))
    frame.attrs["as_of"] = "2023-06-30"
    for path in (write_table(frame, tmp_path / "table.parquet"), export_table(frame, tmp_path / "list.parquet")):
        assert pq.read_schema(path).names == ["customer_id", "risk", "tier"]
        read_back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(read_back, frame)
        assert read_back.attrs == {"as_of": "2023-06-30"}
