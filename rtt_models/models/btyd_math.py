"""Log-likelihoods and closed forms of the BG/NBD and Pareto/NBD models.

Every function works on arrays in the model's own time unit (weeks by
default) and takes one customer per element:

* ``x``: repeat purchases in the calibration period (frequency);
* ``t_x``: time from the first to the last purchase (BTYD recency);
* ``T``: time from the first purchase to the cut-off (tenure).

Everything is computed in log space, with ``gammaln``, ``betaln``,
``logaddexp`` and the Gauss hypergeometric function only at arguments where
it stays bounded, so customers with hundreds of repeat purchases and years of
tenure give finite results.

References
----------
Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2): the BG/NBD
likelihood, P(alive) and conditional expectation.
Schmittlein, Morrison and Colombo (1987), "Counting Your Customers: Who Are
They and What Will They Do Next?", Management Science 33(1); Fader, Hardie
and Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
Analysis", Journal of Marketing Research 42(4): the Pareto/NBD model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad_vec
from scipy.special import betaincinv, betaln, digamma, expit, gammaln, hyp2f1

from rtt_models.models.base import distinct_row_index

# The BG/NBD closed-form expectation divides F - 1 by (a - 1), so rounding
# errors of about 1e-12 grow by 1 / |a - 1|. Within this distance of a = 1 the
# expectation is integrated numerically instead.
_NEAR_ONE = 1e-4

# Up to this z, scipy's hyp2f1 sums the power series and agrees with the
# continued fraction below to about 1e-14 (checked for p + q > 1, p up to
# 5,000, q up to 10). Above it, scipy 1.17 switches to a 1 - z transformation
# that returns NaN or loses digits when c - a - b is (near) an integer: for
# example hyp2f1(1, 505, 507, 0.95) is NaN. The continued fraction is used there.
_SERIES_MAX_Z = 0.9


def _log_diff(log_big: np.ndarray, log_small: np.ndarray) -> np.ndarray:
    """Return log(exp(log_big) - exp(log_small)) for log_big >= log_small, -inf where equal."""
    gap = np.minimum(log_small - log_big, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_big + np.log(-np.expm1(gap))
    return np.where(np.isfinite(log_small), out, log_big)


def _one_minus_power(exponent: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """Return 1 - exp(-exponent * log_ratio) without cancellation."""
    return -np.expm1(-exponent * log_ratio)


def distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Return the distinct rows of equal-length columns and each row's index into them.

    See :func:`~rtt_models.models.base.distinct_row_index`; distinct rows
    come in order of first appearance.

    Returns
    -------
    distinct : list of ndarray, each of shape (k,)
        The columns of the k distinct rows.
    inverse : ndarray of int, shape (n,)
        Index of each input row into ``distinct``.
    """
    first, inverse = distinct_row_index(*columns)
    return [np.asarray(column)[first] for column in columns], inverse


def _distinct_pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the distinct (x, T) pairs and each customer's index into them."""
    (distinct_x, distinct_T), inverse = distinct_rows(x, T)
    return distinct_x, distinct_T, inverse


# ----------------------------------------------------------------- BG/NBD


