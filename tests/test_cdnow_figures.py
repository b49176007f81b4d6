"""Published CDNOW counts, reproduced with the occasion rule 'all' (every customer-day)."""

from __future__ import annotations

import pytest

from rtt_models.data import load_transactions
from rtt_models.features import build_features, split_calibration_holdout


@pytest.fixture(scope="module")
def cdnow_log(shared_data_dir):
    return load_transactions(shared_data_dir / "cdnow" / "CDNOW_master.txt", format="cdnow")


def test_cdnow_master_customers_and_occasions(cdnow_log):
    features = build_features(cdnow_log, occasion_rule="all")
    assert len(features) == 23_570
    assert features["n_occasions"].sum() == 67_591
    assert cdnow_log.report.rows_read == 69_659


def test_cdnow_reference_split_counts(cdnow_log):
    split = split_calibration_holdout(cdnow_log, "1997-09-30", window_days=273, occasion_rule="all")
    features, truth = split.features, split.truth
    assert (features["frequency"] > 0).sum() == 9_451
    assert features["frequency"].sum() == 24_337
    assert truth["n_occasions_holdout"].sum() == 19_684
    assert truth["event"].sum() == 7_058
    assert (truth["event"] & (truth["days_to_next"] <= 30)).sum() == 1_806
    assert (truth["event"] & (truth["days_to_next"] <= 90)).sum() == 4_177
    assert len(split.new_customers) == 0


def test_cdnow_sample_customers(shared_data_dir):
    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_sample.txt", format="cdnow_sample")
    features = build_features(log, as_of="1997-09-30", occasion_rule="all")
    assert len(features) == 2_357


def test_grocery_and_online_retail_figures(shared_data_dir):
    grocery = load_transactions(shared_data_dir / "btydplus_grocery" / "btydplus_grocery.csv")
    grocery_features = build_features(grocery, occasion_rule="all")
    assert len(grocery_features) == 1_525
    assert grocery_features["n_occasions"].sum() == 10_483
    assert (grocery_features["n_occasions"] >= 2).sum() == 970

    retail = load_transactions(shared_data_dir / "uci_online_retail" / "uci_online_retail.csv")
    retail_features = build_features(retail, occasion_rule="all")
    assert len(retail_features) == 4_338
    assert (retail_features["n_occasions"] >= 2).sum() == 2_790
