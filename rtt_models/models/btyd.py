"""BTYD ("buy till you die") models: BG/NBD and Pareto/NBD.

Both families describe a customer who buys at a Poisson rate while active and
drops out silently at some point. Rates and dropout differ across customers
by gamma (and beta) mixing distributions. Each is fitted by weighted maximum
likelihood on the summary (frequency, recency, tenure) of every customer and
predicts, in closed form, the survival of the next-purchase time, P(alive)
and the expected number of purchases. The formulas live in
:mod:`rtt_models.models.btyd_math`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from rtt_models.models import btyd_math
from rtt_models.models.alive_curves import summarize_alive_curves
from rtt_models.models.base import MEDIAN_SEARCH_LIMIT_DAYS, NextPurchaseModel

# Log-parameters are kept inside [-_LOG_BOUND, _LOG_BOUND] during the search,
# that is parameters between about 2e-9 and 5e8 in the model's time unit.
_LOG_BOUND = 20.0

# Below this mean dropout (per purchase, or per unit of tenure for Pareto/NBD)
# a fit is reported as finding no dropout; 1e-3 is an estimate of where
# P(alive) stops differing from 1 by more than rounding in the scores.
_NEGLIGIBLE_DROPOUT = 1e-3

# Two day values closer than this (relative to the tenure) count as equal when
# elapsed_days is checked against tenure_days - recency_days.
_DAY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Interval:
    """Allowed values of one numeric setting: a real or integer above ``low``."""

    integer: bool
    low: float
    low_inclusive: bool
    example: object

    def allows(self, value) -> bool:
        if isinstance(value, bool):
            return False
        kind = numbers.Integral if self.integer else numbers.Real
        if not isinstance(value, kind) or not np.isfinite(value):
            return False
        return value >= self.low if self.low_inclusive else value > self.low

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        return f"{kind} {'>=' if self.low_inclusive else '>'} {self.low:g}"


class _BTYDModel(NextPurchaseModel):
    """Shared fitting and prediction of the BTYD families.

    Subclasses name their parameters, give start values and point at the
    likelihood and closed forms of :mod:`rtt_models.models.btyd_math`.
    """

    defines_p_alive = True
    required_features = ("frequency", "recency_days", "tenure_days", "elapsed_days")

    #: The single declaration of every setting's allowed values.
    _parameter_constraints: dict[str, _Interval] = {
        "time_unit_days": _Interval(integer=False, low=0.0, low_inclusive=False, example=7.0),
        "penalizer": _Interval(integer=False, low=0.0, low_inclusive=True, example=0.01),
        "max_iter": _Interval(integer=True, low=1, low_inclusive=True, example=1000),
        "tol": _Interval(integer=False, low=0.0, low_inclusive=False, example=1e-10),
    }

    _param_names: tuple[str, ...] = ()

    def __init__(self, time_unit_days: float = 7.0, penalizer: float = 0.0, max_iter: int = 1000, tol: float = 1e-10):
        self.time_unit_days = time_unit_days
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    # ------------------------------------------------------------------ fit

    def fit(self, features: pd.DataFrame, episodes: pd.DataFrame | None = None, *, sample_weight=None):
        """Fit the model by weighted maximum likelihood.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the calibration cut-off with the columns
            ``frequency`` (repeat occasions, whole numbers), ``recency_days``
            (first to last occasion) and ``tenure_days`` (first occasion to
            the cut-off). ``elapsed_days``, when present, must equal
            ``tenure_days - recency_days``.
        episodes : None
            Not used; BTYD models are fitted on per-customer summaries.
        sample_weight : array-like, shape (n_customers,), optional
            Non-negative weight of each row, for example the number of
            customers that share one (frequency, recency, tenure) row.

        Returns
        -------
        self
        """
        self._validate_settings()
        frame = _as_customer_frame(features, type(self).__name__)
        x, t_x, T = self._read_history(frame, need_elapsed=False)
        weights = _check_weights(sample_weight, len(frame), type(self).__name__)

        # Customers with the same (x, t_x, T) share one likelihood term, so
        # the search runs on the unique rows weighted by their total weight.
        rows, inverse = np.unique(np.column_stack([x, t_x, T]), axis=0, return_inverse=True)
        row_weights = np.bincount(inverse.ravel(), weights=weights, minlength=len(rows))
        keep = row_weights > 0
        rows, row_weights = rows[keep], row_weights[keep]
        ux, ut_x, uT = rows[:, 0], rows[:, 1], rows[:, 2]

        # Minimise the mean negative log-likelihood per unit of weight plus
        # the L2 penalty on log-parameters, over log-parameters.
        total = row_weights.sum()
        penalizer = float(self.penalizer)

        history = self._prepare_history(ux, ut_x, uT)

        def objective(log_params):
            params = np.exp(log_params)
            loglik = self._log_likelihood(params, history)
            value = -(row_weights @ loglik) / total + penalizer * (log_params @ log_params)
            if not np.isfinite(value):
                return np.inf, np.zeros_like(log_params)
            gradient = self._log_likelihood_gradient(params, history)
            return value, -(row_weights @ gradient) / total + 2.0 * penalizer * log_params

        start = np.log(self._start_params(ux, uT, row_weights))
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(start),
            options={"maxiter": int(self.max_iter), "ftol": float(self.tol), "gtol": float(self.tol)},
        )

        # Store the estimate and report a search that did not converge.
        params = np.exp(result.x)
        self.params_ = dict(zip(self._param_names, (float(v) for v in params)))
        self.log_likelihood_ = float(row_weights @ self._log_likelihood(params, history))
        self.n_customers_ = len(frame)
        self.n_iter_ = int(result.nit)
        self.converged_ = bool(result.success)
        self.feature_names_in_ = list(self.required_features)
        self._warn_about_fit(result)
        return self

    def _warn_about_fit(self, result) -> None:
        name = type(self).__name__
        if not result.success:
            warnings.warn(
                f"{name} did not converge after {result.nit} iterations (max_iter={self.max_iter}, "
                f"tol={self.tol}): {result.message}. Increase max_iter, loosen tol, or add a small "
                "penalizer such as 0.001.",
                ConvergenceWarning,
                stacklevel=3,
            )
        at_bound = [n for n, v in zip(self._param_names, result.x) if abs(v) >= _LOG_BOUND - 1e-6]
        if at_bound:
            warnings.warn(
                f"{name} parameters {at_bound} reached the search bound exp(+/-{_LOG_BOUND:g}); the data "
                "do not identify them (for example no customer has a repeat purchase). Add a penalizer "
                "such as 0.001 or fit on more customers.",
                ConvergenceWarning,
                stacklevel=3,
            )
        dropout = self._dropout_share()
        if dropout < _NEGLIGIBLE_DROPOUT:
            warnings.warn(
                f"{name} found almost no dropout ({self._dropout_description()} = {dropout:.2g}), so P(alive) is "
                "about 1 for every customer and the model reduces to a purchase-rate model. The data may be "
                "too short to show customers lapsing; compare with mbg_cnbd_k or dropout_timing in a backtest, "
                "or add a penalizer such as 0.001.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _dropout_share(self) -> float:
        """Return the mean probability of dropping out at a purchase (BG/NBD family)."""
        return self.params_["a"] / (self.params_["a"] + self.params_["b"])

    def _dropout_description(self) -> str:
        return "mean dropout probability per purchase a / (a + b)"

    # ------------------------------------------------------------- predict

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return S_i(t) = P(no purchase in (as_of, as_of + t]), shape (n_customers, n_times)."""
        x, t_x, T = self._read_history(features)
        return self._survival(self._params_array(), x, t_x, T, np.asarray(times_days, dtype=float) / self.time_unit_days)

    def _gap_survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return the survival of a gap that starts with a purchase on the cut-off day."""
        fresh = features.copy()
        fresh["recency_days"] = fresh["tenure_days"]
        fresh["elapsed_days"] = 0.0
        return self._survival_matrix(fresh, times_days)

    def _expected_occasions(self, features: pd.DataFrame, horizon_days: np.ndarray) -> np.ndarray:
        """Return the expected purchases in (as_of, as_of + h], shape (n_customers, n_horizons)."""
        x, t_x, T = self._read_history(features)
        horizons = np.asarray(horizon_days, dtype=float) / self.time_unit_days
        return self._expected_purchases(self._params_array(), x, t_x, T, horizons)

    def _p_alive(self, features: pd.DataFrame) -> np.ndarray:
        """Return P(alive) at the cut-off per customer, shape (n_customers,)."""
        x, t_x, T = self._read_history(features)
        return self._alive_probability(self._params_array(), x, t_x, T)

    # ------------------------------------------------------------- helpers

    def _params_array(self) -> np.ndarray:
        return np.array([self.params_[n] for n in self._param_names])

    def _validate_settings(self) -> None:
        for name, interval in self._parameter_constraints.items():
            value = getattr(self, name)
            if not interval.allows(value):
                raise ValueError(
                    f"{type(self).__name__} setting {name}={value!r} is invalid: it must be "
                    f"{interval.describe()}, for example {type(self).__name__}({name}={interval.example!r})."
                )

    def _read_history(self, frame: pd.DataFrame, need_elapsed: bool = True):
        """Validate the BTYD summary columns and return (x, t_x, T) in the time unit."""
        name = type(self).__name__
        columns = ["frequency", "recency_days", "tenure_days"]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{name} needs the feature columns {columns}, but {missing} are missing; "
                "pass the output of rtt_models.features.build_features."
            )
        if len(frame) == 0:
            raise ValueError(f"{name} received no customers; pass at least one row of features.")
        values = {c: _numeric_column(frame, c, name) for c in columns}
        x, recency, tenure = values["frequency"], values["recency_days"], values["tenure_days"]

        # Each rule: rows that break it, what is wrong and what to do.
        rules = [
            (~np.isfinite(x) | ~np.isfinite(recency) | ~np.isfinite(tenure),
             "a missing or infinite frequency, recency_days or tenure_days", "drop or fill those customers"),
            ((x < 0) | (recency < 0) | (tenure < 0),
             "a negative frequency, recency_days or tenure_days", "rebuild the features at one cut-off"),
            (x != np.round(x),
             "a frequency that is not a whole number", "count repeat occasions, not amounts or rates"),
            (recency > tenure * (1.0 + _DAY_TOLERANCE),
             "recency_days greater than tenure_days",
             "recency (first to last occasion) cannot exceed tenure (first occasion to the cut-off)"),
            ((x == 0) & (recency > 0),
             "frequency 0 with recency_days > 0", "a customer without repeat occasions has recency_days 0"),
        ]
        if need_elapsed or "elapsed_days" in frame.columns:
            elapsed = _numeric_column(frame, "elapsed_days", name)
            gap = np.abs(tenure - recency - elapsed)
            rules.append(
                (gap > _DAY_TOLERANCE * np.maximum(tenure, 1.0),
                 "elapsed_days different from tenure_days - recency_days",
                 "build all three columns at the same cut-off"),
            )
        for bad, problem, fix in rules:
            bad = np.asarray(bad, dtype=bool)
            if bad.any():
                examples = frame.loc[bad, [c for c in frame.columns if c in (*columns, "elapsed_days")]].head(3)
                raise ValueError(
                    f"{name}: {int(bad.sum())} of {len(frame)} customers have {problem}, for example "
                    f"{examples.to_dict(orient='index')}; {fix}."
                )

        unit = float(self.time_unit_days)
        return x, np.minimum(recency, tenure) / unit, tenure / unit

    # Hooks that each family fills in.
    def _prepare_history(self, x, t_x, T) -> tuple:
        """Return the fit data in the form the likelihood hooks take."""
        return (x, t_x, T)

    def _log_likelihood(self, params, history) -> np.ndarray:
        """Return the log-likelihood per row, shape (n_rows,)."""
        raise NotImplementedError

    def _log_likelihood_gradient(self, params, history) -> np.ndarray:
        """Return d loglik / d log(param) per row, shape (n_rows, n_params)."""
        raise NotImplementedError

    def _start_params(self, x, T, weights) -> np.ndarray:
        raise NotImplementedError


class BGNBDModel(_BTYDModel):
    """Beta-geometric/NBD model of repeat purchases (Fader, Hardie and Lee, 2005).

    Parameters
    ----------
    time_unit_days : float, default 7.0
        Length in days of the model's time unit. Features arrive in days and
        are divided by it; the default of weeks makes ``alpha`` comparable
        with the published CDNOW estimates.
    penalizer : float, default 0.0
        Weight of the L2 penalty ``penalizer * sum(log(param) ** 2)`` added to
        the mean negative log-likelihood per customer. It pulls every
        parameter toward 1 (in the time unit for ``alpha``).
    max_iter : int, default 1000
        Maximum L-BFGS-B iterations.
    tol : float, default 1e-10
        L-BFGS-B tolerance on the relative change of the objective and on the
        projected gradient.

    Attributes
    ----------
    params_ : dict of str to float
        ``r`` and ``alpha`` (gamma shape and rate of the purchase rate,
        ``alpha`` in time units), ``a`` and ``b`` (beta distribution of the
        dropout probability after each purchase).
    log_likelihood_ : float
        Weighted log-likelihood at ``params_``, without the penalty.
    n_customers_ : int
        Rows of features used in ``fit``.
    n_iter_ : int
        Iterations of the optimizer.
    converged_ : bool
        Whether the optimizer reported convergence.
    feature_names_in_ : list of str
        ``frequency``, ``recency_days``, ``tenure_days`` and ``elapsed_days``.

    Notes
    -----
    Assumptions: while active, a customer buys at a Poisson rate lambda, with
    lambda ~ Gamma(r, alpha) across customers; right after each purchase the
    customer drops out for good with probability p, with p ~ Beta(a, b);
    lambda and p are independent. Times are in units of ``time_unit_days``
    days, so ``alpha`` is in those units and ``r / alpha`` is purchases per
    unit. Because dropout can only follow a repeat purchase, the model gives
    P(alive) = 1 to every customer without a repeat purchase, however long
    ago their first purchase was.

    The survival of the next-purchase time is
    ``S(t) = 1 - P(alive) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x))``;
    it depends on the time since the last purchase only through P(alive).
    """

    _param_names = ("r", "alpha", "a", "b")

    def _log_likelihood(self, params, history):
        return btyd_math.bgnbd_log_likelihood(params, *history)

    def _log_likelihood_gradient(self, params, history):
        return btyd_math.bgnbd_log_likelihood_gradient(params, *history)

    def _start_params(self, x, T, weights):
        mean_x, mean_T = np.average(x, weights=weights), np.average(T, weights=weights)
        return np.array([1.0, np.clip(mean_T / (mean_x + 1.0), 1e-3, 1e3), 1.0, 1.0])

    def _alive_probability(self, params, x, t_x, T):
        return btyd_math.bgnbd_p_alive(params, x, t_x, T)

    def _survival(self, params, x, t_x, T, t):
        return btyd_math.bgnbd_survival(params, x, t_x, T, t)

    def _expected_purchases(self, params, x, t_x, T, t):
        return btyd_math.bgnbd_expected_purchases(params, x, t_x, T, t)

    def _closed_form_summary(self, frame, horizon_days):
        """Horizon probabilities, median and restricted mean in closed form.

        With ``k = r + x``, ``s = alpha + T`` and ``q(t) = (s / (s + t))**k``,
        ``S(t) = 1 - P(alive) * (1 - q(t))``. The median solves
        ``q(t) = 1 - 0.5 / P(alive)``, which exists only when P(alive) > 0.5,
        and the restricted mean is ``H - P(alive) * (H - integral_0^H q)``
        with ``integral_0^H q = s * (1 - (s / (s + H))**(k - 1)) / (k - 1)``.
        Times are converted from the model's unit to days.
        """
        x, t_x, T = self._read_history(frame)
        params = self._params_array()
        r, alpha = params[0], params[1]
        unit = float(self.time_unit_days)
        p_alive = btyd_math.bgnbd_p_alive(params, x, t_x, T)
        k = r + x
        span = alpha + T

        # P(purchase within h) at each horizon.
        horizons = np.asarray(horizon_days, dtype=float) / unit
        log_ratio = np.log1p(horizons[None, :] / span[:, None])
        p_purchase = p_alive[:, None] * -np.expm1(-k[:, None] * log_ratio)

        # Median: q(t) = 1 - 0.5 / P(alive), solved for t.
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q = np.log1p(-0.5 / p_alive)
            median = span * np.expm1(-log_q / k) * unit
        median = np.where((p_alive > 0.5) & (median <= MEDIAN_SEARCH_LIMIT_DAYS), median, np.nan)

        # Restricted mean up to the largest horizon H.
        largest = horizons.max()
        log_end = np.log1p(largest / span)
        near_one = np.abs(k - 1.0) < 1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            integral = span * np.where(near_one, log_end, -np.expm1(-(k - 1.0) * log_end) / (k - 1.0))
        restricted = (largest - p_alive * (largest - integral)) * unit
        expected = btyd_math.bgnbd_expected_purchases(params, x, t_x, T, horizons, p_alive=p_alive)
        return {"p_purchase": p_purchase, "median_days": median, "restricted_mean_days": restricted,
                "expected_occasions": expected, "p_alive": p_alive}


class ParetoNBDModel(_BTYDModel):
    """Pareto/NBD model of repeat purchases (Schmittlein, Morrison and Colombo, 1987).

    Parameters
    ----------
    time_unit_days : float, default 7.0
        Length in days of the model's time unit. Features arrive in days and
        are divided by it; the default of weeks makes ``alpha`` and ``beta``
        comparable with the published CDNOW estimates.
    penalizer : float, default 0.0
        Weight of the L2 penalty ``penalizer * sum(log(param) ** 2)`` added to
        the mean negative log-likelihood per customer.
    max_iter : int, default 1000
        Maximum L-BFGS-B iterations.
    tol : float, default 1e-10
        L-BFGS-B tolerance on the relative change of the objective and on the
        projected gradient.

    Attributes
    ----------
    params_ : dict of str to float
        ``r`` and ``alpha`` (gamma shape and rate of the purchase rate),
        ``s`` and ``beta`` (gamma shape and rate of the dropout rate).
        ``alpha`` and ``beta`` are in time units.
    log_likelihood_ : float
        Weighted log-likelihood at ``params_``, without the penalty.
    n_customers_ : int
        Rows of features used in ``fit``.
    n_iter_ : int
        Iterations of the optimizer.
    converged_ : bool
        Whether the optimizer reported convergence.
    feature_names_in_ : list of str
        ``frequency``, ``recency_days``, ``tenure_days`` and ``elapsed_days``.

    Notes
    -----
    Assumptions: while active, a customer buys at a Poisson rate lambda,
    lambda ~ Gamma(r, alpha) across customers; their lifetime is exponential
    with rate mu, mu ~ Gamma(s, beta); lambda and mu are independent. Times
    are in units of ``time_unit_days`` days, so ``alpha`` and ``beta`` are in
    those units. Unlike BG/NBD, a customer may drop out at any moment,
    including before their first repeat purchase.

    The survival of the next-purchase time accounts for customers who are
    alive at the cut-off but drop out before buying again. It is computed in
    closed form with a Gauss hypergeometric function (see
    :func:`rtt_models.models.btyd_math.paretonbd_survival`), not by numerical
    integration, and depends on the time since the last purchase only
    through P(alive). ``predict`` evaluates it once per distinct
    (frequency, tenure) pair, so scoring cost grows with the customers only
    through a few array operations each.
    """

    _param_names = ("r", "alpha", "s", "beta")

    def _prepare_history(self, x, t_x, T):
        return (x, t_x, T, btyd_math.DropoutLimits.from_history(x, t_x, T))

    def _log_likelihood(self, params, history):
        return btyd_math.paretonbd_log_likelihood(params, *history)

    def _log_likelihood_gradient(self, params, history):
        # Central differences in log-parameters: the hypergeometric terms
        # have no cheap closed-form derivative in r and s.
        step = 1e-6
        columns = []
        for j in range(len(params)):
            shift = np.zeros(len(params))
            shift[j] = step
            up = btyd_math.paretonbd_log_likelihood(params * np.exp(shift), *history)
            down = btyd_math.paretonbd_log_likelihood(params * np.exp(-shift), *history)
            columns.append((up - down) / (2.0 * step))
        return np.column_stack(columns)

    def _start_params(self, x, T, weights):
        mean_x, mean_T = np.average(x, weights=weights), np.average(T, weights=weights)
        return np.array([1.0, np.clip(mean_T / (mean_x + 1.0), 1e-3, 1e3), 1.0, np.clip(mean_T, 1e-3, 1e3)])

    def _alive_probability(self, params, x, t_x, T):
        return btyd_math.paretonbd_p_alive(params, x, t_x, T)

    def _dropout_share(self) -> float:
        """Return the mean dropout rate s / beta, per time unit."""
        return self.params_["s"] / self.params_["beta"]

    def _dropout_description(self) -> str:
        return f"mean dropout rate s / beta per {self.time_unit_days:g} days"

    def _survival(self, params, x, t_x, T, t):
        return btyd_math.paretonbd_survival(params, x, t_x, T, t)

    def _expected_purchases(self, params, x, t_x, T, t):
        return btyd_math.paretonbd_expected_purchases(params, x, t_x, T, t)

    def _closed_form_summary(self, frame, horizon_days):
        """Horizon probabilities, median and restricted mean without a per-customer curve.

        ``S(t) = 1 - P(alive) * g(t)`` where ``g``, the purchase probability
        of an active customer, depends on (x, T) only. Each distinct pair's
        ``g`` is evaluated once on a day grid with its exact derivative, see
        :func:`rtt_models.models.alive_curves.summarize_alive_curves`.
        """
        x, t_x, T = self._read_history(frame)
        params = self._params_array()
        unit = float(self.time_unit_days)
        limits = btyd_math.DropoutLimits.from_history(x, t_x, T)
        p_alive = btyd_math.paretonbd_p_alive(params, x, t_x, T, limits)
        ux, uT, inverse = limits.tenure_pairs()

        def curve(days):
            value, slope = btyd_math.paretonbd_purchase_if_alive(params, ux, uT, days / unit)
            return value, slope / unit

        summary = summarize_alive_curves(p_alive, inverse, curve, horizon_days)
        summary["expected_occasions"] = btyd_math.paretonbd_expected_purchases(
            params, x, t_x, T, np.asarray(horizon_days, dtype=float) / unit, p_alive=p_alive
        )
        summary["p_alive"] = p_alive
        return summary


def _as_customer_frame(features, owner: str) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise TypeError(
            f"{owner} expects a pandas DataFrame of per-customer features, got {type(features).__name__}; "
            "build one with rtt_models.features.build_features."
        )
    return features.set_index("customer_id") if "customer_id" in features.columns else features


def _numeric_column(frame: pd.DataFrame, column: str, owner: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{owner}: column {column} must be numeric, got dtype {frame[column].dtype}; "
            "convert it with pandas.to_numeric."
        ) from err


def _check_weights(sample_weight, n_rows: int, owner: str) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_rows)
    weights = np.asarray(sample_weight, dtype=float)
    if weights.shape != (n_rows,):
        raise ValueError(f"{owner}: sample_weight has shape {weights.shape}, expected ({n_rows},), one per row.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"{owner}: sample_weight must be finite and >= 0 with a positive sum, got minimum "
            f"{np.nanmin(weights)!r} and sum {np.nansum(weights)!r}."
        )
    return weights