def bgnbd_log_likelihood_terms(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the three log terms of the BG/NBD individual likelihood.

    The likelihood of one customer is ``exp(head) * (exp(alive) + exp(dead))``
    where ``alive`` covers histories in which the customer is still active at
    ``T`` and ``dead`` those in which they dropped out right after the last
    purchase (only possible with ``x > 0``, else ``-inf``).

    Returns
    -------
    head, alive, dead : ndarray, shape (n,)
    """
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)

    # Dropping out after the last purchase needs x >= 1; betaln(a + 1, b - 1)
    # is undefined for x = 0 when b <= 1, so those rows are masked first.
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    dead = betaln(a + 1.0, b + x_safe - 1.0) - betaln(a, b) - (r + x_safe) * np.log(alpha + t_x)
    dead = np.where(repeat, dead, -np.inf)
    return head, alive, dead


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Return the BG/NBD log-likelihood of each customer, shape (n,).

    Parameters
    ----------
    params : sequence of 4 float
        ``r, alpha, a, b``; ``alpha`` is in the time unit of ``t_x`` and ``T``.
    x, t_x, T : ndarray, shape (n,)
        Repeat purchases, recency and tenure in that time unit.
    """
    r, alpha, a, b = params
    head, alive, dead = bgnbd_log_likelihood_terms(r, alpha, a, b, x, t_x, T)
    return head + np.logaddexp(alive, dead)


def bgnbd_log_likelihood_gradient(params, x, t_x, T) -> np.ndarray:
    """Return d loglik / d log(param) per customer, shape (n, 4), for ``r, alpha, a, b``."""
    r, alpha, a, b = params
    _, alive, dead = bgnbd_log_likelihood_terms(r, alpha, a, b, x, t_x, T)

    # Share of each history in the mixture; the two shares sum to 1.
    mixture = np.logaddexp(alive, dead)
    w_alive = np.exp(alive - mixture)
    w_dead = np.exp(dead - mixture)
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)

    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w_alive * np.log(alpha + T) - w_dead * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_dead / (alpha + t_x))

    # Derivatives of betaln(p, q): d/dp = psi(p) - psi(p + q), d/dq = psi(q) - psi(p + q).
    d_betaln_ab_a = digamma(a) - digamma(a + b)
    d_betaln_ab_b = digamma(b) - digamma(a + b)
    psi_total = digamma(a + b + x)
    d_a = (
        w_alive * (digamma(a) - psi_total)
        + np.where(repeat, w_dead * (digamma(a + 1.0) - psi_total), 0.0)
        - d_betaln_ab_a
    )
    d_b = (
        w_alive * (digamma(b + x) - psi_total)
        + np.where(repeat, w_dead * (digamma(b + x_safe - 1.0) - psi_total), 0.0)
        - d_betaln_ab_b
    )

    # Chain rule to log-parameters: d/dlog(p) = p * d/dp.
    return np.column_stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])


def bgnbd_p_alive(params, x, t_x, T) -> np.ndarray:
    """Return BG/NBD P(alive at T), shape (n,); exactly 1 where ``x == 0``.

    The ratio of the dead to the alive term of the likelihood simplifies to
    ``a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)``, so
    ``P(alive) = 1 / (1 + ratio)``, evaluated from the log of the ratio.
    """
    r, alpha, a, b = params
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    log_ratio = np.log(a / (b + x_safe - 1.0)) + (r + x_safe) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(repeat, expit(-log_ratio), 1.0)


def bgnbd_survival(params, x, t_x, T, t) -> np.ndarray:
    """Return BG/NBD P(no purchase in (T, T + t]), shape (n, m) for ``t`` of shape (m,).

    An active customer buys at Poisson rate lambda whose posterior is
    Gamma(r + x, alpha + T). Dropping out happens only right after a purchase,
    so ``S(t) = 1 - P(alive) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x))``.
    """
    r, alpha, _, _ = params
    p_alive = bgnbd_p_alive(params, x, t_x, T)

    # The purchase probability of an active customer depends on (x, T) only,
    # which repeat across customers, so it is computed once per distinct pair.
    ux, uT, inverse = _distinct_pairs(x, T)
    log_ratio = np.log1p(np.asarray(t, dtype=float)[None, :] / (alpha + uT)[:, None])
    purchase_if_alive = _one_minus_power((r + ux)[:, None], log_ratio)
    return 1.0 - p_alive[:, None] * purchase_if_alive[inverse]


