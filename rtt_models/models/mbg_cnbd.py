"""MBG/CNBD-k: a BTYD model with regular (Erlang-k) inter-purchase times.

The model extends BG/NBD in two ways: gaps between purchases of an active
customer follow an Erlang-k distribution, which is more regular than the
exponential for k > 1, and a customer may drop out right after their first
purchase too, so one-time buyers can be dead. It is fitted by weighted
maximum likelihood for each k and the k with the highest likelihood is kept.
The formulas live in :mod:`rtt_models.models.mbg_cnbd_math`.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from rtt_models.models import mbg_cnbd_math
from rtt_models.models.alive_curves import summarize_alive_curves
from rtt_models.models.btyd import (
    _LOG_BOUND,
    _as_customer_frame,
    _BTYDModel,
    _check_weights,
    _Interval,
    _numeric_column,
)
from rtt_models.models.btyd_math import distinct_rows

logger = logging.getLogger("rtt_models")


class MBGCNBDModel(_BTYDModel):
    """MBG/CNBD-k model of repeat purchases (Reutterer, Platzer and Schroeder, 2020).

    Parameters
    ----------
    k : int or None, default None
        Erlang shape of the inter-purchase times: 1 gives exponential gaps
        (the MBG/NBD), larger values more regular gaps. None chooses k in
        1..``k_max`` by likelihood.
    k_max : int, default 12
        Largest k tried when ``k`` is None. The search stops early once the
        log-likelihood has fallen at two consecutive k.
    time_unit_days : float, default 7.0
        Length in days of the model's time unit. Features arrive in days and
        are divided by it; the default of weeks makes ``alpha`` comparable
        with published estimates.
    penalizer : float, default 0.0
        Weight of the L2 penalty ``penalizer * sum(log(param) ** 2)`` added to
        the mean negative log-likelihood per customer. It pulls every
        parameter toward 1 (in the time unit for ``alpha``).
    max_iter : int, default 1000
        Maximum L-BFGS-B iterations per k.
    tol : float, default 1e-10
        L-BFGS-B tolerance on the relative change of the objective and on the
        projected gradient.

    Attributes
    ----------
    k_ : int
        The Erlang shape used for prediction.
    params_ : dict of str to float
        ``r`` and ``alpha`` (gamma shape and rate of the Erlang rate lambda,
        ``alpha`` in time units), ``a`` and ``b`` (beta distribution of the
        dropout probability after each purchase).
    log_likelihood_ : float
        Weighted log-likelihood at ``k_`` and ``params_``, without the
        penalty. It includes the density of the observed gaps, so values for
        different k are comparable.
    log_likelihood_by_k_ : dict of int to float
        Weighted log-likelihood at the estimate for every k tried.
    n_customers_ : int
        Rows of features used in ``fit``.
    n_iter_ : int
        Optimizer iterations for the chosen k.
    converged_ : bool
        Whether the optimizer reported convergence for the chosen k.
    feature_names_in_ : list of str
        ``frequency``, ``recency_days``, ``tenure_days`` and ``elapsed_days``;
        ``fit`` also reads ``log_gap_mean``.

    Notes
    -----
    Assumptions: while active, a customer's gaps are Erlang-k with rate
    lambda (mean gap k / lambda), lambda ~ Gamma(r, alpha) across customers;
    right after each purchase, the first one included, the customer drops out
    for good with probability p, p ~ Beta(a, b); lambda and p are independent
    and k is shared by all customers.

    Likelihood: given (lambda, p), x repeat purchases with gaps g_i and an
    open gap u = T - t_x have likelihood ``(1-p)**x prod_i f_k(g_i)
    [p + (1-p) S_k(lambda u)]``. The gap densities give
    ``lambda**(k x) exp(-lambda t_x) exp((k-1) litt) / ((k-1)!)**x`` with
    ``litt = sum_i log(g_i) = frequency * log_gap_mean`` in the time unit;
    ``S_k(y) = sum_{j<k} y**j exp(-y) / j!`` is the Erlang-k survival. Each
    term integrates over the gamma distribution of lambda and the beta
    distribution of p in closed form (see
    :mod:`rtt_models.models.mbg_cnbd_math`).

    Predictions, all exact: P(alive) is the posterior share of the "still
    active" term. The survival of the next-purchase time is the likelihood
    ratio ``S(t) = L(x, t_x, T + t) / L(x, t_x, T)``, that is
    ``1 - P(alive) E[P(gap ends in (u, u + t] | gap > u)]`` over the
    posterior of lambda; for k > 1 it depends on the time since the last
    purchase beyond P(alive), because a regular buyer who is late is either
    about to buy or gone. Expected occasions sum the Erlang renewal counts
    over the posterior as a series of regularized incomplete beta functions.
    """

    _param_names = ("r", "alpha", "a", "b")

    #: Allowed values of the numeric settings. ``k`` (None or an integer >= 1)
    #: is checked in :meth:`_validate_settings`.
    _parameter_constraints: dict[str, _Interval] = {
        **_BTYDModel._parameter_constraints,
        "k_max": _Interval(integer=True, low=1, low_inclusive=True, example=12),
    }

    def __init__(
        self,
        k: int | None = None,
        k_max: int = 12,
        time_unit_days: float = 7.0,
        penalizer: float = 0.0,
        max_iter: int = 1000,
        tol: float = 1e-10,
    ):
        self.k = k
        self.k_max = k_max
        self.time_unit_days = time_unit_days
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fit

    def fit(self, features: pd.DataFrame, episodes: pd.DataFrame | None = None, *, sample_weight=None):
        """Fit the model by weighted maximum likelihood, for one k or the best of several.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the calibration cut-off. Columns read:
            ``frequency`` (repeat occasions, whole numbers), ``recency_days``
            (first to last occasion), ``tenure_days`` (first occasion to the
            cut-off) and ``log_gap_mean`` (mean natural log of the gaps in
            days, NaN without a repeat occasion). ``elapsed_days``, when
            present, must equal ``tenure_days - recency_days``.
        episodes : None
            Not used; the model is fitted on per-customer summaries.
        sample_weight : array-like, shape (n_customers,), optional
            Non-negative weight of each row.

        Returns
        -------
        self
        """
        self._validate_settings()
        frame = _as_customer_frame(features, type(self).__name__)
        x, t_x, T = self._read_history(frame, need_elapsed=False)
        litt = self._read_log_gap_sum(frame, x)
        weights = _check_weights(sample_weight, len(frame), type(self).__name__)

        # Customers with the same (x, t_x, T, litt) share one likelihood term,
        # so the search runs on the unique rows weighted by their total weight.
        rows, inverse = np.unique(np.column_stack([x, t_x, T, litt]), axis=0, return_inverse=True)
        row_weights = np.bincount(inverse.ravel(), weights=weights, minlength=len(rows))
        keep = row_weights > 0
        history = tuple(rows[keep].T)
        row_weights = row_weights[keep]

        # Fit every candidate k; stop once the likelihood fell twice in a row.
        candidates = [int(self.k)] if self.k is not None else range(1, int(self.k_max) + 1)
        fits = {}
        for k in candidates:
            fits[k] = self._fit_one_k(k, history, row_weights)
            logger.debug("MBG/CNBD-k with k=%d: log-likelihood %.3f, parameters %s", k, fits[k][0], fits[k][1])
            lls = [fits[c][0] for c in sorted(fits)]
            if len(lls) >= 3 and lls[-1] < lls[-2] < lls[-3]:
                break
        best_k = max(fits, key=lambda c: fits[c][0])
        log_likelihood, params, result = fits[best_k]

        # Store the estimate and report a search that did not converge.
        self.k_ = best_k
        self.params_ = dict(zip(self._param_names, (float(v) for v in params)))
        self.log_likelihood_ = log_likelihood
        self.log_likelihood_by_k_ = {c: fits[c][0] for c in sorted(fits)}
        self.n_customers_ = len(frame)
        self.n_iter_ = int(result.nit)
        self.converged_ = bool(result.success)
        self.feature_names_in_ = list(self.required_features)
        logger.info(
            "MBG/CNBD-k fitted on %d customers: k=%d (tried %s), log-likelihood %.3f",
            self.n_customers_, best_k, sorted(fits), log_likelihood,
        )
        self._warn_about_fit(result)
        return self

    def _fit_one_k(self, k: int, history: tuple, row_weights: np.ndarray):
        """Return (weighted log-likelihood, parameters, optimizer result) for one k."""
        x, t_x, T, litt = history
        total = row_weights.sum()
        penalizer = float(self.penalizer)

        def objective(log_params):
            params = np.exp(log_params)
            loglik = mbg_cnbd_math.log_likelihood(params, k, x, t_x, T, litt)
            value = -(row_weights @ loglik) / total + penalizer * (log_params @ log_params)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(log_params)
            gradient = mbg_cnbd_math.log_likelihood_gradient(params, k, x, t_x, T)
            return value, -(row_weights @ gradient) / total + 2.0 * penalizer * log_params

        # Start from a mean gap of T / (x + 1), which is k alpha / r at r = 1.
        mean_x, mean_T = np.average(x, weights=row_weights), np.average(T, weights=row_weights)
        start = np.log([1.0, np.clip(mean_T / (mean_x + 1.0) / k, 1e-3, 1e3), 1.0, 1.0])
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
            options={"maxiter": int(self.max_iter), "ftol": float(self.tol), "gtol": float(self.tol)},
        )
        params = np.exp(result.x)
        log_likelihood = float(row_weights @ mbg_cnbd_math.log_likelihood(params, k, x, t_x, T, litt))
        return log_likelihood, params, result

    # ------------------------------------------------------------- helpers

    def _validate_settings(self) -> None:
        super()._validate_settings()
        k = self.k
        if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
            raise ValueError(
                f"{type(self).__name__} setting k={k!r} is invalid: it must be None (choose k by "
                "likelihood) or an integer >= 1, for example MBGCNBDModel(k=2)."
            )

    def _read_log_gap_sum(self, frame: pd.DataFrame, x: np.ndarray) -> np.ndarray:
        """Return the sum of log gaps per customer in the time unit, 0 without repeat occasions."""
        name = type(self).__name__
        if "log_gap_mean" not in frame.columns:
            raise ValueError(
                f"{name} needs the feature column log_gap_mean (mean natural log of the gaps in days) "
                "to fit; pass the output of rtt_models.features.build_features."
            )
        log_gap_mean = _numeric_column(frame, "log_gap_mean", name)
        bad = (x > 0) & ~np.isfinite(log_gap_mean)
        if bad.any():
            examples = frame.index[bad][:5].tolist()
            raise ValueError(
                f"{name}: {int(bad.sum())} customers with repeat occasions have a missing or infinite "
                f"log_gap_mean, for example {examples}; rebuild the features, whose gaps are >= 1 day."
            )
        litt_days = np.where(x > 0, x * np.where(np.isfinite(log_gap_mean), log_gap_mean, 0.0), 0.0)
        return litt_days - x * np.log(float(self.time_unit_days))

    def _alive_probability(self, params, x, t_x, T):
        return mbg_cnbd_math.p_alive(params, self.k_, x, t_x, T)

    def _survival(self, params, x, t_x, T, t):
        return mbg_cnbd_math.survival(params, self.k_, x, t_x, T, t)

    def _expected_purchases(self, params, x, t_x, T, t):
        return mbg_cnbd_math.expected_purchases(params, self.k_, x, t_x, T, t)

    def _closed_form_summary(self, frame, horizon_days):
        """Horizon probabilities, median and restricted mean without a grid per customer.

        ``S(t) = 1 - P(alive) * g(t)``; ``g`` depends on (x, t_x, T) and is
        evaluated once per distinct history on a day grid with its exact
        derivative, see :func:`rtt_models.models.alive_curves.summarize_alive_curves`.
        """
        x, t_x, T = self._read_history(frame)
        params = self._params_array()
        unit = float(self.time_unit_days)
        (ux, ut_x, uT), inverse = distinct_rows(x, t_x, T)
        p_alive = mbg_cnbd_math.p_alive(params, self.k_, ux, ut_x, uT)[inverse]

        def curve(days):
            value, slope = mbg_cnbd_math.purchase_if_alive(params, self.k_, ux, ut_x, uT, days / unit)
            return value, slope / unit

        summary = summarize_alive_curves(p_alive, inverse, curve, horizon_days)
        horizons = np.asarray(horizon_days, dtype=float) / unit
        expected = mbg_cnbd_math.expected_purchases_of_histories(params, self.k_, ux, ut_x, uT, horizons)
        summary["expected_occasions"] = expected[inverse]
        summary["p_alive"] = p_alive
        return summary
