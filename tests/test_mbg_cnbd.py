"""MBG/CNBD-k: likelihood, predictions, parameter recovery and published grocery figures."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from curve_checks import check_summaries_against_curve
from scipy import integrate
from scipy.special import hyp2f1
from sklearn.base import clone

from rtt_models.data import load_transactions
from rtt_models.features import build_features, split_calibration_holdout
from rtt_models.models import make_model, model_names
from rtt_models.models import mbg_cnbd_math
from rtt_models.models.mbg_cnbd import MBGCNBDModel

WEEK = 7.0

# Parameters of the simulation study in BTYDplus's MBG/CNBD-k demo: k, r, alpha (weeks), a, b.
TRUE_K, TRUE_PARAMS = 3, {"r": 0.85, "alpha": 1.45, "a": 0.79, "b": 2.42}


def simulate_cohort(n, k, r, alpha, a, b, *, tenure_weeks, holdout_weeks, seed):
    """Draw customers from MBG/CNBD-k, all first buying at week 0.

    Returns the features at week ``tenure_weeks`` (in days, as build_features
    names them) and the holdout truth: purchases in the following
    ``holdout_weeks`` and the week of the first of them (inf without one).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n)
    x, t_x, litt = np.zeros(n), np.zeros(n), np.zeros(n)
    n_holdout, first_holdout = np.zeros(n), np.full(n, np.inf)
    clock = np.zeros(n)
    active = np.arange(n)

    # One round per purchase: drop out with p, else wait an Erlang-k gap.
    while active.size:
        active = active[rng.random(active.size) >= dropout[active]]
        gap = rng.gamma(k, 1.0 / rate[active])
        clock[active] += gap
        in_calibration = clock[active] <= tenure_weeks
        ids = active[in_calibration]
        x[ids] += 1
        t_x[ids] = clock[ids]
        litt[ids] += np.log(gap[in_calibration])
        ids = active[~in_calibration & (clock[active] <= tenure_weeks + holdout_weeks)]
        n_holdout[ids] += 1
        first_holdout[ids] = np.minimum(first_holdout[ids], clock[ids] - tenure_weeks)
        active = active[clock[active] <= tenure_weeks + holdout_weeks]

    features = pd.DataFrame(
        {
            "frequency": x,
            "recency_days": t_x * WEEK,
            "tenure_days": tenure_weeks * WEEK,
            "elapsed_days": (tenure_weeks - t_x) * WEEK,
            "log_gap_mean": np.where(x > 0, litt / np.maximum(x, 1) + np.log(WEEK), np.nan),
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )
    truth = pd.DataFrame({"n_holdout": n_holdout, "first_holdout_weeks": first_holdout}, index=features.index)
    return features, truth


@pytest.fixture(scope="module")
def simulated():
    return simulate_cohort(8_000, TRUE_K, **TRUE_PARAMS, tenure_weeks=52.0, holdout_weeks=52.0, seed=20_200_902)


@pytest.fixture(scope="module")
def simulated_fit(simulated):
    features, _ = simulated
    return MBGCNBDModel(k_max=4).fit(features)


def small_features():
    return pd.DataFrame(
        {
            "frequency": [0.0, 1.0, 4.0, 12.0, 2.0],
            "recency_days": [0.0, 30.0, 120.0, 300.0, 200.0],
            "tenure_days": [40.0, 200.0, 150.0, 301.0, 200.0],
            "elapsed_days": [40.0, 170.0, 30.0, 1.0, 0.0],
            "log_gap_mean": [np.nan, np.log(30.0), 3.3, 3.2, 4.5],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"),
    )


# ------------------------------------------------------------ the formulas


@pytest.mark.parametrize(
    ("k", "gaps", "tenure"),
    [
        pytest.param(1, [], 5.0, id="k1-one-time-buyer"),
        pytest.param(2, [1.5, 2.0], 6.0, id="k2-two-repeats"),
        pytest.param(3, [0.7], 4.0, id="k3-one-repeat"),
        pytest.param(3, [], 3.0, id="k3-one-time-buyer"),
    ],
)
def test_log_likelihood_equals_double_integral(k, gaps, tenure):
    """The closed form equals the individual likelihood integrated over lambda and p numerically."""
    r, alpha, a, b = params = (0.9, 2.5, 0.8, 2.4)
    x, t_x = len(gaps), sum(gaps)
    open_gap = tenure - t_x

    log_prior_constant = r * math.log(alpha) - math.lgamma(r) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))

    def integrand(p, rate):
        density = 1.0
        for g in gaps:
            density *= rate**k * g ** (k - 1) * math.exp(-rate * g) / math.factorial(k - 1)
        gap_survival = sum((rate * open_gap) ** j * math.exp(-rate * open_gap) / math.factorial(j) for j in range(k))
        likelihood = (1 - p) ** x * density * (p + (1 - p) * gap_survival)
        prior = math.exp(
            log_prior_constant + (r - 1) * math.log(rate) - alpha * rate + (a - 1) * math.log(p) + (b - 1) * math.log1p(-p)
        )
        return likelihood * prior

    value, _ = integrate.dblquad(integrand, 0, 60, 0, 1, epsabs=1e-13, epsrel=1e-10)
    litt = float(np.sum(np.log(gaps))) if gaps else 0.0
    closed = mbg_cnbd_math.log_likelihood(params, k, np.array([x]), np.array([t_x]), np.array([tenure]), np.array([litt]))
    assert closed[0] == pytest.approx(np.log(value), abs=1e-8)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_gradient_matches_central_differences(k):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 40, 60).astype(float)
    T = rng.uniform(2, 60, 60)
    t_x = np.where(x > 0, rng.uniform(0, 1, 60) * T, 0.0)
    params = np.array([0.7, 3.0, 0.6, 1.9])
    analytic = mbg_cnbd_math.log_likelihood_gradient(params, k, x, t_x, T)
    for i in range(4):
        step = np.zeros(4)
        step[i] = 1e-6
        up = mbg_cnbd_math.log_likelihood(params * np.exp(step), k, x, t_x, T, np.zeros_like(x))
        down = mbg_cnbd_math.log_likelihood(params * np.exp(-step), k, x, t_x, T, np.zeros_like(x))
        assert np.allclose(analytic[:, i], (up - down) / 2e-6, rtol=1e-6, atol=1e-6)


