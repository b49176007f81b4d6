"""Gap distributions and the likelihood of the dropout-timing (mixture cure) model.

For a gap episode of ``d`` days with P(active) ``pi`` and gap survival ``S``
(density ``f``), the likelihood is ``pi f(d)`` when the next purchase was
observed and ``(1 - pi) + pi S(d)`` when the cut-off came first. Everything
is computed in log space, so a long censored gap far in the tail of ``S``
stays finite. :class:`rtt_models.models.cure.DropoutTimingModel` fits and
predicts with these functions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaincc, gammaln, log_expit, log_ndtr

#: Gap distributions by name. ``log_shape`` is log k for Weibull and gamma
#: (k > 1 means regular timing) and log sigma of log days for log-normal.
DISTRIBUTIONS = ("weibull", "gamma", "lognormal")

# Weibull exponents above this are capped so that exp() stays finite. The
# survival there is below exp(-1e300) anyway.
_MAX_EXPONENT = 690.0

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


# ------------------------------------------------------------ distributions


def _weibull_log_sf(log_t, log_scale, log_shape):
    return -np.exp(np.minimum(np.exp(log_shape) * (log_t - log_scale), _MAX_EXPONENT))


def _weibull_terms(log_t, log_scale, log_shape):
    k = np.exp(log_shape)
    u = np.minimum(k * (log_t - log_scale), _MAX_EXPONENT)
    hazard = np.exp(u)
    log_f = log_shape - log_t + u - hazard
    return log_f, -hazard, k * (hazard - 1.0), 1.0 + u * (1.0 - hazard), k * hazard, -hazard * u


def _lognormal_log_sf(log_t, log_scale, log_shape):
    return log_ndtr(-(log_t - log_scale) / np.exp(log_shape))


def _lognormal_terms(log_t, log_scale, log_shape):
    sigma = np.exp(log_shape)
    z = (log_t - log_scale) / sigma
    log_f = -log_t - log_shape - _HALF_LOG_2PI - 0.5 * z**2
    log_s = log_ndtr(-z)
    mills = np.exp(-0.5 * z**2 - _HALF_LOG_2PI - log_s)
    return log_f, log_s, z / sigma, z**2 - 1.0, mills / sigma, mills * z


def _gamma_log_sf(log_t, log_scale, log_shape):
    k = np.exp(log_shape)
    log_x = log_t - log_scale
    x = np.exp(log_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.log(gammaincc(k, x))

        # Far in the tail gammaincc underflows, so the leading terms of the
        # asymptotic series of the upper incomplete gamma function take over.
        tail = (k - 1.0) * log_x - x - gammaln(k) + np.log1p((k - 1.0) / x)
    return np.where(np.isfinite(direct) & (direct > -600.0), direct, tail)


def _gamma_terms(log_t, log_scale, log_shape):
    k = np.exp(log_shape)
    log_x = log_t - log_scale
    x = np.exp(log_x)
    log_f = k * log_x - x - log_t - gammaln(k)
    log_s = _gamma_log_sf(log_t, log_scale, log_shape)

    # d log S / d log k has no closed form: a central difference in log k.
    step = 1e-5
    above = _gamma_log_sf(log_t, log_scale, log_shape + step)
    below = _gamma_log_sf(log_t, log_scale, log_shape - step)
    d_shape = (above - below) / (2.0 * step)
    return log_f, log_s, x - k, k * (log_x - digamma(k)), np.exp(log_f + log_t - log_s), d_shape


#: Distribution name -> (log survival, fitting terms), each a function of
#: (log t, log scale, log shape) that broadcasts. The fitting terms are log f,
#: log S, d log f / d log scale, d log f / d log shape, d log S / d log scale
#: and d log S / d log shape. Each has the broadcast shape of the inputs.
DISTRIBUTION_FUNCTIONS = {
    "weibull": (_weibull_log_sf, _weibull_terms),
    "gamma": (_gamma_log_sf, _gamma_terms),
    "lognormal": (_lognormal_log_sf, _lognormal_terms),
}


# ------------------------------------------------------------- likelihood


class CureLikelihood:
    """Penalised negative mean log likelihood of the mixture cure model and its gradient.

    Parameters
    ----------
    z : ndarray, shape (n_episodes, n_design_columns)
        Standardised design matrix.
    duration_days : ndarray, shape (n_episodes,)
        Gap lengths (> 0), or times to censoring, in days.
    event : ndarray of bool, shape (n_episodes,)
        True where the gap ended with a purchase.
    distribution : {"weibull", "gamma", "lognormal"}
        Gap distribution of active customers.
    penalizer : float
        L2 strength on every coefficient except the three intercepts.
    shape_covariates : bool
        Whether the log shape is linear in the covariates.

    Notes
    -----
    The parameter vector is ``[a0, a, g0, g, s0, (s)]``: intercept and
    coefficients of the logit of P(active), of the log scale and of the log
    shape (coefficients ``s`` only with ``shape_covariates``). The objective is
    ``-mean(log L_i) + penalizer / 2 * (|a|^2 + |g|^2 + |s|^2)``.
    """

    def __init__(self, z, duration_days, event, distribution, penalizer, shape_covariates):
        self.z = np.asarray(z, dtype=float)
        self.log_t = np.log(np.asarray(duration_days, dtype=float))
        self.event = np.asarray(event, dtype=bool)
        self.terms = DISTRIBUTION_FUNCTIONS[distribution][1]
        self.penalizer = float(penalizer)
        p = self.z.shape[1]
        self.n_shape = p if shape_covariates else 0
        self.slices = (slice(0, p + 1), slice(p + 1, 2 * p + 2), slice(2 * p + 2, 2 * p + 3 + self.n_shape))
        self.n_parameters = 2 * p + 3 + self.n_shape
        self.penalised = np.ones(self.n_parameters)
        self.penalised[[0, p + 1, 2 * p + 2]] = 0.0

    def linear_predictors(self, params: np.ndarray) -> np.ndarray:
        """Return the logit of P(active), the log scale and the log shape, shape (n_episodes, 3)."""
        intercepts = np.array([params[s.start] for s in self.slices])
        weights = np.zeros((self.z.shape[1], 3))
        for j, part in enumerate(self.slices):
            coefficients = params[part][1:]
            weights[: len(coefficients), j] = coefficients
        return self.z @ weights + intercepts

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Return the objective and its gradient, shape (n_parameters,), at ``params``."""
        linear = self.linear_predictors(params)
        eta, log_scale, log_shape = linear[:, 0], linear[:, 1], linear[:, 2]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            log_f, log_s, df_scale, df_shape, ds_scale, ds_shape = self.terms(self.log_t, log_scale, log_shape)

        # Per-episode log likelihood, in log space throughout.
        log_pi, log_inactive = log_expit(eta), log_expit(-eta)
        log_active_and_waiting = log_pi + log_s
        censored = np.logaddexp(log_inactive, log_active_and_waiting)
        loglik = np.where(self.event, log_pi + log_f, censored)

        # Derivatives by linear predictor. `posterior` is P(active | censored at d).
        posterior = np.exp(log_active_and_waiting - censored)
        by_predictor = np.empty_like(linear)
        by_predictor[:, 0] = np.where(self.event, 1.0 - expit(eta), posterior - expit(eta))
        with np.errstate(invalid="ignore"):
            by_predictor[:, 1] = np.where(self.event, df_scale, np.where(posterior > 0, posterior * ds_scale, 0.0))
            by_predictor[:, 2] = np.where(self.event, df_shape, np.where(posterior > 0, posterior * ds_shape, 0.0))

        # Chain rule to the parameters, then the penalty.
        sums = by_predictor.sum(axis=0)
        products = self.z.T @ by_predictor
        gradient = np.concatenate(
            [[sums[0]], products[:, 0], [sums[1]], products[:, 1], [sums[2]], products[: self.n_shape, 2]]
        )
        n = len(self.log_t)
        value = -loglik.sum() / n + 0.5 * self.penalizer * np.sum(self.penalised * params**2)
        gradient = -gradient / n + self.penalizer * self.penalised * params
        return float(value), gradient
