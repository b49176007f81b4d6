"""Tests of the BG/NBD and Pareto/NBD models.

Published CDNOW estimates, direct numerical integration of each model's
definition, the lifetimes package at the same parameters, and the invariants
of the next-purchase contract.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from rtt_models.models import btyd_math
from rtt_models.models.btyd import BGNBDModel, ParetoNBDModel

MODELS = [pytest.param(BGNBDModel, id="bg_nbd"), pytest.param(ParetoNBDModel, id="pareto_nbd")]

# Parameter sets in weeks for the hand checks: the published CDNOW estimates
# (Pareto/NBD with alpha < beta) and one with alpha > beta, because the
# Pareto/NBD closed forms take a different branch for each.
BG_PARAMS = (0.243, 4.414, 0.793, 2.426)
PARETO_PARAMS_ALPHA_BELOW_BETA = (0.553, 10.578, 0.606, 11.669)
PARETO_PARAMS_ALPHA_ABOVE_BETA = (0.9, 14.0, 0.45, 3.0)


# ------------------------------------------------------------------ data


def _features(frequency, recency_days, tenure_days, ids=None) -> pd.DataFrame:
    frequency = np.asarray(frequency, dtype=int)
    recency = np.asarray(recency_days, dtype=float)
    tenure = np.asarray(tenure_days, dtype=float)
    index = pd.Index(ids if ids is not None else [f"c{i:05d}" for i in range(len(frequency))], name="customer_id")
    return pd.DataFrame(
        {"frequency": frequency, "recency_days": recency, "tenure_days": tenure, "elapsed_days": tenure - recency},
        index=index,
    )


def _simulate_features(n_customers: int, seed: int) -> pd.DataFrame:
    """Simulate Pareto/NBD customers observed for 100 to 400 whole days."""
    rng = np.random.default_rng(seed)
    purchase_rate = rng.gamma(shape=0.6, scale=1 / 12.0, size=n_customers)  # per day
    lifetime = rng.exponential(1.0 / rng.gamma(shape=0.7, scale=1 / 150.0, size=n_customers))
    tenure = rng.integers(100, 401, size=n_customers).astype(float)
    active = np.minimum(lifetime, tenure)
    frequency = rng.poisson(purchase_rate * active)

    # The last of n uniform purchase times on [0, active] is active * U ** (1/n).
    last = active * rng.uniform(size=n_customers) ** (1.0 / np.maximum(frequency, 1))
    recency = np.where(frequency > 0, np.clip(np.round(last), 1, tenure), 0.0)
    return _features(frequency, recency, tenure)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return _simulate_features(1500, seed=7)


@pytest.fixture(scope="module")
def cdnow_sample(shared_data_dir) -> pd.DataFrame:
    """CDNOW 1/10 sample summarised at 1997-09-30 inclusive, one occasion per customer-day."""
    from rtt_models.data import load_transactions
    from rtt_models.features import build_features

    log = load_transactions(shared_data_dir / "cdnow" / "CDNOW_sample.txt", format="cdnow_sample")
    return build_features(log, as_of="1997-09-30", occasion_rule="all")


def _fitted(model_class, params: tuple[float, ...], **settings):
    """Return a model whose parameters are set by hand, as if fitted."""
    model = model_class(**settings)
    model.params_ = dict(zip(model_class._param_names, params))
    model.feature_names_in_ = list(model_class.required_features)
    return model


# ------------------------------------------------------ published values


def _assert_rounds_to(params: dict, published: dict) -> None:
    # The papers print 3 decimals, so an estimate matches when it rounds to
    # the printed value: an absolute difference of at most 5e-4.
    for name, value in published.items():
        assert abs(params[name] - value) <= 5e-4 + 1e-12, f"{name}: {params[name]:.5f} vs published {value}"


@pytest.mark.shared_data
def test_bgnbd_cdnow_fader_hardie_lee_2005_counting(cdnow_sample):
    """BG/NBD on the CDNOW sample: Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way".

    Published: r 0.243, alpha 4.414, a 0.793, b 2.426, log-likelihood -9582.4,
    with T measured in weeks up to 1997-09-30 inclusive.
    """
    assert len(cdnow_sample) == 2357
    model = BGNBDModel().fit(cdnow_sample)
    _assert_rounds_to(model.params_, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert model.converged_
    assert model.n_customers_ == 2357


@pytest.mark.shared_data
def test_paretonbd_cdnow_fader_hardie_lee_2005_rfm_clv(cdnow_sample):
    """Pareto/NBD on the CDNOW sample: Fader, Hardie and Lee (2005), "RFM and CLV".

    Published: r 0.553, alpha 10.578, s 0.606, beta 11.669, with T in weeks
    up to 1997-09-30 inclusive.
    """
    model = ParetoNBDModel().fit(cdnow_sample)
    _assert_rounds_to(model.params_, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669})
    assert model.converged_


@pytest.mark.shared_data
def test_cdnow_cutoff_october_first_misses_published(cdnow_sample):
    """Measuring T to 1997-10-01 instead of 1997-09-30 moves b away from the published 2.426."""
    shifted = cdnow_sample.copy()
    shifted["tenure_days"] += 1.0
    shifted["elapsed_days"] += 1.0
    b = BGNBDModel().fit(shifted).params_["b"]
    assert abs(b - 2.426) > 0.01


# ----------------------------------------------------------- weighting


@pytest.mark.parametrize("model_class", MODELS)
def test_weighted_compressed_rows_equal_raw_fit(model_class, simulated):
    raw = model_class().fit(simulated)

    # One row per distinct (frequency, recency, tenure), weighted by its count.
    columns = ["frequency", "recency_days", "tenure_days"]
    counts = simulated.groupby(columns).size().rename("count").reset_index()
    assert len(counts) < len(simulated)
    compressed = _features(counts["frequency"], counts["recency_days"], counts["tenure_days"])
    weighted = model_class().fit(compressed, sample_weight=counts["count"].to_numpy())

    for name in model_class._param_names:
        assert weighted.params_[name] == pytest.approx(raw.params_[name], rel=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(raw.log_likelihood_, rel=1e-9)

    unweighted = model_class().fit(compressed)
    differences = [abs(unweighted.params_[n] / raw.params_[n] - 1.0) for n in model_class._param_names]
    assert max(differences) > 0.01


@pytest.mark.parametrize("model_class", MODELS)
def test_duplicated_rows_equal_weight_two(model_class, simulated):
    subset = simulated.iloc[:800]
    doubled = pd.concat([subset, subset.set_axis([f"{i}_copy" for i in subset.index])])
    by_weight = model_class().fit(subset, sample_weight=np.full(len(subset), 2.0))
    by_copy = model_class().fit(doubled)
    for name in model_class._param_names:
        assert by_weight.params_[name] == pytest.approx(by_copy.params_[name], rel=1e-6)


# ---------------------------------------------------- contract invariants


@pytest.fixture(scope="module")
def extreme_features() -> pd.DataFrame:
    """Ordinary customers plus ones with 500 purchases over 10 years, and brand-new ones."""
    ten_years = 3650.0
    return _features(
        frequency=[0, 0, 1, 5, 40, 500, 500, 500],
        recency_days=[0, 0, 30, 200, 600, ten_years, 3000.0, 100.0],
        tenure_days=[0, 90, 120, 400, 700, ten_years, ten_years, ten_years],
    )


@pytest.mark.parametrize(
    "model_class, params",
    [
        pytest.param(BGNBDModel, BG_PARAMS, id="bg_nbd"),
        pytest.param(ParetoNBDModel, PARETO_PARAMS_ALPHA_BELOW_BETA, id="pareto_alpha_below_beta"),
        pytest.param(ParetoNBDModel, PARETO_PARAMS_ALPHA_ABOVE_BETA, id="pareto_alpha_above_beta"),
        pytest.param(ParetoNBDModel, (2.0, 3.0, 1.0, 0.05), id="pareto_integer_s"),
    ],
)
def test_survival_is_a_finite_curve(model_class, params, extreme_features):
    model = _fitted(model_class, params)
    times = np.arange(0.0, 731.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = model._survival_matrix(extreme_features, times)
        predicted = model.predict(extreme_features, horizons=(1, 30, 90, 365))

    assert np.all(np.isfinite(raw))
    assert np.all(raw[:, 0] == 1.0)
    assert np.all((raw >= 0.0) & (raw <= 1.0))
    assert np.all(np.diff(raw, axis=1) <= 1e-15)
    assert np.all(np.isfinite(predicted.drop(columns="median_days_to_next").to_numpy()))
    p_purchase = predicted[["p_purchase_1d", "p_purchase_30d", "p_purchase_90d", "p_purchase_365d"]].to_numpy()
    assert np.all(np.diff(p_purchase, axis=1) >= 0.0)
    expected = predicted[["expected_occasions_1d", "expected_occasions_30d", "expected_occasions_90d"]].to_numpy()
    assert np.all(np.diff(expected, axis=1) >= 0.0)


@pytest.mark.parametrize("model_class", MODELS)
def test_clone_refit_and_row_order(model_class, simulated):
    model = model_class().fit(simulated)
    refit = clone(model).fit(simulated)
    first = model.predict(simulated.iloc[:300])
    pd.testing.assert_frame_equal(first, refit.predict(simulated.iloc[:300]))

    shuffled = simulated.sample(frac=1.0, random_state=3)
    reordered = model_class().fit(shuffled)
    for name in model_class._param_names:
        assert reordered.params_[name] == pytest.approx(model.params_[name], rel=1e-9)
    scored = reordered.predict(simulated.iloc[:300].iloc[::-1])
    pd.testing.assert_frame_equal(scored.loc[first.index], first, rtol=1e-8)


@pytest.mark.parametrize("model_class", MODELS)
def test_predictions_do_not_depend_on_time_unit(model_class, simulated):
    weeks = model_class(time_unit_days=7.0).fit(simulated)
    days = model_class(time_unit_days=1.0).fit(simulated)
    assert days.params_["alpha"] == pytest.approx(7.0 * weeks.params_["alpha"], rel=1e-4)
    assert days.log_likelihood_ == pytest.approx(weeks.log_likelihood_ - np.log(7.0) * simulated["frequency"].sum(), rel=1e-8)
    pd.testing.assert_frame_equal(days.predict(simulated.iloc[:200]), weeks.predict(simulated.iloc[:200]), rtol=1e-4)


def test_bgnbd_p_alive_is_one_without_repeat_purchase():
    model = _fitted(BGNBDModel, BG_PARAMS)
    features = _features([0, 0, 0], [0, 0, 0], [1, 200, 3000])
    assert np.all(model._p_alive(features) == 1.0)


@pytest.mark.parametrize(
    "model_class, params",
    [
        pytest.param(BGNBDModel, BG_PARAMS, id="bg_nbd"),
        pytest.param(ParetoNBDModel, PARETO_PARAMS_ALPHA_BELOW_BETA, id="pareto_nbd"),
    ],
)
def test_elapsed_acts_only_through_p_alive(model_class, params):
    """At fixed frequency and tenure, (1 - S(t)) / P(alive) does not depend on recency."""
    model = _fitted(model_class, params)
    features = _features([4, 4, 4], [20, 150, 300], [300, 300, 300])
    times = np.array([1.0, 30.0, 180.0])
    purchase = 1.0 - model._survival_matrix(features, times)
    p_alive = model._p_alive(features)
    assert p_alive[0] < p_alive[1] < p_alive[2]
    per_alive = purchase / p_alive[:, None]
    np.testing.assert_allclose(per_alive, np.broadcast_to(per_alive[2], per_alive.shape), rtol=1e-12)


# ------------------------------------------- direct numerical integration


def _gamma_quantile(shape: float, rate: float):
    return lambda level: special.gammaincinv(shape, level) / rate


def _expect(function, first_quantile, second_quantile) -> float:
    """Return E[function(U, V)] for independent U, V given by their quantile functions.

    Integrating over the quantile levels keeps the domain bounded and the
    integrand free of the density's singularities.
    """
    value, _ = integrate.dblquad(
        lambda v, u: function(first_quantile(u), second_quantile(v)), 0, 1, 0, 1, epsabs=1e-13, epsrel=1e-8
    )
    return value


def _weeks(x, t_x, T):
    return np.array([float(x)]), np.array([t_x / 7.0]), np.array([T / 7.0])


def test_bgnbd_matches_integration_of_definition():
    """Survival and expected purchases of one customer against a double integral over lambda and p."""
    r, alpha, a, b = BG_PARAMS
    x, t_x, T, t = 3, 140.0, 266.0, 60.0 / 7.0
    xs, txs, Ts = _weeks(x, t_x, T)
    p_alive = btyd_math.bgnbd_p_alive(BG_PARAMS, xs, txs, Ts)[0]

    # Given alive: lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x);
    # dropout happens only at a purchase, after it.
    rate = _gamma_quantile(r + x, alpha + Ts[0])

    def drop(level):
        return special.betaincinv(a, b + x, level)

    no_purchase = _expect(lambda v, p: np.exp(-v * t), rate, drop)
    mean_count = _expect(lambda v, p: -np.expm1(-v * p * t) / p, rate, drop)

    survival = btyd_math.bgnbd_survival(BG_PARAMS, xs, txs, Ts, np.array([t]))[0, 0]
    expected = btyd_math.bgnbd_expected_purchases(BG_PARAMS, xs, txs, Ts, np.array([t]))[0, 0]
    assert survival == pytest.approx(1.0 - p_alive * (1.0 - no_purchase), rel=1e-7)
    assert expected == pytest.approx(p_alive * mean_count, rel=1e-7)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(PARETO_PARAMS_ALPHA_BELOW_BETA, id="alpha_below_beta"),
        pytest.param(PARETO_PARAMS_ALPHA_ABOVE_BETA, id="alpha_above_beta"),
    ],
)
def test_paretonbd_matches_integration_of_definition(params):
    """Likelihood, survival and expected purchases against integrals over lambda and mu."""
    r, alpha, s, beta = params
    x, t_x, T, t = 2, 91.0, 245.0, 75.0 / 7.0
    xs, txs, Ts = _weeks(x, t_x, T)

    # Individual likelihood: alive at T, or dropped out in (t_x, T].
    def individual(v, mu):
        alive = v**x * np.exp(-(v + mu) * Ts[0])
        dead = v**x * mu / (v + mu) * (np.exp(-(v + mu) * txs[0]) - np.exp(-(v + mu) * Ts[0]))
        return alive + dead

    likelihood = _expect(individual, _gamma_quantile(r, alpha), _gamma_quantile(s, beta))
    loglik = btyd_math.paretonbd_log_likelihood(params, xs, txs, Ts)[0]
    assert loglik == pytest.approx(np.log(likelihood), rel=1e-7)

    # Given alive: lambda ~ Gamma(r + x, alpha + T), mu ~ Gamma(s, beta + T);
    # the customer may drop out at an Exp(mu) time before buying again.
    p_alive = btyd_math.paretonbd_p_alive(params, xs, txs, Ts)[0]
    rate, dropout = _gamma_quantile(r + x, alpha + Ts[0]), _gamma_quantile(s, beta + Ts[0])
    purchase = _expect(lambda v, mu: v / (v + mu) * -np.expm1(-(v + mu) * t), rate, dropout)
    mean_count = _expect(lambda v, mu: v * -np.expm1(-mu * t) / mu, rate, dropout)

    survival = btyd_math.paretonbd_survival(params, xs, txs, Ts, np.array([t]))[0, 0]
    expected = btyd_math.paretonbd_expected_purchases(params, xs, txs, Ts, np.array([t]))[0, 0]
    assert survival == pytest.approx(1.0 - p_alive * purchase, rel=1e-7)
    assert expected == pytest.approx(p_alive * mean_count, rel=1e-7)


@pytest.mark.parametrize(
    "p, q, A, B, lower, upper",
    [
        pytest.param(505.6, 2.0, 100.0, 5.0, 0.0, 30.0, id="integer_q_z_near_one"),
        pytest.param(0.7, 1.6, 3.0, 40.0, 2.0, 50.0, id="alpha_below_beta"),
        pytest.param(30.5, 0.6, 520.0, 500.0, 0.0, np.inf, id="to_infinity"),
        pytest.param(2.0, 1.0, 1.0, 1e-3, 0.0, 0.5, id="integer_c_minus_a_minus_b"),
    ],
)
def test_power_integral_matches_quadrature(p, q, A, B, lower, upper):
    """Closed form of the Pareto/NBD integral, also where scipy's hyp2f1 returns NaN."""
    scale = np.log(A + lower) * p + np.log(B + lower) * q
    reference, _ = integrate.quad(
        lambda w: np.exp(scale - p * np.log(A + w) - q * np.log(B + w)), lower, upper, epsabs=0, epsrel=1e-12, limit=500
    )
    value = btyd_math.log_power_integral(p, q, A, B, lower, upper)
    assert value + scale == pytest.approx(np.log(reference), abs=1e-9)


