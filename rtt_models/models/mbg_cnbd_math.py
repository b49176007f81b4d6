"""Log-likelihood and predictive quantities of the MBG/CNBD-k model.

Every function works on arrays in the model's own time unit (weeks by
default) and takes one customer per element:

* ``x``: repeat purchases in the calibration period (frequency);
* ``t_x``: time from the first to the last purchase (BTYD recency);
* ``T``: time from the first purchase to the cut-off (tenure);
* ``litt``: sum of the natural logs of the ``x`` inter-purchase times.

``params`` is ``(r, alpha, a, b)`` and ``k`` the integer Erlang shape.

Derivation
----------
While active, a customer's inter-purchase times are Erlang-k with rate
lambda, ``f(g) = lambda**k g**(k-1) exp(-lambda g) / (k-1)!``. Right after
every purchase, the first one included, the customer drops out for good with
probability p. Given (lambda, p), a history with x repeat purchases whose
gaps sum to ``t_x`` has likelihood

    (1-p)**x * prod_i f(g_i) * [p + (1-p) * S_k(lambda u)],   u = T - t_x,

where ``prod_i f(g_i) = lambda**(k x) exp(-lambda t_x) exp((k-1) litt) / ((k-1)!)**x``
and ``S_k(y) = sum_{j<k} y**j exp(-y) / j!`` is the Erlang-k survival of the
open gap. The bracket splits the history into "dead" (dropout right after the
last purchase) and "alive" (the open gap is still running). With
lambda ~ Gamma(r, alpha) every term is a gamma integral,
``E[lambda**m exp(-lambda s)] = Gamma(r+m) alpha**r / (Gamma(r) (alpha+s)**(r+m))``,
and with p ~ Beta(a, b), ``E[p (1-p)**x] = B(a+1, b+x) / B(a, b)`` and
``E[(1-p)**(x+1)] = B(a, b+x+1) / B(a, b)``. With ``R = r + k x``:

    L = exp((k-1) litt - x log((k-1)!)) * alpha**r / (Gamma(r) B(a, b))
        * [ B(a+1, b+x) Gamma(R) / (alpha+t_x)**R
          + B(a, b+x+1) sum_{j<k} u**j / j! Gamma(R+j) / (alpha+T)**(R+j) ].

Everything is computed in log space (``gammaln``, ``betaln``,
``logsumexp``), so customers with hundreds of purchases stay finite.

References
----------
Reutterer, Platzer and Schroeder (2020), "Leveraging purchase regularity for
predicting customer behavior the easy way", International Journal of Research
in Marketing 38(1); Batislam, Denizel and Filiztekin (2007), "Empirical
validation and comparison of models for customer base analysis",
International Journal of Research in Marketing 24(3): the MBG/NBD (k = 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, gammaln, logsumexp, softmax, xlogy

from rtt_models.models.btyd_math import distinct_rows

# The renewal series for expected purchases stops once a term is below this
# fraction of the running sum. Terms never increase and their tail decays about
# geometrically with ratio z**k, so the relative error is near 1e-12 / (1 - z**k).
_SERIES_RTOL = 1e-12

# Survival is evaluated in chunks of at most this many (customer, time)
# elements, about 32 MB per float64 work array.
_CHUNK_ELEMENTS = 4_000_000


def _log_dead(r, alpha, a, b, k, x, t_x):
    """Log of the dead history, without the factors common to both histories."""
    shape = r + k * x
    return betaln(a + 1.0, b + x) + gammaln(shape) - shape * np.log(alpha + t_x)


def _log_alive(r, alpha, a, b, k, x, t_x, T):
    """Log of the alive history per open-gap phase j = 0..k-1, shape ``x.shape + (k,)``."""
    j = np.arange(k, dtype=float)
    x, t_x, T = (np.asarray(v, dtype=float)[..., None] for v in (x, t_x, T))
    shape = r + k * x + j
    return (
        betaln(a, b + x + 1.0)
        + gammaln(shape)
        - gammaln(j + 1.0)
        + xlogy(j, T - t_x)
        - shape * np.log(alpha + T)
    )


def log_likelihood(params, k: int, x, t_x, T, litt) -> np.ndarray:
    """Return the MBG/CNBD-k log-likelihood of each customer, shape (n,).

    Parameters
    ----------
    params : sequence of 4 float
        ``r, alpha, a, b``; ``alpha`` is in the time unit of ``t_x`` and ``T``.
    k : int
        Erlang shape of the inter-purchase times, >= 1.
    x, t_x, T, litt : ndarray, shape (n,)
        Repeat purchases, recency, tenure and the sum of log inter-purchase
        times, all in that time unit (``litt`` is 0 where ``x`` is 0).
    """
    r, alpha, a, b = params
    common = r * np.log(alpha) - gammaln(r) - betaln(a, b) + (k - 1) * litt - x * gammaln(k)
    dead = _log_dead(r, alpha, a, b, k, x, t_x)
    alive = _log_alive(r, alpha, a, b, k, x, t_x, T)
    return common + logsumexp(np.concatenate([dead[:, None], alive], axis=1), axis=1)


def log_likelihood_gradient(params, k: int, x, t_x, T) -> np.ndarray:
    """Return d loglik / d log(param) per customer, shape (n, 4), for ``r, alpha, a, b``.

    ``litt`` does not enter: its term does not depend on the parameters.
    """
    r, alpha, a, b = params
    j = np.arange(k, dtype=float)[None, :]
    shape = (r + k * x)[:, None]
    dead = _log_dead(r, alpha, a, b, k, x, t_x)
    alive = _log_alive(r, alpha, a, b, k, x, t_x, T)

    # Posterior share of each history (dead, then alive with j phases done).
    shares = softmax(np.concatenate([dead[:, None], alive], axis=1), axis=1)
    w_dead, w_alive = shares[:, 0], shares[:, 1:]
    p_alive = w_alive.sum(axis=1)
    log_span_t_x = np.log(alpha + t_x)
    log_span_T = np.log(alpha + T)[:, None]

    d_r = (
        np.log(alpha)
        - digamma(r)
        + w_dead * (digamma(shape[:, 0]) - log_span_t_x)
        + (w_alive * (digamma(shape + j) - log_span_T)).sum(axis=1)
    )
    d_alpha = r / alpha - w_dead * shape[:, 0] / (alpha + t_x) - (w_alive * (shape + j)).sum(axis=1) / (alpha + T)

    # Derivatives of betaln(p, q): d/dp = psi(p) - psi(p + q), d/dq = psi(q) - psi(p + q).
    psi_total = digamma(a + b + x + 1.0)
    d_a = w_dead * digamma(a + 1.0) + p_alive * digamma(a) - psi_total - (digamma(a) - digamma(a + b))
    d_b = w_dead * digamma(b + x) + p_alive * digamma(b + x + 1.0) - psi_total - (digamma(b) - digamma(a + b))

    # Chain rule to log-parameters: d/dlog(p) = p * d/dp.
    return np.column_stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])


def p_alive(params, k: int, x, t_x, T) -> np.ndarray:
    """Return P(alive at T), shape (n,): the posterior share of the alive history."""
    r, alpha, a, b = params
    dead = _log_dead(r, alpha, a, b, k, x, t_x)
    alive = logsumexp(_log_alive(r, alpha, a, b, k, x, t_x, T), axis=-1)
    return np.exp(alive - np.logaddexp(alive, dead))


def survival(params, k: int, x, t_x, T, t) -> np.ndarray:
    """Return P(no purchase in (T, T + t]), shape (n, m) for ``t`` of shape (m,).

    No purchase up to ``T + t`` is the same observation as the calibration
    history with the cut-off moved to ``T + t``, so
    ``S(t) = L(x, t_x, T + t) / L(x, t_x, T)``, a ratio of the likelihood
    above in closed form. Equivalently,
    ``S(t) = 1 - P(alive) * (1 - E[S_k(lambda (u + t)) / S_k(lambda u)])``
    with the expectation over the posterior of lambda given alive; the open
    gap u = T - t_x enters through the Erlang-k survival ``S_k``, so unlike
    BG/NBD the curve depends on the time since the last purchase beyond
    P(alive) when k > 1.
    """
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    (ux, ut_x, uT), inverse = distinct_rows(x, t_x, T)
    out = np.empty((len(ux), len(t)))
    step = max(1, _CHUNK_ELEMENTS // max(1, len(t)))
    for start in range(0, len(ux), step):
        rows = slice(start, start + step)
        cx, ct_x, cT = ux[rows, None], ut_x[rows, None], uT[rows, None]
        dead = _log_dead(r, alpha, a, b, k, cx, ct_x)
        now = np.logaddexp(dead, _log_alive_total(r, alpha, a, b, k, cx, ct_x, cT))
        later = np.logaddexp(dead, _log_alive_total(r, alpha, a, b, k, cx, ct_x, cT + t[None, :]))
        out[rows] = np.exp(np.minimum(later - now, 0.0))
    return out[inverse]


def purchase_if_alive(params, k: int, x, t_x, T, t) -> tuple[np.ndarray, np.ndarray]:
    """Return P(purchase in (T, T + t] | alive at T) and its derivative in t, each of shape (n, m).

    From :func:`survival`, ``S(t) = 1 - P(alive) * g(t)`` with
    ``g(t) = 1 - exp(A(T + t) - A(T))``, where ``A`` is the log of the alive
    history as a function of the cut-off. So
    ``g'(t) = -exp(A(T + t) - A(T)) * A'(T + t)``, and ``A'`` comes from the
    polynomial form of :func:`_log_alive_total`.

    Parameters
    ----------
    params : sequence of 4 float
        ``r, alpha, a, b``.
    k : int
        Erlang shape.
    x, t_x, T : ndarray, shape (n,)
        Repeat purchases, recency and tenure in the model's time unit.
    t : ndarray, shape (m,)
        Times after T, >= 0, in the same unit.
    """
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    value = np.empty((len(x), len(t)))
    slope = np.empty((len(x), len(t)))
    step = max(1, _CHUNK_ELEMENTS // max(1, len(t)))
    for start in range(0, len(x), step):
        rows = slice(start, start + step)
        cx, ct_x, cT = x[rows, None], t_x[rows, None], T[rows, None]
        now = _log_alive_total(r, alpha, a, b, k, cx, ct_x, cT)
        later, later_slope = _log_alive_total(r, alpha, a, b, k, cx, ct_x, cT + t[None, :], with_slope=True)
        change = np.minimum(later - now, 0.0)
        value[rows] = -np.expm1(change)
        slope[rows] = -np.exp(change) * later_slope
    return value, slope


def _log_alive_total(r, alpha, a, b, k, x, t_x, T, with_slope: bool = False):
    """Log of the alive history summed over j, for ``x`` and ``t_x`` of shape (n, 1) and ``T`` of shape (n, m).

    With ``rho = (T - t_x) / (alpha + T)`` the j-th term is
    ``exp(A_j) * rho**j / (alpha + T)**R``, where ``A_j`` does not depend on
    T; the sum is a polynomial in rho with coefficients scaled by their
    maximum, so every term lies in [0, 1] and the largest coefficient is 1.
    With ``with_slope``, also return the derivative of the log in T,
    ``-R / (alpha + T) + P'(rho) / P(rho) * (alpha + t_x) / (alpha + T)**2``.
    """
    j = np.arange(k, dtype=float)
    shape = r + k * x
    coefficients = betaln(a, b + x + 1.0) + gammaln(shape + j) - gammaln(j + 1.0)
    top = coefficients.max(axis=1, keepdims=True)
    scaled = np.exp(coefficients - top)
    span = alpha + T
    rho = (T - t_x) / span
    polynomial = np.broadcast_to(scaled[:, k - 1 : k], rho.shape).copy()
    derivative = np.zeros(rho.shape)
    for i in range(k - 2, -1, -1):
        derivative = derivative * rho + polynomial
        polynomial = polynomial * rho + scaled[:, i : i + 1]
    log_total = top - shape * np.log(span) + np.log(polynomial)
    if not with_slope:
        return log_total
    return log_total, -shape / span + derivative / polynomial * (alpha + t_x) / span**2


def expected_purchases(params, k: int, x, t_x, T, t) -> np.ndarray:
    """Return the expected purchases in (T, T + t], shape (n, m) for ``t`` of shape (m,).

    Exact series, no simulation and no quadrature. An Erlang-k renewal
    process is a Poisson process of rate lambda in which every k-th event is
    a purchase. Given alive at T with u = T - t_x open, the number J of
    events since the last purchase is Poisson(lambda u) restricted to
    J < k, and the joint posterior of (lambda, J = j) is
    Gamma(r + k x + j, alpha + T) for lambda with weights proportional to
    the alive terms of the likelihood. The events M in (T, T + t] are then
    negative binomial, ``P(M >= m) = I_z(m, r + k x + j)`` with
    ``z = t / (alpha + T + t)`` (regularized incomplete beta). The n-th
    purchase happens when ``J + M >= n k`` and the customer survived the n - 1
    dropout chances before it, ``c_n = E[(1-p)**(n-1)] = B(a, b+x+n) / B(a, b+x+1)``
    over the posterior p ~ Beta(a, b + x + 1). So

        E[N(t)] = P(alive) * sum_{j<k} w_j sum_{n>=1} c_n I_z(n k - j, r + k x + j).

    The inner sums depend on (x, T, t, j) only, so they are computed once per
    distinct (x, T) pair, each until its term falls below 1e-12 of its running
    sum; the weights w_j carry the rest of the history.
    """
    (ux, ut_x, uT), inverse = distinct_rows(x, t_x, T)
    return expected_purchases_of_histories(params, k, ux, ut_x, uT, t)[inverse]


def expected_purchases_of_histories(params, k: int, ux, ut_x, uT, t) -> np.ndarray:
    """Return :func:`expected_purchases` for rows already distinct in (x, t_x, T), shape (n, m)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)

    # Posterior weights of the phase J given alive, one row per distinct customer.
    alive = _log_alive(r, alpha, a, b, k, ux, ut_x, uT)
    weights = softmax(alive, axis=1)
    dead = _log_dead(r, alpha, a, b, k, ux, ut_x)
    alive_share = np.exp(logsumexp(alive, axis=1) - np.logaddexp(logsumexp(alive, axis=1), dead))

    # The inner sums depend on (x, T) only, which far fewer rows share.
    (px, pT), pair = distinct_rows(ux, uT)
    per_phase = _phase_sums(r, alpha, a, b, k, px, pT, t)
    per_alive = np.einsum("ij,itj->it", weights, per_phase[pair])
    return alive_share[:, None] * per_alive


