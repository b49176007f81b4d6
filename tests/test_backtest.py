"""Rolling-origin backtests and their plots on the built-in simulated log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.evaluation import backtest, summarize
from rtt_models.evaluation.backtest import actual_cumulative_occasions, check_cutoffs, check_history_before
from rtt_models.evaluation.plots import (
    plot_calibration,
    plot_gap_histogram,
    plot_lift,
    plot_survival_curves,
    plot_tracking,
    save_backtest_plots,
)
from rtt_models.features import build_episodes, split_calibration_holdout
from rtt_models.models import make_model

CUTOFFS = ["2023-06-30", "2023-09-30"]
MODELS = ("mean_gap", "kaplan_meier", "bg_nbd")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def simulated_log():
    simulated = simulate_transactions(3000, seed=4)
    return load_transactions(simulated.transactions, columns={"passthrough": ["segment", "channel"]})


@pytest.fixture(scope="module")
def result(simulated_log):
    calls = []
    outcome = backtest(
        simulated_log,
        {name: name for name in MODELS},
        CUTOFFS,
        horizons=(30, 90),
        progress=lambda model, cutoff: calls.append((model, cutoff)),
        score_baselines=True,
    )
    outcome.progress_calls = calls
    return outcome


def assert_png(path):
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


# -------------------------------------------------------------- tables


def test_default_window_runs_to_end_of_data(result, simulated_log):
    last_day = simulated_log.frame["timestamp"].max().normalize()
    assert result.window_days == (last_day - pd.Timestamp(CUTOFFS[-1])).days == 92
    assert result.horizons == [30, 90]


def test_per_cutoff_rows_and_metrics(result):
    fitted = result.per_cutoff[result.per_cutoff["model"].isin(MODELS)]
    assert len(fitted) == len(MODELS) * len(CUTOFFS)
    assert set(fitted["cutoff"]) == {pd.Timestamp(c) for c in CUTOFFS}
    assert (fitted["fit_seconds"] >= 0).all()
    metric_columns = ["c_index", "ibs", "auc_30d", "auc_90d", "brier_30d", "brier_90d", "ici_30d", "ici_90d",
                      "count_ratio", "count_mae", "precision_top10", "lift_top10", "n_customers", "base_rate_90d"]
    assert np.isfinite(fitted[metric_columns].to_numpy(dtype=float)).all()


def test_long_table_matches_wide(result):
    assert list(result.metrics.columns) == ["model", "cutoff", "metric", "value"]
    row = result.per_cutoff.query("model == 'bg_nbd'").iloc[-1]
    long = result.metrics.query("model == 'bg_nbd' and cutoff == @row.cutoff").set_index("metric")["value"]
    assert long["auc_30d"] == row["auc_30d"]
    assert long["c_index"] == row["c_index"]
    assert "fit_seconds" not in set(result.metrics["metric"])


def test_summary_shape_and_order(result):
    summary = result.summary
    assert set(summary.index) == {*MODELS, "days_since_last_purchase", "purchase_count"}
    assert (summary["n_cutoffs"] == 2).all()
    assert "c_index_std" in summary.columns
    assert summary["c_index"].is_monotonic_decreasing
    means = result.per_cutoff.groupby("model")["auc_90d"].mean()
    assert summary.loc["bg_nbd", "auc_90d"] == pytest.approx(means["bg_nbd"])


def test_baselines_have_rank_metrics_only(result):
    baseline = result.per_cutoff.query("model == 'days_since_last_purchase'")
    assert baseline["c_index"].between(0.5, 1).all()
    assert baseline["ibs"].isna().all()
    assert baseline["brier_30d"].isna().all()


def test_progress_called_per_model_and_cutoff(result):
    assert len(result.progress_calls) == len(MODELS) * len(CUTOFFS)
    assert result.progress_calls[0] == ("mean_gap", pd.Timestamp(CUTOFFS[0]))


def test_predictions_and_latest_models_kept(result):
    latest = pd.Timestamp(CUTOFFS[-1])
    assert set(result.predictions) == {(m, pd.Timestamp(c)) for m in MODELS for c in CUTOFFS}
    assert result.predictions[("bg_nbd", latest)].index.equals(result.truths[latest].index)
    assert set(result.latest_models) == set(MODELS)
    assert result.latest_split.as_of == latest


def test_tracking_ends_at_holdout_total(result):
    tracking = result.tracking
    assert tracking.index[-1] == result.window_days
    assert tracking["actual"].is_monotonic_increasing
    assert tracking["actual"].iloc[-1] == result.latest_split.truth["n_occasions_holdout"].sum()
    bg_nbd = result.predictions[("bg_nbd", result.latest_split.as_of)]
    assert tracking["bg_nbd"].iloc[-1] == pytest.approx(bg_nbd[f"expected_occasions_{result.window_days}d"].sum())


def test_actual_occasions_by_day_by_hand():
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c"],
            "timestamp": ["2023-01-01", "2023-01-03", "2023-01-05", "2023-01-02", "2023-01-04"],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    split = split_calibration_holdout(log, "2023-01-02", 3)
    # "c" is first seen after the cut-off, so only a's purchases count.
    counts = actual_cumulative_occasions(log, split, [1, 2, 3])
    assert counts.tolist() == [1.0, 1.0, 2.0]


# ------------------------------------------------------------- failures


def test_failing_model_is_recorded_not_raised(simulated_log):
    result = backtest(
        simulated_log,
        {"bad_prior": make_model("mean_gap", prior_gaps=-1.0), "bg_nbd": "bg_nbd"},
        CUTOFFS[-1:],
        horizons=(30,),
    )
    assert result.failures["model"].tolist() == ["bad_prior"]
    assert "prior_gaps" in result.failures["error"].iloc[0]
    assert result.per_cutoff["model"].tolist() == ["bg_nbd"]
    assert result.summary.index.tolist() == ["bg_nbd", "bad_prior"]
    assert result.summary.loc["bad_prior", "n_cutoffs"] == 0


def test_cutoff_without_full_window_raises(simulated_log):
    with pytest.raises(ValueError, match=r"cut-off 2023-12-01 has no full 92-day holdout window.*2023-12-31"):
        backtest(simulated_log, {"bg_nbd": "bg_nbd"}, ["2023-12-01"], window_days=92)


@pytest.mark.parametrize(
    ("cutoffs", "settings", "message"),
    [
        pytest.param(["2023-12-31"], {}, "leaves no day of data after it", id="latest-at-end"),
        pytest.param(["2023-06-30", "2023-06-30"], {}, r"\['2023-06-30'\] are given more than once", id="duplicate"),
        pytest.param(["2020-01-01"], {"window_days": 30}, "before the first day of the data", id="before-data"),
        pytest.param([], {}, "cutoffs is empty", id="empty"),
        pytest.param(["2023-06-30"], {"window_days": 0}, "window_days must be a whole number", id="zero-window"),
    ],
)
def test_bad_cutoffs_raise(simulated_log, cutoffs, settings, message):
    with pytest.raises(ValueError, match=message):
        backtest(simulated_log, {"bg_nbd": "bg_nbd"}, cutoffs, **settings)


def test_cutoff_before_data_message(simulated_log):
    # The log runs from 2022-01-01 to 2023-12-31, so a 30-day window fits cut-offs up to 2023-12-01.
    with pytest.raises(
        ValueError,
        match=r"^cutoffs 2020-01-01 comes before the first day of the data, 2022-01-01, .*; "
        r"pass cutoffs dates from 2022-01-01 to 2023-12-01 ",
    ):
        check_cutoffs(simulated_log, ["2020-01-01", "2023-06-30"], 30)


def test_cutoff_check_uses_given_names(simulated_log):
    with pytest.raises(ValueError, match=r"^--as-of 2021-12-31 comes before .* pass --as-of dates from 2022-01-01"):
        check_cutoffs(simulated_log, ["2021-12-31"], None, cutoffs_name="--as-of", window_name="--window-days")
    with pytest.raises(ValueError, match=r"or a shorter --window-days\.$"):
        check_cutoffs(simulated_log, ["2023-12-01"], 92, cutoffs_name="--as-of", window_name="--window-days")


def test_cutoff_check_returns_days(simulated_log):
    days, window = check_cutoffs(simulated_log, ["2023-09-30", "2023-06-30"], None)
    assert days == [pd.Timestamp("2023-06-30"), pd.Timestamp("2023-09-30")]
    assert window == 92


@pytest.mark.parametrize(
    ("as_of", "window_days", "earliest"),
    [
        pytest.param("2021-06-30", 90, "2022-04-01", id="before-data"),
        pytest.param("2022-03-31", 90, "2022-04-01", id="one-day-short"),
        pytest.param("2022-01-20", 30, "2022-01-31", id="short-window"),
    ],
)
def test_history_before_too_short(simulated_log, as_of, window_days, earliest):
    message = (
        rf"^--as-of {as_of} is too early: the internal validation needs {window_days} days of data before it, "
        rf"and the data start on 2022-01-01; pass --as-of {earliest} or later, or shorten --validation-days\.$"
    )
    with pytest.raises(ValueError, match=message):
        check_history_before(simulated_log, as_of, window_days, as_of_name="--as-of", window_name="--validation-days")


@pytest.mark.parametrize("as_of", ["2022-04-01", "2023-06-30", None])
def test_history_before_long_enough(simulated_log, as_of):
    assert check_history_before(simulated_log, as_of, 90) is None


def test_unknown_model_name_raises(simulated_log):
    with pytest.raises(ValueError, match="unknown model 'no_such_model'"):
        backtest(simulated_log, {"x": "no_such_model"}, CUTOFFS)


def test_summarize_sorts_by_c_index_then_ibs():
    per_cutoff = pd.DataFrame(
        {
            "model": ["a", "a", "b", "b", "c", "c"],
            "cutoff": [1, 2, 1, 2, 1, 2],
            "c_index": [0.7, 0.7, 0.8, 0.6, 0.75, 0.75],
            "ibs": [0.2, 0.2, 0.1, 0.1, 0.1, 0.2],
        }
    )
    summary = summarize(per_cutoff)
    # a and b tie on mean C-index 0.7; b has the lower IBS.
    assert summary.index.tolist() == ["c", "b", "a"]
    assert summary.loc["b", "c_index_std"] == pytest.approx(np.std([0.8, 0.6], ddof=1))


# ----------------------------------------------------------------- plots


def test_save_backtest_plots_writes_pngs(result, tmp_path):
    written = save_backtest_plots(result, tmp_path / "plots")
    names = sorted(path.name for path in written)
    assert names == sorted(["calibration_30d.png", "calibration_90d.png", "lift_30d.png", "lift_90d.png",
                            "tracking.png", "gap_histogram.png", "survival_curves.png"])
    for path in written:
        assert_png(path)


def test_each_plot_saves_png(result, simulated_log, tmp_path):
    split = result.latest_split
    latest = split.as_of
    predictions = {name: result.predictions[(name, latest)] for name in MODELS}
    survival = result.latest_models["bg_nbd"].predict_survival(split.features.iloc[:3], range(0, 31))
    episodes = build_episodes(simulated_log, latest)
    figures = {
        "calibration.png": plot_calibration(predictions, split.truth, 30, path=tmp_path / "calibration.png"),
        "lift.png": plot_lift(predictions, split.truth, 90, path=tmp_path / "lift.png"),
        "tracking.png": plot_tracking(result.tracking, path=tmp_path / "tracking.png"),
        "episodes.png": plot_gap_histogram(episodes, path=tmp_path / "episodes.png"),
        "survival.png": plot_survival_curves(survival, path=tmp_path / "survival.png"),
    }
    for name, figure in figures.items():
        assert figure.axes, name
        assert_png(tmp_path / name)
    assert len(figures["survival.png"].axes[0].get_lines()) == 3


def test_gap_histogram_rejects_other_tables():
    with pytest.raises(ValueError, match="cannot find gaps in columns"):
        plot_gap_histogram(pd.DataFrame({"x": [1, 2]}))


# ------------------------------------------------------------- real data


def test_cdnow_sample_reference_split(shared_data_dir):
    """CDNOW 1/10 sample at the reference cut-off 1997-09-30 with its 273-day holdout to 1998-06-30."""
    path = shared_data_dir / "cdnow" / "CDNOW_sample.txt"
    log = load_transactions(path, format="cdnow_sample")
    result = backtest(log, {"bg_nbd": "bg_nbd"}, ["1997-09-30"], horizons=(30, 90, 273), occasion_rule="all",
                      score_baselines=True)
    assert result.window_days == 273
    row = result.per_cutoff.set_index("model").loc["bg_nbd"]
    assert row["n_customers"] == 2357
    assert 0.6 < row["c_index"] < 0.9
    assert 0.6 < row["auc_90d"] < 0.95
    assert 0.5 < row["count_ratio"] < 1.5

    # Holdout occasions counted independently: distinct customer-days from
    # 1997-10-01 to 1998-06-30 of customers seen by the cut-off.
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["customer", "sample_id", "date", "cds", "dollars"])
    raw["day"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    known = raw.loc[raw["day"] <= "1997-09-30", "customer"].unique()
    holdout = raw[(raw["day"] > "1997-09-30") & (raw["day"] <= "1998-06-30") & raw["customer"].isin(known)]
    expected_total = len(holdout.drop_duplicates(["customer", "day"]))
    assert result.tracking["actual"].iloc[-1] == expected_total
    assert result.latest_split.truth["n_occasions_holdout"].sum() == expected_total