def test_k1_matches_mbgnbd_closed_forms():
    """k = 1 is the MBG/NBD; its P(alive), survival and expectation have hypergeometric closed forms."""
    r, alpha, a, b = params = (0.9, 2.5, 0.8, 2.4)
    x = np.array([0.0, 1.0, 3.0, 25.0, 250.0])
    t_x = np.array([0.0, 2.0, 30.0, 40.0, 49.5])
    T = np.array([10.0, 20.0, 40.0, 52.0, 50.0])
    t = np.array([0.0, 1.0, 4.0, 20.0, 52.0])

    # P(alive) with dropout possible after the first purchase (Batislam et al., 2007).
    dead_over_alive = a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    expected_alive = 1.0 / (1.0 + dead_over_alive)
    assert np.allclose(mbg_cnbd_math.p_alive(params, 1, x, t_x, T), expected_alive, rtol=1e-12)

    X, TT, tt, alive = x[:, None], T[:, None], t[None, :], expected_alive[:, None]
    survival = 1.0 - alive * (1.0 - ((alpha + TT) / (alpha + TT + tt)) ** (r + X))
    assert np.allclose(mbg_cnbd_math.survival(params, 1, x, t_x, T, t), survival, rtol=1e-12, atol=1e-14)

    z = tt / (alpha + TT + tt)
    bracket = 1.0 - ((alpha + TT) / (alpha + TT + tt)) ** (r + X) * hyp2f1(r + X, b + X + 1, a + b + X, z)
    expected = (a + b + X) / (a - 1.0) * bracket * alive
    assert np.allclose(mbg_cnbd_math.expected_purchases(params, 1, x, t_x, T, t), expected, rtol=1e-8, atol=1e-12)


