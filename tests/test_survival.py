"""Tests of the lifelines survival regressions on gap episodes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from rtt_models.models import make_model
from rtt_models.models.survival import CoxPHModel, LogNormalAFTModel, WeibullAFTModel

FAMILIES = [
    pytest.param(WeibullAFTModel, id="weibull_aft"),
    pytest.param(LogNormalAFTModel, id="lognormal_aft"),
    pytest.param(CoxPHModel, id="cox_ph"),
]


def weibull_episodes(n, shape, scale_days, effect=0.0, seed=0, whole_days=False):
    """Simulate Weibull gaps with log scale = log(scale_days) + effect * x, x ~ N(0, 1).

    Censoring is uniform on (0.5, 3) x scale_days, which censors about 18% of
    gaps at shape 1.5.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    gap = scale_days * np.exp(effect * x) * rng.weibull(shape, size=n)
    if whole_days:
        gap = np.ceil(gap)
    censor = rng.uniform(0.5, 3.0, size=n) * scale_days
    if whole_days:
        censor = np.ceil(censor)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "occasion_date": pd.Timestamp("2024-01-01"),
            "duration": np.minimum(gap, censor),
            "event": gap <= censor,
            "x": x,
        }
    )


def customer_features(x, elapsed_days):
    """Feature rows for prediction, indexed by customer_id."""
    x = np.broadcast_to(np.asarray(x, dtype=float), np.shape(elapsed_days))
    frame = pd.DataFrame({"x": x, "elapsed_days": np.asarray(elapsed_days, dtype=float)})
    frame.index = pd.Index([f"c{i}" for i in range(len(frame))], name="customer_id")
    return frame


@pytest.fixture(scope="module")
def whole_day_episodes():
    return weibull_episodes(3000, shape=1.5, scale_days=30.0, effect=0.4, seed=1, whole_days=True)


# -------------------------------------------------------- parameter recovery


def test_weibull_recovers_shape_and_scale():
    episodes = weibull_episodes(20_000, shape=1.5, scale_days=30.0, effect=0.0, seed=2)
    model = WeibullAFTModel(covariates=["x"], max_rows=None).fit(None, episodes)
    log_scale = model.lifelines_model_.params_.loc[("lambda_", "Intercept")]
    assert model.shape_ == pytest.approx(1.5, rel=0.03)
    assert np.exp(log_scale) == pytest.approx(30.0, rel=0.03)
    assert abs(model.lifelines_model_.params_.loc[("lambda_", "x")]) < 0.03


def test_weibull_recovers_covariate_effect():
    episodes = weibull_episodes(20_000, shape=1.5, scale_days=30.0, effect=0.5, seed=3)
    model = WeibullAFTModel(covariates=["x"], max_rows=None).fit(None, episodes)
    per_unit_x = model.lifelines_model_.params_.loc[("lambda_", "x")] / model.scale_["x"]
    assert per_unit_x == pytest.approx(0.5, abs=0.03)
    assert model.shape_ == pytest.approx(1.5, rel=0.03)


def test_lognormal_ancillary_recovers_sigma_effect():
    # log T ~ Normal(log 30 + 0.3 x, sigma(x)) with log sigma(x) = log 0.6 + 0.4 x, x ~ N(0, 1).
    rng = np.random.default_rng(4)
    x = rng.normal(size=20_000)
    gap = np.exp(np.log(30.0) + 0.3 * x + np.exp(np.log(0.6) + 0.4 * x) * rng.normal(size=x.size))
    censor = rng.uniform(0.5, 4.0, size=x.size) * 30.0
    episodes = pd.DataFrame({"duration": np.minimum(gap, censor), "event": gap <= censor, "x": x})
    model = LogNormalAFTModel(covariates=["x"], max_rows=None).fit(None, episodes)

    params = model.lifelines_model_.params_
    assert params.loc[("mu_", "x")] / model.scale_["x"] == pytest.approx(0.3, abs=0.03)
    assert params.loc[("sigma_", "x")] / model.scale_["x"] == pytest.approx(0.4, abs=0.03)
    assert model.sigma_ == pytest.approx(0.6, rel=0.05)