def bgnbd_expected_purchases(params, x, t_x, T, t, p_alive: np.ndarray | None = None) -> np.ndarray:
    """Return the BG/NBD expected purchases in (T, T + t], shape (n, m).

    The published closed form is
    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))**(r+x)
    * 2F1(r+x, b+x; a+b+x-1; z)] * P(alive)`` with ``z = t/(alpha+T+t)``.
    Euler's transformation ``2F1(A, B; C; z) = (1-z)**(C-A-B) 2F1(C-A, C-B; C; z)``
    turns the bracket into ``1 - (1-z)**(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``,
    whose first two parameters do not grow with ``x`` and whose value stays
    near 1, so it neither overflows nor loses digits for large ``x`` and ``T``.

    Where that evaluation is not reliable (z above 0.9, where scipy's
    hyp2f1 can return NaN, or ``a`` within 1e-4 of 1, where the division by
    ``a - 1`` cancels digits) the expectation is instead integrated
    numerically over the dropout probability, see
    :func:`_bgnbd_expected_by_quadrature`. The bracket depends on (x, T)
    only, so it is evaluated once per distinct pair. ``p_alive`` may pass
    P(alive) of the same customers when it is already known.
    """
    r, alpha, a, b = params
    if p_alive is None:
        p_alive = bgnbd_p_alive(params, x, t_x, T)
    t = np.asarray(t, dtype=float)
    ux, uT, inverse = _distinct_pairs(x, T)
    x_grid, T_grid, t_grid = np.broadcast_arrays(ux[:, None], uT[:, None], t[None, :])
    span = alpha + T_grid
    z = t_grid / (span + t_grid)
    per_alive = np.empty(z.shape)

    # Closed form: bracket / (a - 1) = (1 - (1-z)**B) / B - (1-z)**B * (F - 1) / B with B = a - 1.
    shape = a - 1.0
    closed = (z <= _SERIES_MAX_Z) & (abs(shape) >= _NEAR_ONE)
    if closed.any():
        zc, xc = z[closed], x_grid[closed]
        log_one_minus_z = -np.log1p(t_grid[closed] / span[closed])
        c = a + b + xc - 1.0
        power_part = -np.expm1(shape * log_one_minus_z) / shape
        with np.errstate(invalid="ignore", over="ignore"):
            hyper_minus_one = hyp2f1(a + b - 1.0 - r, shape, c, zc) - 1.0
            per_alive[closed] = c * (power_part - np.exp(shape * log_one_minus_z) * hyper_minus_one / shape)
        # With a and b in the thousands (no dropout in the data) hyp2f1 can
        # return inf or NaN; those entries are integrated instead.
        closed[closed] = np.isfinite(per_alive[closed])
    if not closed.all():
        per_alive[~closed] = _bgnbd_expected_by_quadrature(
            params, x_grid[~closed], t_grid[~closed] / span[~closed]
        )
    return p_alive[:, None] * per_alive[inverse]