def test_survival_equals_posterior_quadrature_k3():
    """S(t) = 1 - P(alive) (1 - E[S_3(lambda (u + t)) / S_3(lambda u)]) over lambda's posterior if alive."""
    r, alpha, a, b = params = (0.9, 2.5, 0.8, 2.4)
    k, x, t_x, T = 3, 4.0, 18.0, 26.0
    u, shape = T - t_x, r + k * x

    def erlang_survival(y):
        return sum(y**j * np.exp(-y) / math.factorial(j) for j in range(k))

    def posterior_mass(survival_at):
        def density(rate):
            return rate ** (shape - 1) * np.exp(-rate * (alpha + t_x)) * erlang_survival(rate * survival_at)

        return integrate.quad(density, 0, np.inf, epsabs=0, epsrel=1e-12)[0]

    alive = mbg_cnbd_math.p_alive(params, k, np.array([x]), np.array([t_x]), np.array([T]))[0]
    for t in (0.5, 3.0, 10.0, 40.0):
        expected = 1.0 - alive * (1.0 - posterior_mass(u + t) / posterior_mass(u))
        got = mbg_cnbd_math.survival(params, k, np.array([x]), np.array([t_x]), np.array([T]), np.array([t]))[0, 0]
        assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("k", [1, 3])
def test_purchase_slope_matches_differences(k):
    params = (0.9, 2.5, 0.8, 2.4)
    x, t_x, T = np.array([0.0, 4.0, 60.0]), np.array([0.0, 18.0, 25.0]), np.array([5.0, 26.0, 26.0])
    t = np.array([0.0, 0.3, 2.0, 15.0, 90.0])
    step = 1e-6
    value, slope = mbg_cnbd_math.purchase_if_alive(params, k, x, t_x, T, t)
    up, _ = mbg_cnbd_math.purchase_if_alive(params, k, x, t_x, T, t + step)
    down, _ = mbg_cnbd_math.purchase_if_alive(params, k, x, t_x, T, np.maximum(t - step, 0.0))
    width = t + step - np.maximum(t - step, 0.0)
    np.testing.assert_allclose(slope, (up - down) / width, rtol=1e-5, atol=1e-9)
    alive = mbg_cnbd_math.p_alive(params, k, x, t_x, T)[:, None]
    survival = mbg_cnbd_math.survival(params, k, x, t_x, T, t)
    np.testing.assert_allclose(1.0 - alive * value, survival, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3])
def test_summary_matches_root_and_quadrature(k):
    model = MBGCNBDModel(k=k)
    model.k_ = k
    model.params_ = dict(zip(MBGCNBDModel._param_names, (0.9, 2.5, 0.8, 2.4)))
    model.feature_names_in_ = list(MBGCNBDModel.required_features)
    rng = np.random.default_rng(2)
    tenure = rng.integers(20, 500, size=40).astype(float)
    frequency = rng.integers(0, 40, size=40)
    recency = np.where(frequency > 0, np.floor(tenure * rng.uniform(0.1, 1.0, size=40)), 0.0)
    features = pd.DataFrame(
        {"frequency": frequency, "recency_days": recency, "tenure_days": tenure,
         "elapsed_days": tenure - recency, "log_gap_mean": np.log(7.0)},
        index=pd.Index([f"c{i}" for i in range(40)], name="customer_id"),
    )
    assert check_summaries_against_curve(model, features) >= 5


