"""Properties of the feature builders over generated transaction logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtt_models.features import EPISODE_COVARIATES, build_episodes, build_features

CUTOFF = pd.Timestamp("2023-03-31")


@st.composite
def transaction_logs(draw):
    """Small logs: a few customers, days around the cut-off, refunds included."""
    n_rows = draw(st.integers(min_value=1, max_value=40))
    customers = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n_rows, max_size=n_rows))
    day_offsets = draw(st.lists(st.integers(min_value=0, max_value=120), min_size=n_rows, max_size=n_rows))
    minutes = draw(st.lists(st.integers(min_value=0, max_value=1439), min_size=n_rows, max_size=n_rows))
    amounts = draw(st.lists(st.sampled_from([-20.0, -5.0, 0.0, 5.0, 12.5, 40.0]), min_size=n_rows, max_size=n_rows))
    stamps = pd.Timestamp("2023-01-01") + pd.to_timedelta(day_offsets, unit="D") + pd.to_timedelta(minutes, unit="min")
    return pd.DataFrame({"customer_id": customers, "timestamp": stamps, "amount": amounts})


def features_or_empty(frame, as_of):
    return build_features(frame, as_of=as_of, occasion_rule="positive")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transaction_logs(), st.randoms(use_true_random=False))
def test_row_order_never_changes_features(frame, rnd):
    order = list(range(len(frame)))
    rnd.shuffle(order)
    expected = features_or_empty(frame, CUTOFF)
    shuffled = features_or_empty(frame.iloc[order], CUTOFF)
    pd.testing.assert_frame_equal(shuffled, expected)


@settings(max_examples=60, deadline=None)
@given(transaction_logs(), transaction_logs())
def test_rows_after_cutoff_never_change_features(frame, later):
    # Move the second log entirely after the cut-off day.
    later = later.assign(timestamp=later["timestamp"] + pd.Timedelta(days=200))
    expected = features_or_empty(frame, CUTOFF)
    combined = features_or_empty(pd.concat([frame, later], ignore_index=True), CUTOFF)
    pd.testing.assert_frame_equal(combined, expected)


@settings(max_examples=40, deadline=None)
@given(transaction_logs())
def test_episodes_never_use_later_history(frame):
    episodes = build_episodes(frame, as_of=CUTOFF)
    for _, row in episodes.sample(n=min(5, len(episodes)), random_state=0).iterrows():
        # The history up to this occasion alone must give the same statistics.
        history_end = row["occasion_date"]
        features = build_features(frame, as_of=history_end)
        expected = features.loc[row["customer_id"], list(EPISODE_COVARIATES)]
        got = row[list(EPISODE_COVARIATES)]
        np.testing.assert_allclose(got.to_numpy(dtype=float), expected.to_numpy(dtype=float), rtol=1e-9, atol=1e-9)