def test_lognormal_without_ancillary_has_one_sigma():
    episodes = weibull_episodes(3000, shape=1.5, scale_days=30.0, effect=0.4, seed=5)
    model = LogNormalAFTModel(covariates=["x"], ancillary=False).fit(None, episodes)
    assert list(model.lifelines_model_.params_.loc["sigma_"].index) == ["Intercept"]
    assert model.get_params()["ancillary"] is False
    assert LogNormalAFTModel().ancillary is True
    assert WeibullAFTModel().ancillary is False


# ------------------------------------------------- agreement with lifelines


@pytest.mark.parametrize(
    "family",
    [*FAMILIES, pytest.param(lambda **kw: WeibullAFTModel(ancillary=True, **kw), id="weibull_aft-ancillary")],
)
def test_survival_equals_lifelines(family, whole_day_episodes):
    model = family(covariates=["x"]).fit(None, whole_day_episodes)
    features = customer_features([-1.0, 0.0, 0.7, 1.5], [0.0, 3.0, 7.0, 12.0])
    times = [1.0, 2.0, 5.0, 10.0, 20.0, 40.0]

    ours = model.predict_survival(features, times)
    design = model.design_matrix(features)
    fresh = model.lifelines_model_.predict_survival_function(design.iloc[:1], times=times).T
    started = model.lifelines_model_.predict_survival_function(
        design.iloc[1:], times=times, conditional_after=features["elapsed_days"].to_numpy()[1:]
    ).T

    # Whole-day durations put a Cox jump at every day up to 52, so lifelines'
    # linear interpolation and the step agree at these whole days. The
    # elapsed-0 row is compared without conditional_after, because lifelines
    # 0.30 evaluates its Cox baseline at 0 as the value at the first jump.
    np.testing.assert_allclose(ours.iloc[:1].to_numpy(), fresh.to_numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.iloc[1:].to_numpy(), started.to_numpy(), rtol=1e-7, atol=1e-10)


def test_cox_baseline_is_step_between_jumps():
    episodes = pd.DataFrame(
        {
            "duration": [2.0, 5.0, 5.0, 9.0, 3.0, 12.0],
            "event": [True, True, False, True, False, True],
            "x": [0.0, 1.0, 0.5, -1.0, 2.0, 0.3],
        }
    )
    model = CoxPHModel(covariates=[]).fit(None, episodes)
    features = customer_features(0.0, [0.0])
    survival = model.predict_survival(features, [1.0, 2.0, 4.9, 5.0, 8.0, 9.0, 20.0, 100.0]).iloc[0]

    # Breslow without covariates is Nelson-Aalen: jumps 1/6 at 2, 1/4 at 5
    # (4 at risk, one event), 1/2 at 9 and 1/1 at 12.
    h2, h5, h9, h12 = 1 / 6, 1 / 6 + 1 / 4, 1 / 6 + 1 / 4 + 1 / 2, 1 / 6 + 1 / 4 + 1 / 2 + 1
    expected = np.exp(-np.array([0.0, h2, h2, h5, h5, h9, h12, h12]))
    np.testing.assert_allclose(survival.to_numpy(), expected, rtol=1e-9)


def test_cox_flat_beyond_last_event():
    episodes = pd.DataFrame(
        {"duration": [2.0, 5.0, 9.0, 4.0], "event": [True, True, True, False], "x": [0.0, 1.0, -1.0, 0.5]}
    )
    model = CoxPHModel(covariates=[]).fit(None, episodes)
    survival = model.predict_survival(customer_features(0.0, [9.0, 50.0]), [10.0, 365.0])
    assert (survival.to_numpy() == 1.0).all()


# ------------------------------------------------ conditioning on elapsed


