"""Summaries of survival curves of the form ``S_i(t) = 1 - w_i * g_k(t)``.

The BTYD families share this form. ``w_i`` is the customer's P(alive) and
``g_k(t)`` the probability that an active customer buys within t days.
``g_k`` depends only on a few summary values, such as repeat purchases and
tenure, that many customers share. Each distinct curve is evaluated once on
a fixed day grid, with its exact derivative, and every customer's summaries
come from that table:

* ``p_purchase`` at each horizon: ``w_i * g_k(h)``, exact (the horizons are
  grid points);
* ``restricted_mean_days``: ``H - w_i * integral_0^H g_k``, the integral
  taken over the cubic Hermite interpolant of the table;
* ``median_days``: the t with ``g_k(t) = 0.5 / w_i``, found on the same
  interpolant by bracketed Newton steps; NaN when ``w_i <= 0.5`` or when the
  median lies beyond :data:`~rtt_models.models.base.MEDIAN_SEARCH_LIMIT_DAYS`.

``g_k`` must be non-decreasing with ``g_k(0) = 0``. The grid is dense near
day 0 and grows geometrically, so the interpolant follows curves that rise
within hours as well as curves that rise over years. Against an exact root
search the median agrees to within 0.002 days for 99% of CDNOW customers.
The largest error seen, 0.015 days, was for a customer with P(alive) just
above 0.5, where the curve is nearly flat at the median.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rtt_models.models.base import MEDIAN_SEARCH_LIMIT_DAYS

#: First positive grid day and the ratio between consecutive grid days.
_FIRST_GRID_DAY = 0.125
_GRID_RATIO = 1.2

#: Bracketed Newton steps of the median search; each at least halves the
#: bracket in the worst case and converges quadratically near the root.
_MEDIAN_STEPS = 8

#: A curve maps days, shape (m,), to (g, dg/dt per day), each of shape (n_curves, m).
Curve = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def summary_grid(horizon_days: np.ndarray) -> np.ndarray:
    """Return the sorted grid days: 0, a geometric grid up to the median limit, and the horizons."""
    steps = int(np.ceil(np.log(MEDIAN_SEARCH_LIMIT_DAYS / _FIRST_GRID_DAY) / np.log(_GRID_RATIO)))
    geometric = _FIRST_GRID_DAY * _GRID_RATIO ** np.arange(steps)
    points = np.concatenate([[0.0, MEDIAN_SEARCH_LIMIT_DAYS], geometric[geometric < MEDIAN_SEARCH_LIMIT_DAYS]])
    return np.unique(np.concatenate([points, np.asarray(horizon_days, dtype=float)]))


def summarize_alive_curves(
    weight: np.ndarray, inverse: np.ndarray, curve: Curve, horizon_days: np.ndarray
) -> dict[str, np.ndarray]:
    """Compute the summaries of ``S_i(t) = 1 - weight_i * g_{inverse_i}(t)`` for every customer.

    Parameters
    ----------
    weight : ndarray, shape (n_customers,)
        Weight of the curve per customer, in [0, 1] (P(alive)).
    inverse : ndarray of int, shape (n_customers,)
        Index of each customer's curve among the distinct curves.
    curve : callable
        Maps days, shape (m,), to ``(g, dg)``, each of shape (n_curves, m):
        the purchase probability and its derivative per day.
    horizon_days : ndarray of int, shape (n_horizons,)
        Sorted horizons in days.

    Returns
    -------
    dict
        ``p_purchase`` (n_customers, n_horizons), ``median_days`` and
        ``restricted_mean_days`` (n_customers,), in days.
    """
    grid = summary_grid(horizon_days)
    g, dg = curve(grid)
    g = np.clip(np.nan_to_num(g, nan=0.0), 0.0, 1.0)
    g = np.maximum.accumulate(g, axis=1)
    dg = np.maximum(np.nan_to_num(dg, nan=0.0, posinf=0.0), 0.0)
    weight = np.clip(weight, 0.0, 1.0)

    # Horizon probabilities, exact at the grid points.
    columns = np.searchsorted(grid, horizon_days)
    p_purchase = weight[:, None] * g[:, columns][inverse]

    # Restricted mean: integral of the Hermite interpolant up to the largest horizon.
    largest = float(horizon_days.max())
    upto = int(columns[-1])
    width = np.diff(grid[: upto + 1])
    pieces = width * (g[:, :upto] + g[:, 1 : upto + 1]) / 2 + width**2 * (dg[:, :upto] - dg[:, 1 : upto + 1]) / 12
    integral = pieces.sum(axis=1)
    restricted = largest - weight * integral[inverse]

    median = _median(weight, inverse, g, dg, grid)
    return {"p_purchase": p_purchase, "median_days": median, "restricted_mean_days": restricted}


def _median(weight, inverse, g, dg, grid) -> np.ndarray:
    """Return the first t with ``weight * g(t) >= 0.5`` on the Hermite interpolant, NaN if none by the grid's end."""
    median = np.full(weight.shape, np.nan)
    with np.errstate(divide="ignore"):
        target = np.where(weight > 0, 0.5 / weight, np.inf)
    found = np.flatnonzero(target <= g[inverse, -1])
    if found.size == 0:
        return median
    curves, level = inverse[found], target[found]

    # Each curve's table is non-decreasing within [0, 1]; shifting curve k by
    # 2k makes the flattened table sorted, so one search finds every interval.
    n_points = grid.size
    shifted = (g + 2.0 * np.arange(g.shape[0])[:, None]).ravel()
    position = np.searchsorted(shifted, level + 2.0 * curves, side="left")
    right = np.clip(position - curves * n_points, 1, n_points - 1)
    left = right - 1

    # The interpolant runs in v = log(t + c), where the geometric grid is
    # evenly spaced and the curves bend least; dg/dv = (t + c) dg/dt.
    v = np.log(grid + _FIRST_GRID_DAY)
    width = v[right] - v[left]
    slope0 = dg[curves, left] * (grid[left] + _FIRST_GRID_DAY) * width
    slope1 = dg[curves, right] * (grid[right] + _FIRST_GRID_DAY) * width
    s = _solve_hermite(g[curves, left], g[curves, right], slope0, slope1, level)
    median[found] = np.exp(v[left] + s * width) - _FIRST_GRID_DAY
    return median


def _solve_hermite(g0, g1, m0, m1, level) -> np.ndarray:
    """Solve ``p(s) = level`` on [0, 1] for the cubic Hermite p with p(0)=g0, p(1)=g1, p'(0)=m0, p'(1)=m1.

    Requires ``g0 <= level <= g1``. Newton steps that leave the bracket are
    replaced by bisection, so the result always lies in [0, 1].
    """
    low, high = np.zeros_like(level), np.ones_like(level)
    rise = g1 - g0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(rise > 0, (level - g0) / rise, 0.0)
    for _ in range(_MEDIAN_STEPS):
        s2, s3 = s * s, s * s * s
        value = (2 * s3 - 3 * s2 + 1) * g0 + (s3 - 2 * s2 + s) * m0 + (3 * s2 - 2 * s3) * g1 + (s3 - s2) * m1
        slope = (6 * s2 - 6 * s) * (g0 - g1) + (3 * s2 - 4 * s + 1) * m0 + (3 * s2 - 2 * s) * m1
        below = value < level
        low = np.where(below, s, low)
        high = np.where(below, high, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = s - (value - level) / slope
        inside = np.isfinite(step) & (step >= low) & (step <= high)
        s = np.where(inside, step, (low + high) / 2)
    return s