def _phase_sums(r, alpha, a, b, k: int, x, T, t) -> np.ndarray:
    """Return ``sum_n c_n I_z(n k - j, r + k x + j)`` per (x, T) pair, time and phase j, shape (n, m, k).

    One work element per (pair, time, phase); the work arrays are compacted
    as elements converge, so late steps only touch long tails.
    """
    j = np.arange(k, dtype=float)
    n_pairs, n_times = len(x), len(t)
    pair = np.repeat(np.arange(n_pairs), n_times * k)
    phase = np.tile(j, n_pairs * n_times)
    z = np.repeat((t[None, :] / (alpha + T[:, None] + t[None, :])).ravel(), k)
    total = np.zeros(pair.size)
    element = np.flatnonzero(z > 0)
    shape = r + k * x[pair[element]] + phase[element]
    phase_work, z_work = phase[element], z[element]
    b_post = b + x[pair[element]] + 1.0
    log_beta_post = betaln(a, b_post)
    running = np.zeros(element.size)
    n = 1
    while element.size:
        survive = np.exp(betaln(a, b_post + n - 1.0) - log_beta_post)
        term = survive * betainc(n * k - phase_work, shape, z_work)
        running += term
        moving = term > _SERIES_RTOL * running
        if not moving.all():
            total[element[~moving]] = running[~moving]
            element, running, shape, phase_work = element[moving], running[moving], shape[moving], phase_work[moving]
            z_work, b_post, log_beta_post = z_work[moving], b_post[moving], log_beta_post[moving]
        n += 1
    return total.reshape(n_pairs, n_times, k)