def test_increasing_hazard_buys_sooner_with_elapsed():
    episodes = weibull_episodes(5000, shape=2.0, scale_days=40.0, seed=4)
    model = WeibullAFTModel(covariates=["x"]).fit(None, episodes)
    predicted = model.predict(customer_features(0.0, [0.0, 10.0, 30.0, 60.0, 120.0]), horizons=[30])
    p30 = predicted["p_purchase_30d"].to_numpy()
    assert model.shape_ > 1.8
    assert np.all(np.diff(p30) > 0)


def test_exponential_gaps_ignore_elapsed():
    episodes = weibull_episodes(20_000, shape=1.0, scale_days=25.0, seed=5)
    model = WeibullAFTModel(covariates=["x"], max_rows=None).fit(None, episodes)
    survival = model.predict_survival(customer_features(0.0, [0.0, 20.0, 100.0]), np.arange(0, 91, 10))
    assert model.shape_ == pytest.approx(1.0, abs=0.03)
    spread = survival.max(axis=0) - survival.min(axis=0)
    assert spread.max() < 0.03


@pytest.mark.parametrize("family", FAMILIES[:2])
def test_far_tail_is_finite(family):
    episodes = weibull_episodes(3000, shape=3.0, scale_days=20.0, seed=6)
    model = family(covariates=["x"]).fit(None, episodes)
    survival = model.predict_survival(customer_features(0.0, [0.0, 500.0, 5_000.0, 50_000.0]), [0, 1, 30, 365])
    values = survival.to_numpy()
    assert np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()


def test_weibull_far_tail_has_purchase_certain():
    episodes = weibull_episodes(3000, shape=3.0, scale_days=20.0, seed=6)
    model = WeibullAFTModel(covariates=["x"]).fit(None, episodes)
    # With shape 3 and scale 20 days the hazard at 5,000 days is about 1e4 per day.
    survival = model.predict_survival(customer_features(0.0, [5_000.0]), [1.0])
    assert survival.iloc[0, 0] == 0.0


def test_lognormal_far_tail_matches_closed_form():
    episodes = weibull_episodes(3000, shape=1.2, scale_days=20.0, seed=7)
    model = LogNormalAFTModel(covariates=[]).fit(None, episodes)
    mu = model.lifelines_model_.params_.loc[("mu_", "Intercept")]
    sigma = model.sigma_
    elapsed, t = 2_000.0, 30.0

    # Reference from scipy's log survival function of the normal distribution.
    expected = np.exp(
        norm.logsf((np.log(elapsed + t) - mu) / sigma) - norm.logsf((np.log(elapsed) - mu) / sigma)
    )
    got = model.predict_survival(customer_features(0.0, [elapsed]), [t]).iloc[0, 0]
    assert 0.0 < got < 1.0
    assert got == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------- covariate handling


def test_missing_covariate_gets_indicator():
    episodes = weibull_episodes(4000, shape=1.5, scale_days=30.0, effect=0.3, seed=8)
    episodes["gap_like"] = np.where(np.arange(4000) % 4 == 0, np.nan, episodes["x"] * 2.0)
    episodes["gap_like_copy"] = episodes["gap_like"] + 1.0
    model = WeibullAFTModel(covariates=["x", "gap_like", "gap_like_copy"]).fit(None, episodes)

    assert model.missing_indicators_ == {"gap_like_missing": "gap_like"}
    assert "gap_like_copy" not in model.design_columns_
    assert model.impute_values_["gap_like"] == pytest.approx(np.nanmedian(episodes["gap_like"]))
    features = customer_features([0.0, 0.0], [0.0, 0.0]).assign(gap_like=[np.nan, 1.0], gap_like_copy=[np.nan, 2.0])
    survival = model.predict_survival(features, [10, 30])
    assert np.isfinite(survival.to_numpy()).all()


def test_constant_covariate_is_left_out():
    episodes = weibull_episodes(2000, shape=1.5, scale_days=30.0, seed=9).assign(flat=3.0)
    model = CoxPHModel(covariates=["x", "flat"]).fit(None, episodes)
    assert model.design_columns_ == ["x"]
    assert model.feature_names_in_ == ["x", "elapsed_days"]