def _bgnbd_expected_by_quadrature(params, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Return the BG/NBD expected purchases of an active customer by numerical integration.

    Given alive at T, purchase rate lambda and dropout probability p, the
    expected purchases up to ``t`` are ``(1 - exp(-lambda p t)) / p``.
    Averaging lambda over Gamma(r + x, alpha + T) gives
    ``g(p) = (1 - (1 + p u)**-(r+x)) / p`` with ``u = t / (alpha + T)``,
    which lies between ``g(1)`` and ``(r + x) u``. Its mean over
    p ~ Beta(a, b + x) is integrated over the quantile level y of p,
    ``E[g(p)] = integral_0^1 g(Q(y)) dy``, so the integrand stays bounded
    whatever the shape of the beta density. ``scipy.integrate.quad_vec``
    integrates every element at once.
    """
    r, _, a, b = params
    k = r + x

    def integrand(y):
        p = betaincinv(a, b + x, y)
        positive = p > 0
        p_safe = np.where(positive, p, 1.0)
        return np.where(positive, -np.expm1(-k * np.log1p(p_safe * u)) / p_safe, k * u)

    value, _ = quad_vec(integrand, 0.0, 1.0, epsabs=0.0, epsrel=1e-10, limit=2000)
    return value


# ------------------------------------------------------------- Pareto/NBD


# The continued fraction stops once a step changes the value by less than this
# relative amount, or after this many steps (z = 0.9999 needs about 1,600).
_FRACTION_RTOL = 1e-16
_FRACTION_MAX_STEPS = 100_000


def _hyp2f1_one(p, q, z) -> np.ndarray:
    """Return the Gauss hypergeometric 2F1(1, p; p + q; z) for p + q > 1, q > 0, 0 <= z < 1."""
    p, q, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, z)))
    out = np.empty(z.shape)
    series = z <= _SERIES_MAX_Z
    out[series] = hyp2f1(1.0, p[series], p[series] + q[series], z[series])
    near_one = ~series
    if near_one.any():
        out[near_one] = _hyp2f1_one_fraction(p[near_one], q[near_one], z[near_one])
    return out


def _hyp2f1_one_fraction(p: np.ndarray, q: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Evaluate 2F1(1, p; p + q; z) by the continued fraction of the incomplete beta function.

    With ``K = p + q - 1``, ``2F1(1, p; K + 1; z) = 1 / (1 + d1 / (1 + d2 / (1 + ...)))``,
    ``d(2m) = m (1 - q - m) z / ((K + 2m - 1)(K + 2m))`` and
    ``d(2m+1) = -(K + m)(p + m) z / ((K + 2m)(K + 2m + 1))`` (DLMF 8.17.22 with
    a = K, b = 1 - q). It converges for every z < 1, also where c - a - b is
    an integer. The fraction is evaluated by the modified Lentz method, and
    converged elements are dropped from the work arrays every 32 steps.
    """
    K = p + q - 1.0
    tiny = 1e-300
    value = np.ones_like(z)
    lentz_c = np.ones_like(z)
    lentz_d = np.zeros_like(z)
    active = np.arange(z.size)
    kp, kq, kK, kz = p, q, K, z
    for step in range(1, _FRACTION_MAX_STEPS):
        m = step // 2
        if step % 2 == 0:
            d = m * (1.0 - kq - m) * kz / ((kK + 2 * m - 1.0) * (kK + 2 * m))
        else:
            d = -(kK + m) * (kp + m) * kz / ((kK + 2 * m) * (kK + 2 * m + 1.0))
        lentz_d = 1.0 + d * lentz_d
        lentz_d = np.where(np.abs(lentz_d) < tiny, tiny, lentz_d)
        lentz_c = 1.0 + d / lentz_c
        lentz_c = np.where(np.abs(lentz_c) < tiny, tiny, lentz_c)
        lentz_d = 1.0 / lentz_d
        delta = lentz_c * lentz_d
        value[active] *= delta
        moving = np.abs(delta - 1.0) > _FRACTION_RTOL
        if not moving.any():
            break
        if step % 32 == 0:
            active, lentz_c, lentz_d = active[moving], lentz_c[moving], lentz_d[moving]
            kp, kq, kK, kz = kp[moving], kq[moving], kK[moving], kz[moving]
    return 1.0 / value


def _log_antiderivative(p, q, A, B, w) -> np.ndarray:
    """Return log|G(w)| where G' (w) = (A + w)**-p * (B + w)**-q and G(inf) = 0.

    With ``K = p + q - 1 > 0`` and ``A >= B``,
    ``G(w) = -(A+w)**-p * (B+w)**(1-q) * 2F1(1, p; p+q; (A-B)/(A+w)) / K``;
    for ``A < B`` the roles of (p, A) and (q, B) swap. This is the classical
    ``(A+w)**-K * 2F1(K, q; K+1; (A-B)/(A+w)) / K`` after Euler's
    transformation, which keeps the hypergeometric factor bounded by
    ``(1-z)**(1-q)`` instead of growing like ``(A+w)**K``.
    ``w = inf`` gives ``-inf``.
    """
    p, q, A, B, w = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (p, q, A, B, w)))
    first_larger = A >= B
    p1, q1 = np.where(first_larger, p, q), np.where(first_larger, q, p)
    A1, B1 = np.where(first_larger, A, B), np.where(first_larger, B, A)

    finite = np.isfinite(w)
    w_safe = np.where(finite, w, 0.0)
    z = (A1 - B1) / (A1 + w_safe)
    log_g = (
        -p1 * np.log(A1 + w_safe)
        + (1.0 - q1) * np.log(B1 + w_safe)
        + np.log(_hyp2f1_one(p1, q1, z))
        - np.log(p1 + q1 - 1.0)
    )
    return np.where(finite, log_g, -np.inf)


