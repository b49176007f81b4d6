"""Smoke test of experiments/benchmark_datasets.py on a small simulated log."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from rtt_models.data import load_transactions, simulate_transactions

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "benchmark_datasets.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_datasets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # The script's dataclass looks its module up in sys.modules while it is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def rows(bench):
    log = load_transactions(simulate_transactions(300, seed=3).transactions)
    spec = bench.DatasetSpec(
        title="simulated", path="-", format="csv", occasion_rule="positive", cutoff="2023-03-31",
        window_days=180, reason="a test split",
    )
    return bench.evaluate_log(log, spec, ["bg_nbd", "pareto_nbd", "no_such_model"])


def test_rows_cover_families_peers_and_scores(rows, bench):
    by_model = {row["model"]: row for row in rows}
    assert {"bg_nbd", "pareto_nbd", bench.PEER_BG, bench.PEER_PARETO} <= set(by_model)
    assert {"days since last purchase", "purchase count"} <= set(by_model)
    assert by_model["no_such_model"]["note"].startswith("failed: ValueError: unknown model")


def test_metrics_in_range(rows):
    for row in rows:
        if "c_index" not in row:
            continue
        assert 0.0 <= row["c_index"] <= 1.0, row["model"]
        assert 0.0 <= row["auc_90d"] <= 1.0, row["model"]
        if row["kind"] != "one-line":
            assert 0.0 <= row["ibs"] <= 1.0, row["model"]
            assert row["count_ratio"] > 0, row["model"]


def test_peer_pareto_matches_our_fit(rows, bench):
    # Both maximise the same Pareto/NBD likelihood, so the survival metrics agree closely.
    by_model = {row["model"]: row for row in rows}
    ours, peer = by_model["pareto_nbd"], by_model[bench.PEER_PARETO]
    assert ours["ibs"] == pytest.approx(peer["ibs"], abs=2e-3)
    assert ours["c_index"] == pytest.approx(peer["c_index"], abs=5e-3)


def test_render_ranks_and_marks_peers(rows, bench):
    spec = bench.DATASETS["cdnow"]
    text = bench.render_dataset("simulated", spec, rows, seconds=1.0, n_customers=300)
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    c_values = [float(line.split("|")[2]) for line in table if line.split("|")[2].strip() != "-"]
    assert c_values == sorted(c_values, reverse=True)
    assert "lifetimes ParetoNBDFitter (peer)" in text
    assert "(one-line score)" in text
    assert "against lifetimes ParetoNBDFitter" in text


def test_rank_rows_puts_failures_last(bench):
    ranked = bench.rank_rows(
        [{"model": "a"}, {"model": "b", "c_index": 0.7, "ibs": 0.2}, {"model": "c", "c_index": 0.7, "ibs": 0.1}]
    )
    assert [row["model"] for row in ranked] == ["c", "b", "a"]
    assert math.isnan(ranked[-1].get("c_index", math.nan))


def test_write_section_keeps_other_text(bench, tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nother section\n")
    bench.write_section("first", bench.MARKER, path)
    bench.write_section("second", bench.MARKER, path)
    text = path.read_text()
    assert "other section" in text
    assert "second" in text
    assert "first" not in text
    assert text.count("<!-- benchmark_datasets:start -->") == 1