def test_bgnbd_expectation_where_closed_form_is_unreliable():
    """z above 0.9 with an integer c - a - b, and a within 1e-4 of 1."""
    x, t_x, T = np.array([100.0]), np.array([90.0]), np.array([100.0])

    # r = a makes c - a - b an integer; the reference is scipy.integrate.quad
    # of the expectation over p ~ Beta(a, b + x), computed once.
    long_horizon = btyd_math.bgnbd_expected_purchases((0.5, 2.0, 0.5, 3.0), x, t_x, T, np.array([1000.0]))[0, 0]
    assert long_horizon == pytest.approx(2.941902291446, rel=1e-8)

    # Just inside the band around a = 1 (integrated) and just outside it
    # (closed form) the expectation is continuous.
    inside = btyd_math.bgnbd_expected_purchases((0.4, 3.0, 1.0000999, 2.0), x, t_x, T, np.array([13.0]))[0, 0]
    outside = btyd_math.bgnbd_expected_purchases((0.4, 3.0, 1.0001001, 2.0), x, t_x, T, np.array([13.0]))[0, 0]
    assert inside == pytest.approx(outside, rel=1e-6)


# ------------------------------------------------------------- lifetimes


@pytest.mark.shared_data
def test_same_as_lifetimes_at_published_parameters(cdnow_sample):
    """P(alive) and conditional expected purchases equal lifetimes 0.11.3 at the same parameters."""
    lifetimes = pytest.importorskip("lifetimes")
    x = cdnow_sample["frequency"].to_numpy(dtype=float)
    t_x = cdnow_sample["recency_days"].to_numpy() / 7.0
    T = cdnow_sample["tenure_days"].to_numpy() / 7.0
    horizon_days = 91

    cases = [
        (BGNBDModel, BG_PARAMS, lifetimes.BetaGeoFitter, ("r", "alpha", "a", "b")),
        (ParetoNBDModel, PARETO_PARAMS_ALPHA_BELOW_BETA, lifetimes.ParetoNBDFitter, ("r", "alpha", "s", "beta")),
    ]
    for model_class, params, peer_class, names in cases:
        model = _fitted(model_class, params)
        peer = peer_class()
        peer.params_ = pd.Series(dict(zip(names, params)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer_alive = np.asarray(peer.conditional_probability_alive(x, t_x, T))
            peer_count = np.asarray(peer.conditional_expected_number_of_purchases_up_to_time(horizon_days / 7.0, x, t_x, T))
        np.testing.assert_allclose(model._p_alive(cdnow_sample), peer_alive, rtol=1e-4)
        ours = model._expected_occasions(cdnow_sample, np.array([horizon_days]))[:, 0]
        np.testing.assert_allclose(ours, peer_count, rtol=1e-4)


# ------------------------------------------------------- settings, input


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(
    "setting, value",
    [
        pytest.param("time_unit_days", 0.0, id="zero_time_unit"),
        pytest.param("time_unit_days", "7", id="text_time_unit"),
        pytest.param("penalizer", -0.1, id="negative_penalizer"),
        pytest.param("max_iter", 0, id="zero_max_iter"),
        pytest.param("max_iter", 10.5, id="fractional_max_iter"),
        pytest.param("tol", float("nan"), id="nan_tol"),
        pytest.param("tol", True, id="bool_tol"),
    ],
)
def test_invalid_setting_is_rejected(model_class, setting, value, simulated):
    with pytest.raises(ValueError, match=rf"setting {setting}=.* is invalid: it must be"):
        model_class(**{setting: value}).fit(simulated)


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(
    "column, value, message",
    [
        pytest.param("recency_days", -3.0, "a negative frequency", id="negative"),
        pytest.param("recency_days", 500.0, "recency_days greater than tenure_days", id="recency_above_tenure"),
        pytest.param("frequency", 2.5, "a frequency that is not a whole number", id="fractional_frequency"),
        pytest.param("tenure_days", np.nan, "a missing or infinite", id="missing"),
    ],
)
def test_invalid_history_is_rejected(model_class, column, value, message):
    features = _features([0, 2, 3], [0, 40, 80], [90, 100, 120]).drop(columns="elapsed_days")
    features[column] = features[column].astype(float)
    features.loc["c00001", column] = value
    with pytest.raises(ValueError, match=rf"1 of 3 customers have {message}.*c00001"):
        model_class().fit(features)


def test_repeatless_customer_with_recency_is_rejected():
    features = _features([0, 1], [5, 10], [20, 20])
    with pytest.raises(ValueError, match="frequency 0 with recency_days > 0"):
        BGNBDModel().fit(features)


def test_inconsistent_elapsed_days_is_rejected():
    features = _features([1, 2], [10, 20], [30, 40])
    model = _fitted(BGNBDModel, BG_PARAMS)
    features.loc["c00000", "elapsed_days"] = 3.0
    with pytest.raises(ValueError, match="elapsed_days different from tenure_days - recency_days"):
        model.predict(features)


def test_missing_column_is_rejected():
    features = _features([1, 2], [10, 20], [30, 40]).drop(columns="tenure_days")
    with pytest.raises(ValueError, match=r"missing"):
        ParetoNBDModel().fit(features)


def test_bad_sample_weight_is_rejected(simulated):
    with pytest.raises(ValueError, match="sample_weight has shape"):
        BGNBDModel().fit(simulated, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        BGNBDModel().fit(simulated, sample_weight=-np.ones(len(simulated)))


@pytest.mark.parametrize("model_class", MODELS)
def test_too_few_iterations_warn(model_class, simulated):
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1, tol=1e-10"):
        model = model_class(max_iter=1).fit(simulated)
    assert not model.converged_


@pytest.mark.parametrize("model_class", MODELS)
def test_penalizer_pulls_parameters_toward_one(model_class, simulated):
    plain = model_class().fit(simulated)
    penalized = model_class(penalizer=0.1).fit(simulated)
    size = [np.sum(np.log(list(m.params_.values())) ** 2) for m in (plain, penalized)]
    assert size[1] < size[0]
    assert penalized.log_likelihood_ < plain.log_likelihood_


def test_bg_nbd_counts_finite_without_dropout():
    # Simulated logs with little dropout drive a and b into the thousands,
    # where scipy's hyp2f1 overflows; expected counts must stay finite.
    import warnings as _warnings

    from rtt_models.data import load_transactions, simulate_transactions
    from rtt_models.features import build_features
    from rtt_models.models import make_model

    data = simulate_transactions(300, seed=1)
    features = build_features(load_transactions(data.transactions), "2023-03-31")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        model = make_model("bg_nbd").fit(features)
    assert model.params_["a"] > 1_000
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        out = model.predict(features, horizons=(30, 90))
    assert np.isfinite(out["expected_occasions_90d"]).all()
    assert (out["expected_occasions_90d"] >= out["p_purchase_90d"] - 1e-9).all()


@pytest.mark.parametrize("model_class", MODELS)
def test_fit_without_dropout_warns(model_class):
    # Poisson buyers observed 100 to 400 days who never lapse: the fit finds
    # no dropout and warns. Customers with finite lifetimes do not warn.
    rng = np.random.default_rng(11)
    n = 3000
    tenure = rng.integers(100, 401, size=n).astype(float)
    frequency = rng.poisson(rng.gamma(0.8, 1 / 20.0, size=n) * tenure)
    last = tenure * rng.uniform(size=n) ** (1.0 / np.maximum(frequency, 1))
    recency = np.where(frequency > 0, np.clip(np.round(last), 1, tenure), 0.0)
    with pytest.warns(ConvergenceWarning, match="almost no dropout"):
        model_class().fit(_features(frequency, recency, tenure))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model_class().fit(_simulate_features(1500, seed=7))
    assert not [w for w in caught if "almost no dropout" in str(w.message)]


def test_bg_nbd_closed_form_summary_equals_grid():
    # The closed-form median and restricted mean agree with the generic
    # evaluation of the same curve on a day grid.
    from rtt_models.data import load_transactions, simulate_transactions
    from rtt_models.features import build_features
    from rtt_models.models import make_model

    data = simulate_transactions(1_500, seed=4)
    features = build_features(load_transactions(data.transactions), "2023-06-30")
    model = make_model("bg_nbd").fit(features)
    frame = model._check_features(features)
    horizons = np.array([30, 90])
    closed = model._closed_form_summary(frame, horizons)
    grid = model._summary_on_grid(frame, horizons)
    np.testing.assert_allclose(closed["p_purchase"], grid["p_purchase"], rtol=1e-9, atol=1e-12)
    # The grid uses the trapezoid rule on whole days, which overstates the
    # integral of a convex curve slightly; the closed form is exact.
    np.testing.assert_allclose(closed["restricted_mean_days"], grid["restricted_mean_days"], rtol=1e-3)
    assert (closed["restricted_mean_days"] <= grid["restricted_mean_days"] + 1e-9).all()
    both = np.isfinite(closed["median_days"]) & np.isfinite(grid["median_days"])
    assert both.sum() > 100
    np.testing.assert_allclose(closed["median_days"][both], grid["median_days"][both], rtol=2e-2, atol=0.5)
    assert (np.isnan(closed["median_days"]) == np.isnan(grid["median_days"])).mean() > 0.99