def log_power_integral(p, q, A, B, lower, upper) -> np.ndarray:
    """Return log of the integral of (A + w)**-p (B + w)**-q over w in [lower, upper].

    Requires ``p + q > 1``, ``A + lower > 0``, ``B + lower > 0`` and
    ``upper >= lower``; ``upper`` may be ``inf``. Returns ``-inf`` where
    ``upper == lower``.
    """
    return _log_diff(_log_antiderivative(p, q, A, B, lower), _log_antiderivative(p, q, A, B, upper))


@dataclass(frozen=True)
class DropoutLimits:
    """Distinct (x, time) pairs at the limits of the Pareto/NBD dropout integral.

    The integral over [t_x, T] is a difference of one antiderivative at two
    limits that depend only on (x, t_x) and (x, T). Customer summaries repeat
    these pairs often (CDNOW: 2,149 distinct pairs for 23,570 customers), so
    the hypergeometric function is evaluated once per distinct pair.

    Attributes
    ----------
    x, w : ndarray, shape (k,)
        Repeat purchases and time limit of each distinct pair: the (x, t_x)
        pairs first, then the (x, T) pairs.
    lower, upper : ndarray of int, shape (n,)
        Index into ``x`` and ``w`` of each customer's (x, t_x) and (x, T).
    """

    x: np.ndarray
    w: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_history(cls, x, t_x, T) -> DropoutLimits:
        """Index the (x, t_x) and (x, T) pairs of n customers."""
        (lower_x, lower_w), lower = distinct_rows(x, t_x)
        (upper_x, upper_w), upper = distinct_rows(x, T)
        return cls(np.concatenate([lower_x, upper_x]), np.concatenate([lower_w, upper_w]), lower, upper + len(lower_x))

    def tenure_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the distinct (x, T) pairs and each customer's index into them."""
        start = int(self.upper.min()) if self.upper.size else 0
        return self.x[start:], self.w[start:], self.upper - start