def test_hundreds_of_purchases_stay_finite_without_warnings():
    features = pd.DataFrame(
        {
            "frequency": [360.0, 600.0, 0.0],
            "recency_days": [360.0, 600.0, 0.0],
            "tenure_days": [361.0, 900.0, 365.0],
            "elapsed_days": [1.0, 300.0, 365.0],
            "log_gap_mean": [0.0, 0.0, np.nan],
        },
        index=pd.Index(["daily", "stopped", "once"], name="customer_id"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MBGCNBDModel(k=4).fit(pd.concat([features, small_features()]))
        out = model.predict(features, horizons=(30, 365))
        survival = model.predict_survival(features, [0, 1, 30, 365])
    assert np.isfinite(out.drop(columns=["median_days_to_next"]).to_numpy()).all()
    assert np.isfinite(survival.to_numpy()).all()
    assert out.loc["daily", "expected_occasions_365d"] > 100
    assert out.loc["stopped", "p_alive"] < 1e-6


# ------------------------------------------------------------- simulation


def test_simulation_recovers_parameters_and_k(simulated_fit):
    assert simulated_fit.k_ == TRUE_K
    for name, true_value in TRUE_PARAMS.items():
        assert simulated_fit.params_[name] == pytest.approx(true_value, rel=0.10), name


def test_simulation_holdout_counts_and_first_purchase(simulated, simulated_fit):
    """Summed over the cohort, predictions match what the simulated customers did next."""
    features, truth = simulated
    predicted = simulated_fit.predict(features, horizons=(91, 364))
    total = predicted["expected_occasions_364d"].sum()
    assert total == pytest.approx(truth["n_holdout"].sum(), rel=0.05)
    for days in (91, 364):
        observed = (truth["first_holdout_weeks"] <= days / WEEK).mean()
        assert predicted[f"p_purchase_{days}d"].mean() == pytest.approx(observed, abs=0.015)


# --------------------------------------------------------------- contract


def test_survival_contract(simulated, simulated_fit):
    features, _ = simulated
    sample = features.iloc[::40]
    survival = simulated_fit.predict_survival(sample, [0, 1, 7, 30, 90, 365, 730]).to_numpy()
    assert np.isfinite(survival).all()
    assert (survival[:, 0] == 1.0).all()
    assert ((survival >= 0.0) & (survival <= 1.0)).all()
    assert (np.diff(survival, axis=1) <= 0.0).all()

    predicted = simulated_fit.predict(sample, horizons=(7, 30, 90))
    assert (predicted["p_purchase_7d"] <= predicted["p_purchase_30d"]).all()
    assert (predicted["p_purchase_30d"] <= predicted["p_purchase_90d"]).all()
    assert (predicted["expected_occasions_30d"] <= predicted["expected_occasions_90d"]).all()
    assert predicted["p_alive"].between(0.0, 1.0).all()
    assert (predicted["expected_occasions_90d"] >= predicted["p_purchase_90d"] - 1e-12).all()


def test_clone_refit_is_identical(simulated, simulated_fit):
    features, _ = simulated
    refit = clone(simulated_fit).fit(features)
    assert refit.k_ == simulated_fit.k_
    assert refit.params_ == simulated_fit.params_
    sample = features.iloc[:200]
    pd.testing.assert_frame_equal(refit.predict(sample), simulated_fit.predict(sample))


def test_row_order_is_irrelevant():
    features = small_features()
    shuffled = features.sample(frac=1.0, random_state=3)
    first = MBGCNBDModel(k_max=3).fit(features)
    second = MBGCNBDModel(k_max=3).fit(shuffled)
    assert first.params_ == second.params_
    pd.testing.assert_frame_equal(first.predict(features), second.predict(shuffled).loc[features.index])


def test_duplicated_rows_equal_weight_two(simulated):
    features, _ = simulated
    base = features.iloc[:1500]
    doubled = pd.concat([base, base.iloc[:300].set_axis(base.index[:300] + 10**6)])
    weights = np.where(np.arange(len(base)) < 300, 2.0, 1.0)
    by_rows = MBGCNBDModel(k=3).fit(doubled)
    by_weight = MBGCNBDModel(k=3).fit(base, sample_weight=weights)
    for name in TRUE_PARAMS:
        assert by_rows.params_[name] == pytest.approx(by_weight.params_[name], rel=1e-9), name


def test_fixed_k_and_registered_name():
    assert "mbg_cnbd_k" in model_names()
    model = make_model("mbg_cnbd_k", k=2).fit(small_features())
    assert model.k_ == 2
    assert list(model.log_likelihood_by_k_) == [2]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"k": 0}, r"k=0 is invalid: it must be None .* or an integer >= 1", id="k-zero"),
        pytest.param({"k": 2.5}, r"k=2.5 is invalid", id="k-fraction"),
        pytest.param({"k_max": 0}, r"k_max=0 is invalid: it must be an integer >= 1", id="k-max-zero"),
        pytest.param({"time_unit_days": -7.0}, r"time_unit_days=-7.0 is invalid", id="negative-unit"),
    ],
)
def test_invalid_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        MBGCNBDModel(**settings).fit(small_features())


