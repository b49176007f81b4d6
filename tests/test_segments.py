"""Segment report: repeat-purchase timing by segment and cohort, hand-computed on a small log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import load_transactions
from rtt_models.ranking import plot_segment_report, segment_report

CUTOFFS = ["2023-04-30", "2023-03-31"]


def small_log() -> pd.DataFrame:
    """p: gaps 10 and 10; q: one gap of 60; r: one purchase; s: gap of 4, first bought in April."""
    rows = [
        ("p", "2023-01-01", "gold"), ("p", "2023-01-11", "gold"), ("p", "2023-01-21", "gold"),
        ("q", "2023-01-05", "gold"), ("q", "2023-03-06", "gold"),
        ("r", "2023-02-10", "basic"),
        ("s", "2023-04-01", "basic"), ("s", "2023-04-05", "basic"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "segment"])
    frame["amount"] = 10.0
    return frame


def row(report: pd.DataFrame, as_of: str, by: str, group: str) -> pd.Series:
    match = report[(report["as_of"] == pd.Timestamp(as_of)) & (report["by"] == by) & (report["group"] == group)]
    assert len(match) == 1
    return match.iloc[0]


def test_segments_hand_computed():
    report = segment_report(small_log(), CUTOFFS, "segment")

    # 31 March: p is 69 days past a 10-day gap (overdue), q 25 days into a 60-day gap.
    gold = row(report, "2023-03-31", "segment", "gold")
    assert gold["customers"] == 2
    assert gold["repeat_customers"] == 2
    assert gold["median_gap_days"] == 35.0
    assert gold["share_overdue"] == 0.5
    assert np.isnan(gold["median_gap_change_days"])
    basic = row(report, "2023-03-31", "segment", "basic")
    assert basic["customers"] == 1
    assert basic["repeat_customers"] == 0
    assert np.isnan(basic["median_gap_days"])
    assert np.isnan(basic["share_overdue"])

    # 30 April: s joins basic, 25 days past a 4-day gap.
    basic = row(report, "2023-04-30", "segment", "basic")
    assert basic["customers"] == 2
    assert basic["repeat_customers"] == 1
    assert basic["median_gap_days"] == 4.0
    assert basic["share_overdue"] == 1.0
    gold = row(report, "2023-04-30", "segment", "gold")
    assert gold["median_gap_change_days"] == 0.0
    assert gold["share_overdue_change"] == 0.0


def test_quarter_cohorts():
    report = segment_report(small_log(), CUTOFFS)
    assert set(report["by"]) == {"cohort"}
    first_quarter = row(report, "2023-04-30", "cohort", "2023Q1")
    assert first_quarter["customers"] == 3
    assert first_quarter["median_gap_days"] == 35.0
    second_quarter = row(report, "2023-04-30", "cohort", "2023Q2")
    assert second_quarter["customers"] == 1
    assert second_quarter["share_overdue"] == 1.0
    assert len(report[report["group"] == "2023Q2"]) == 1


def test_month_cohorts():
    report = segment_report(small_log(), ["2023-04-30"], cohort="month")
    assert report["group"].tolist() == ["2023-01", "2023-02", "2023-04"]
    assert report["customers"].tolist() == [2, 1, 1]


def test_overdue_factor_changes_share():
    # With a factor of 7, p (69 days past a 10-day gap) is still overdue; s (25 past 4) is not, 25 < 28.
    report = segment_report(small_log(), ["2023-04-30"], "segment", overdue_factor=7.0)
    assert row(report, "2023-04-30", "segment", "basic")["share_overdue"] == 0.0
    assert row(report, "2023-04-30", "segment", "gold")["share_overdue"] == 0.5


def test_report_sorted_and_columns():
    report = segment_report(small_log(), CUTOFFS, "segment")
    assert list(report.columns) == ["as_of", "by", "group", "customers", "repeat_customers", "median_gap_days",
                                    "share_overdue", "median_gap_change_days", "share_overdue_change"]
    keys = list(zip(report["by"], report["group"], report["as_of"], strict=True))
    assert keys == sorted(keys)


def test_transaction_log_needs_segment_passthrough():
    log = load_transactions(small_log())
    with pytest.raises(ValueError, match=r"does not carry the segment column 'segment'.*passthrough"):
        segment_report(log, CUTOFFS, "segment")
    carried = load_transactions(small_log(), columns={"passthrough": ["segment"]})
    assert len(segment_report(carried, CUTOFFS, "segment")) == 7  # cohorts 1 + 2, segments 2 + 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(dict(cohort="week"), "cohort must be one of month, quarter, got 'week'", id="cohort"),
        pytest.param(dict(overdue_factor=0), "overdue_factor must be a positive multiple", id="factor"),
        pytest.param(dict(cutoffs=[]), "cutoffs is empty", id="no-cutoffs"),
    ],
)
def test_invalid_settings_rejected(settings, message):
    arguments = dict(cutoffs=CUTOFFS) | settings
    with pytest.raises(ValueError, match=message):
        segment_report(small_log(), arguments.pop("cutoffs"), **arguments)


def test_plot_writes_png(tmp_path):
    report = segment_report(small_log(), CUTOFFS, "segment")
    path = tmp_path / "segments.png"
    figure = plot_segment_report(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(figure.axes) >= 4
    assert figure.axes[0].get_title() == "by segment"
    assert {line.get_label() for line in figure.axes[1].get_lines()} == {"basic", "gold"}


def test_plot_rejects_empty_report():
    with pytest.raises(ValueError, match="no rows to plot"):
        plot_segment_report(segment_report(small_log(), CUTOFFS).iloc[0:0])
