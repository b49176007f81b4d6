"""Families fitted on gap episodes work on a log without amounts."""

from __future__ import annotations

import numpy as np
import pytest

from rtt_models.data import load_transactions, simulate_transactions
from rtt_models.features import build_episodes, build_features
from rtt_models.models import make_model


@pytest.fixture(scope="module")
def log_without_amounts():
    data = simulate_transactions(800, seed=5)
    return load_transactions(data.transactions[["customer_id", "timestamp"]])


@pytest.mark.parametrize("name", ["gb_hazard", "gb_regression", "weibull_aft", "cox_ph", "dropout_timing"])
def test_fits_and_predicts_without_spend(name, log_without_amounts):
    features = build_features(log_without_amounts, "2023-09-30")
    episodes = build_episodes(log_without_amounts, "2023-09-30")
    assert features["spend_total"].isna().all()
    model = make_model(name).fit(features, episodes)
    out = model.predict(features, horizons=(30,))
    assert np.isfinite(out["p_purchase_30d"]).all()
    if name.startswith("gb_"):
        # The boosting cannot bin a column without values, so the model leaves it out.
        assert not any(column.startswith("spend_") for column in model.covariates_)