def paretonbd_log_likelihood_terms(
    r, alpha, s, beta, x, t_x, T, limits: DropoutLimits | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the three log terms of the Pareto/NBD individual likelihood.

    With purchase rate lambda ~ Gamma(r, alpha) and dropout rate
    mu ~ Gamma(s, beta), the likelihood is ``exp(head) * (exp(alive) + exp(dead))``:
    ``alive = -(r+x) log(alpha+T) - s log(beta+T)`` (still active at T) and
    ``dead = log s + log of the integral over tau in [t_x, T] of
    (alpha+tau)**-(r+x) (beta+tau)**-(s+1)`` (dropout at tau).
    ``limits`` may pass :meth:`DropoutLimits.from_history` of the same
    customers to skip indexing them again.

    Returns
    -------
    head, alive, dead : ndarray, shape (n,)
    """
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive, dead = _paretonbd_histories(r, alpha, s, beta, x, T, limits or DropoutLimits.from_history(x, t_x, T))
    return head, alive, dead


def _paretonbd_histories(r, alpha, s, beta, x, T, limits: DropoutLimits) -> tuple[np.ndarray, np.ndarray]:
    """Return the alive and dead log terms of :func:`paretonbd_log_likelihood_terms`."""
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_g = _log_antiderivative(r + limits.x, s + 1.0, alpha, beta, limits.w)
    dead = np.log(s) + _log_diff(log_g[limits.lower], log_g[limits.upper])
    return alive, dead


def paretonbd_log_likelihood(params, x, t_x, T, limits: DropoutLimits | None = None) -> np.ndarray:
    """Return the Pareto/NBD log-likelihood of each customer, shape (n,).

    Parameters
    ----------
    params : sequence of 4 float
        ``r, alpha, s, beta``; ``alpha`` and ``beta`` are in the time unit
        of ``t_x`` and ``T``.
    x, t_x, T : ndarray, shape (n,)
        Repeat purchases, recency and tenure in that time unit.
    limits : DropoutLimits, optional
        The customers' indexed integral limits, reused across calls in a fit.
    """
    r, alpha, s, beta = params
    head, alive, dead = paretonbd_log_likelihood_terms(r, alpha, s, beta, x, t_x, T, limits)
    return head + np.logaddexp(alive, dead)


def paretonbd_p_alive(params, x, t_x, T, limits: DropoutLimits | None = None) -> np.ndarray:
    """Return Pareto/NBD P(alive at T), shape (n,); ``limits`` as in :func:`paretonbd_log_likelihood`."""
    r, alpha, s, beta = params
    alive, dead = _paretonbd_histories(r, alpha, s, beta, x, T, limits or DropoutLimits.from_history(x, t_x, T))
    return expit(alive - dead)


def paretonbd_survival(params, x, t_x, T, t) -> np.ndarray:
    """Return Pareto/NBD P(no purchase in (T, T + t]), shape (n, m) for ``t`` of shape (m,).

    ``S(t) = 1 - P(alive) * g(t)`` with ``g`` from
    :func:`paretonbd_purchase_if_alive`, which depends on (x, T) only and is
    therefore computed once per distinct pair.
    """
    p_alive = paretonbd_p_alive(params, x, t_x, T)
    ux, uT, inverse = _distinct_pairs(x, T)
    purchase_if_alive, _ = paretonbd_purchase_if_alive(params, ux, uT, t)
    return 1.0 - p_alive[:, None] * purchase_if_alive[inverse]


def paretonbd_purchase_if_alive(params, x, T, t) -> tuple[np.ndarray, np.ndarray]:
    """Return P(purchase in (T, T + t] | alive at T) and its derivative in t, each of shape (n, m).

    Closed form. Given alive at T with rates lambda and mu, the customer
    drops out after an Exp(mu) time (memoryless), so
    ``P(purchase by t) = lambda * integral_0^t exp(-(lambda+mu) w) dw``.
    Averaging over the posterior of the alive, Gamma(r+x, alpha+T) x
    Gamma(s, beta+T), gives
    ``g(t) = (r+x) (alpha+T)**(r+x) (beta+T)**s * integral_0^t (alpha+T+w)**-(r+x+1) (beta+T+w)**-s dw``;
    the integral has the hypergeometric closed form of
    :func:`log_power_integral` and the derivative is the integrand.

    Parameters
    ----------
    params : sequence of 4 float
        ``r, alpha, s, beta``.
    x, T : ndarray, shape (n,)
        Repeat purchases and tenure in the model's time unit.
    t : ndarray, shape (m,)
        Times after T, >= 0, in the same unit.
    """
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=float)[None, :]
    x, T = np.asarray(x, dtype=float)[:, None], np.asarray(T, dtype=float)[:, None]
    log_scale = np.log(r + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
    value = np.exp(log_scale + log_power_integral(r + x + 1.0, s, alpha + T, beta + T, 0.0, t))
    slope = np.exp(log_scale - (r + x + 1.0) * np.log(alpha + T + t) - s * np.log(beta + T + t))
    return value, slope


def paretonbd_expected_purchases(params, x, t_x, T, t, p_alive: np.ndarray | None = None) -> np.ndarray:
    """Return the Pareto/NBD expected purchases in (T, T + t], shape (n, m).

    ``E = P(alive) * (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))**(s-1)]``,
    evaluated as ``-expm1(-(s-1) y) / (s-1)`` with ``y = log(1 + t/(beta+T))``,
    which tends to ``y`` at ``s = 1``. ``p_alive`` may pass P(alive) of the
    same customers when it is already known.
    """
    r, alpha, s, beta = params
    if p_alive is None:
        p_alive = paretonbd_p_alive(params, x, t_x, T)
    t = np.asarray(t, dtype=float)[None, :]
    x, T = x[:, None], T[:, None]
    log_ratio = np.log1p(t / (beta + T))
    shape = s - 1.0
    if abs(shape) < 1e-12:
        lifetime_factor = log_ratio
    else:
        lifetime_factor = _one_minus_power(shape, log_ratio) / shape
    return p_alive[:, None] * (r + x) * (beta + T) / (alpha + T) * lifetime_factor
