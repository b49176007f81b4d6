"""The `rtt rank` command end to end: files in, intervention list out, exit code 2 on bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from rtt_models.cli import main
from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.data.write import write_table
from rtt_models.features import build_episodes, build_features
from rtt_models.models.names import make_model

AS_OF = "2023-09-30"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Scores and features files of 300 simulated customers (seed 11), as rtt score and rtt features write them."""
    folder = tmp_path_factory.mktemp("rank-inputs")
    data = simulate_transactions(300, seed=11)
    log = load_transactions(data.transactions, columns={"passthrough": ["segment"]})
    features = build_features(log, AS_OF)
    scores = make_model("kaplan_meier").fit(features, build_episodes(log, AS_OF)).predict(features, (30, 90))
    days = np.ceil(scores["median_days_to_next"])
    scores["expected_next_purchase_date"] = pd.Timestamp(AS_OF) + pd.to_timedelta(days, unit="D")
    scores = scores.drop(columns=[c for c in scores.columns if c.startswith("expected_occasions")])
    paths = {
        "scores": write_table(scores, folder / "scores.csv"),
        "features": write_table(features, folder / "features.csv"),
        "scores_parquet": write_table(scores, folder / "scores.parquet"),
        "features_parquet": write_table(features, folder / "features.parquet"),
        "features_earlier": write_table(build_features(log, "2023-06-30"), folder / "features_earlier.csv"),
    }
    return paths, features


def run_rank(paths, *args):
    return CliRunner().invoke(
        main, ["rank", "--scores", str(paths["scores"]), "--features", str(paths["features"]), *args],
        catch_exceptions=False,
    )


def test_rank_writes_list_with_filters(inputs, tmp_path):
    paths, features = inputs
    exclude = tmp_path / "exclude.txt"
    out = tmp_path / "list.csv"

    # Rank once without filters to know the best customer, then exclude them.
    full = tmp_path / "full.csv"
    assert run_rank(paths, "--horizon", "90", "--out", str(full)).exit_code == 0
    ranked = pd.read_csv(full, dtype={"customer_id": str})
    assert len(ranked) == len(features)
    best = ranked["customer_id"].iloc[0]
    exclude.write_text(best + "\n")

    result = run_rank(paths, "--horizon", "90", "--top", "12", "--quota", "frequent=4", "--quota", "*=5",
                      "--exclude", str(exclude), "--min-risk", "0.3", "--out", str(out))
    assert result.exit_code == 0, result.output
    listed = pd.read_csv(out, dtype={"customer_id": str})
    assert len(listed) == 12
    assert best not in set(listed["customer_id"])
    assert (listed["lapse_risk"] >= 0.3).all()
    assert (listed["segment"] == "frequent").sum() <= 4
    assert listed["segment"].value_counts().max() <= 5
    assert listed["rank"].is_monotonic_increasing
    assert list(listed.columns[:4]) == ["customer_id", "rank", "tier", "reason"]

    assert "Ranked by priority at a 90-day horizon as of 2023-09-30" in result.output
    assert f"Customers ranked: {len(features):,}; listed: 12" in result.output
    assert "on the exclusion list 1," in result.output
    assert "Tiers: overdue " in result.output
    assert "Value at stake of the list: " in result.output