def test_zero_durations_are_dropped_and_counted():
    episodes = weibull_episodes(1000, shape=1.5, scale_days=30.0, seed=10)
    episodes.loc[:24, "duration"] = 0.0
    episodes.loc[:24, "event"] = False
    model = WeibullAFTModel(covariates=["x"]).fit(None, episodes)
    assert model.n_zero_duration_dropped_ == 25
    assert model.n_training_rows_ == 975


def test_max_rows_bounds_training_rows():
    episodes = weibull_episodes(3000, shape=1.5, scale_days=30.0, seed=11)
    model = LogNormalAFTModel(covariates=["x"], max_rows=500).fit(None, episodes)
    assert model.n_training_rows_ == 500


def test_episode_order_does_not_change_fit():
    episodes = weibull_episodes(3000, shape=1.5, scale_days=30.0, effect=0.3, seed=12)
    shuffled = episodes.sample(frac=1.0, random_state=3)
    first = WeibullAFTModel(covariates=["x"], max_rows=1000).fit(None, episodes)
    second = WeibullAFTModel(covariates=["x"], max_rows=1000).fit(None, shuffled)
    pd.testing.assert_series_equal(first.lifelines_model_.params_, second.lifelines_model_.params_)


# ------------------------------------------------------ contract invariants


@pytest.mark.parametrize("family", FAMILIES)
def test_contract_invariants(family, whole_day_episodes):
    model = family(covariates=["x"]).fit(None, whole_day_episodes)
    rng = np.random.default_rng(13)
    features = customer_features(rng.normal(size=40), rng.integers(0, 80, size=40))
    times = np.arange(0, 121, 5, dtype=float)

    survival = model.predict_survival(features, times).to_numpy()
    assert np.isfinite(survival).all()
    assert ((survival >= 0) & (survival <= 1)).all()
    np.testing.assert_array_equal(survival[:, 0], 1.0)
    assert (np.diff(survival, axis=1) <= 0).all()

    predicted = model.predict(features, horizons=[7, 30, 90])
    assert (predicted["p_purchase_7d"] <= predicted["p_purchase_30d"]).all()
    assert (predicted["p_purchase_30d"] <= predicted["p_purchase_90d"]).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_clone_refit_is_identical(family, whole_day_episodes):
    model = family(covariates=["x"], max_rows=1500).fit(None, whole_day_episodes)
    again = clone(model).fit(None, whole_day_episodes)
    features = customer_features([0.2, -0.5, 1.0], [0.0, 5.0, 30.0])
    pd.testing.assert_frame_equal(model.predict(features), again.predict(features))


@pytest.mark.parametrize("family", FAMILIES)
def test_row_order_does_not_change_output(family, whole_day_episodes):
    model = family(covariates=["x"]).fit(None, whole_day_episodes)
    rng = np.random.default_rng(14)
    features = customer_features(rng.normal(size=30), rng.integers(0, 60, size=30))
    shuffled = features.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(model.predict(shuffled).loc[features.index], model.predict(features))


# ---------------------------------------------------------------- errors


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        WeibullAFTModel(covariates=["x"]).predict(customer_features(0.0, [1.0]))


def test_fit_without_episodes_names_the_builder():
    with pytest.raises(ValueError, match=r"build_episodes\(transactions, as_of\)"):
        CoxPHModel(covariates=["x"]).fit(customer_features(0.0, [1.0]), None)


def test_fit_names_missing_episode_columns():
    episodes = weibull_episodes(100, shape=1.5, scale_days=30.0).drop(columns="x")
    with pytest.raises(ValueError, match=r"episodes are missing columns \['x'\]"):
        WeibullAFTModel(covariates=["x"]).fit(None, episodes)


def test_fit_names_missing_feature_covariates():
    episodes = weibull_episodes(100, shape=1.5, scale_days=30.0)
    features = customer_features(0.0, [1.0]).drop(columns="x")
    with pytest.raises(ValueError, match=r"features are missing covariates \['x'\]"):
        WeibullAFTModel(covariates=["x"]).fit(features, episodes)