def test_fit_needs_log_gap_mean():
    with pytest.raises(ValueError, match="needs the feature column log_gap_mean"):
        MBGCNBDModel(k=1).fit(small_features().drop(columns="log_gap_mean"))
    broken = small_features()
    broken.loc["c", "log_gap_mean"] = np.nan
    with pytest.raises(ValueError, match=r"1 customers with repeat occasions have a missing .* \['c'\]"):
        MBGCNBDModel(k=1).fit(broken)


def test_predict_before_fit_is_rejected():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="MBGCNBDModel instance is not fitted"):
        MBGCNBDModel().predict(small_features())


# -------------------------------------------------------------- real data


def test_cdnow_selects_exponential_gaps(shared_data_dir):
    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_master.txt", format="cdnow")
    features = build_features(log, as_of="1997-09-30", occasion_rule="all")
    model = MBGCNBDModel(k_max=4).fit(features)
    assert model.k_ == 1
    assert model.log_likelihood_by_k_[1] > model.log_likelihood_by_k_[2]


@pytest.fixture(scope="module")
def grocery_split(shared_data_dir):
    log = load_transactions(shared_data_dir / "btydplus_grocery" / "btydplus_grocery.csv")
    return split_calibration_holdout(log, "2006-12-31", 364, occasion_rule="all")


def test_grocery_reproduces_btydplus_figures(grocery_split):
    """Reproduce the BTYDplus grocery figures: k = 2, 3,970 predicted for 3,389 actual, MAE 0.644.

    The figures come from the grocery example of the R package BTYDplus
    (vignettes/BTYDplus-HowTo.Rmd), whose MAE is sum |actual - predicted| / sum(actual). Its time
    unit is weeks: T is the days from the first purchase to 2006-12-31 over 7, and the holdout is
    the 52 weeks after it. BTYDplus predicts with an approximation, the MBG/NBD conditional
    expectation with alpha scaled by k, rescaled so that the cohort total equals the unconditional
    expectation over the holdout. That recipe, applied to this fit, must give the published figures.
    """
    features, truth = grocery_split.features, grocery_split.truth
    actual = truth["n_occasions_holdout"].to_numpy()
    assert actual.sum() == 3_389
    model = MBGCNBDModel(k_max=4).fit(features)
    assert model.k_ == 2

    k = model.k_
    r, alpha, a, b = (model.params_[name] for name in ("r", "alpha", "a", "b"))
    x = features["frequency"].to_numpy()
    T = features["tenure_days"].to_numpy() / WEEK
    holdout = 52.0
    alive = model.predict(features, horizons=(364,))["p_alive"].to_numpy()
    span = k * alpha + T
    bracket = 1 - (span / (span + holdout)) ** (r + x) * hyp2f1(r + x, b + x + 1, a + b + x, holdout / (span + holdout))
    approximate = (a + b + x) / (a - 1) * bracket * alive

    # Unconditional expectation: a customer who has just made the first purchase, x = t_x = T = 0.
    def unconditional(weeks):
        zero = np.zeros(1)
        return mbg_cnbd_math.expected_purchases((r, alpha, a, b), k, zero, zero, zero, weeks)[0]

    distinct_T, counts = np.unique(T, return_counts=True)
    cohort_total = counts @ (unconditional(distinct_T + holdout) - unconditional(distinct_T))
    btydplus = approximate * cohort_total / approximate.sum()
    assert btydplus.sum() == pytest.approx(3_970, rel=0.03)
    assert np.abs(actual - btydplus).sum() / actual.sum() == pytest.approx(0.644, rel=0.03)


def test_grocery_exact_prediction_beats_btydplus_and_pareto_nbd(grocery_split):
    """The exact conditional expectation is closer to the holdout than BTYDplus's figures and Pareto/NBD."""
    features, truth = grocery_split.features, grocery_split.truth
    actual = truth["n_occasions_holdout"].to_numpy()
    predicted = MBGCNBDModel(k_max=4).fit(features).predict(features, horizons=(364,))["expected_occasions_364d"]
    predicted = predicted.to_numpy()
    assert actual.sum() < predicted.sum() < 3_970
    assert np.abs(actual - predicted).sum() / actual.sum() < 0.644

    pareto = make_model("pareto_nbd").fit(features).predict(features, horizons=(364,))["expected_occasions_364d"]
    assert np.abs(actual - predicted).mean() < np.abs(actual - pareto.to_numpy()).mean()