def test_rank_parquet_inputs_and_output(inputs, tmp_path):
    paths, _ = inputs
    out = tmp_path / "list.parquet"
    result = CliRunner().invoke(
        main,
        ["rank", "--scores", str(paths["scores_parquet"]), "--features", str(paths["features_parquet"]),
         "--horizon", "30", "--rank-by", "risk", "--min-value", "5", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    listed = pd.read_parquet(out)
    assert listed.index.name == "customer_id"
    assert (listed["horizon_days"] == 30).all()
    assert (listed["value_at_stake"] >= 5).all()
    assert listed["lapse_risk"].is_monotonic_decreasing


def test_rank_same_inputs_same_bytes(inputs, tmp_path):
    paths, _ = inputs
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert run_rank(paths, "--horizon", "90", "--top", "50", "--out", str(first)).exit_code == 0
    assert run_rank(paths, "--horizon", "90", "--top", "50", "--out", str(second)).exit_code == 0
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--horizon", "45"], "they cover horizons of [30, 90] days", id="missing-horizon"),
        pytest.param(["--horizon", "90", "--quota", "frequent"], "quota 'frequent' is not SEGMENT=N", id="bad-quota"),
        pytest.param(["--horizon", "90", "--min-risk", "2"], "min_risk must be a lapse risk in [0, 1]", id="min-risk"),
        pytest.param(["--horizon", "90", "--as-of", "2023-10-31"], "is not the cut-off of the features", id="as-of"),
        pytest.param(["--horizon", "90", "--exclude", "missing.txt"], "not found", id="missing-exclusions"),
        pytest.param(["--horizon", "90", "--quota", "x=1", "--segment-col", "region"],
                     "quotas need the segment column 'region'", id="missing-segment-column"),
    ],
)
def test_bad_input_exits_2(inputs, tmp_path, args, message):
    paths, _ = inputs
    out = tmp_path / "list.csv"
    result = CliRunner().invoke(
        main, ["rank", "--scores", str(paths["scores"]), "--features", str(paths["features"]), *args, "--out", str(out)]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_mixed_cutoffs_exit_2(inputs, tmp_path):
    paths, _ = inputs
    out = tmp_path / "list.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "rtt_models.cli", "rank", "--scores", str(paths["scores"]),
         "--features", str(paths["features_earlier"]), "--horizon", "90", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0
    assert completed.stderr.startswith(
        "error: the scores were made as of 2023-09-30 but the features were built as of 2023-06-30 "
    )
    assert completed.stderr.strip().endswith("score and build features at the same --as-of.")
    assert not out.exists()


def test_features_without_score_counted(inputs, tmp_path):
    paths, features = inputs
    scores = pd.read_csv(paths["scores"], dtype={"customer_id": str})
    dropped = sorted(scores["customer_id"])[:7]
    partial = write_table(scores[~scores["customer_id"].isin(dropped)], tmp_path / "partial.csv", index=False)
    out = tmp_path / "list.csv"
    result = run_rank({"scores": partial, "features": paths["features"]}, "--horizon", "90", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "7 customers with features have no score and are not ranked" in result.output
    assert f"Customers ranked: {len(features) - 7:,}; listed: {len(features) - 7:,}" in result.output
    listed = pd.read_csv(out, dtype={"customer_id": str})
    assert not set(dropped) & set(listed["customer_id"])


def test_no_unscored_line_when_all_scored(inputs, tmp_path):
    paths, _ = inputs
    result = run_rank(paths, "--horizon", "90", "--out", str(tmp_path / "list.csv"))
    assert result.exit_code == 0, result.output
    assert "have no score" not in result.output


def test_missing_scores_file_exits_2_one_line(inputs, tmp_path):
    paths, _ = inputs
    out = tmp_path / "list.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "rtt_models.cli", "rank", "--scores", str(tmp_path / "none.csv"),
         "--features", str(paths["features"]), "--horizon", "90", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0
    assert completed.stderr.startswith("error: scores file ")
    assert "not found" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_scores_without_customer_id_exit_2(inputs, tmp_path):
    paths, _ = inputs
    scores = tmp_path / "scores.csv"
    scores.write_text("id,p_purchase_90d\na,0.5\n")
    result = CliRunner().invoke(
        main, ["rank", "--scores", str(scores), "--features", str(paths["features"]), "--horizon", "90",
               "--out", str(tmp_path / "list.csv")]
    )
    assert result.exit_code == 2
    assert "has no customer_id column" in result.output


def test_log_without_amounts_ranks_by_risk(tmp_path):
    data = simulate_transactions(120, seed=5)
    log = load_transactions(data.transactions[["customer_id", "timestamp"]])
    features = build_features(log, AS_OF)
    scores = make_model("mean_gap").fit(features).predict(features, (30,))
    paths = {"scores": write_table(scores, tmp_path / "scores.csv"),
             "features": write_table(features, tmp_path / "features.csv")}
    out = tmp_path / "list.csv"

    result = run_rank(paths, "--horizon", "30", "--top", "10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Ranked by risk at a 30-day horizon" in result.output
    assert "Value at stake of the list: unknown (no amounts)" in result.output
    listed = pd.read_csv(out)
    assert listed["value_at_stake"].isna().all()
    assert listed["lapse_risk"].is_monotonic_decreasing

    refused = CliRunner().invoke(main, ["rank", "--scores", str(paths["scores"]), "--features",
                                        str(paths["features"]), "--horizon", "30", "--min-value", "1",
                                        "--out", str(tmp_path / "other.csv")])
    assert refused.exit_code == 2
    assert "min_value needs value_at_stake, which is empty" in refused.output