def test_negative_duration_is_rejected():
    episodes = weibull_episodes(100, shape=1.5, scale_days=30.0)
    episodes.loc[3, "duration"] = -2.0
    with pytest.raises(ValueError, match="duration must be finite days >= 0, but 1 rows"):
        LogNormalAFTModel(covariates=["x"]).fit(None, episodes)


def test_infinite_feature_is_rejected(whole_day_episodes):
    model = WeibullAFTModel(covariates=["x"]).fit(None, whole_day_episodes)
    with pytest.raises(ValueError, match=r"infinite values in covariates \['x'\]"):
        model.predict(customer_features([np.inf], [1.0]))


@pytest.mark.parametrize(
    "settings, message",
    [
        pytest.param({"penalizer": -0.1}, "penalizer must be a finite number >= 0, got -0.1", id="penalizer"),
        pytest.param({"l1_ratio": 1.5}, r"l1_ratio must be a number in \[0, 1\], got 1.5", id="l1_ratio"),
        pytest.param({"max_rows": 5}, "max_rows must be an integer >= 10 or None, got 5", id="max_rows"),
        pytest.param({"random_state": "a"}, "random_state must be an int or None", id="random_state"),
        pytest.param({"covariates": "x"}, "covariates must be a list of column names", id="covariates_str"),
        pytest.param({"covariates": ["x", "duration"]}, r"\['duration'\] cannot be covariates", id="reserved"),
        pytest.param({"ancillary": "yes"}, "ancillary must be True or False, got 'yes'", id="ancillary"),
    ],
)
def test_invalid_setting_is_rejected(settings, message):
    episodes = weibull_episodes(100, shape=1.5, scale_days=30.0)
    with pytest.raises((ValueError, TypeError), match=message):
        WeibullAFTModel(**{"covariates": ["x"], **settings}).fit(None, episodes)


def test_make_model_builds_each_family():
    assert isinstance(make_model("weibull_aft"), WeibullAFTModel)
    assert isinstance(make_model("lognormal_aft", penalizer=0.1), LogNormalAFTModel)
    assert isinstance(make_model("cox_ph", l1_ratio=0.5), CoxPHModel)


# ------------------------------------------------------- real feature code


def test_default_covariates_on_simulated_log():
    from rtt_models.data import simulate_transactions
    from rtt_models.features import EPISODE_COVARIATES, build_episodes, build_features

    simulated = simulate_transactions(800, seed=3)
    as_of = pd.Timestamp("2023-06-30")
    features = build_features(simulated.transactions, as_of=as_of)
    episodes = build_episodes(simulated.transactions, as_of=as_of)

    model = WeibullAFTModel().fit(features, episodes)
    assert model.covariates_ == list(EPISODE_COVARIATES)
    # frequency = n_occasions - 1 is perfectly collinear and is left out.
    assert "frequency" not in model.design_columns_
    predicted = model.predict(features, horizons=[30, 90])
    assert predicted.index.equals(features.index)
    assert np.isfinite(predicted["p_purchase_30d"]).all()


@pytest.mark.shared_data
def test_cdnow_reference_split_ranks_buyers(shared_data_dir):
    from sklearn.metrics import roc_auc_score

    from rtt_models.data import load_transactions
    from rtt_models.features import build_episodes, build_features

    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_master.txt", format="cdnow")
    features = build_features(log, as_of="1997-09-30")
    episodes = build_episodes(log, as_of="1997-09-30")
    frame = log.frame
    holdout = frame[(frame["timestamp"] >= "1997-10-01") & (frame["timestamp"] < "1997-10-31")]
    bought = features.index.isin(holdout["customer_id"].unique())

    model = LogNormalAFTModel().fit(features, episodes)
    p30 = model.predict(features, horizons=[30])["p_purchase_30d"]
    # Measured 0.78 (AUC of holdout purchase within 30 days, cut-off 1997-09-30).
    assert roc_auc_score(bought, p30) > 0.75
    assert p30.mean() == pytest.approx(bought.mean(), abs=0.02)
