"""A mixture of next-purchase models, weighted by an internal backtest (``ensemble``).

The ensemble's next-purchase curve is a mixture of its members' curves,

    S_i(t) = sum_k w_k S_ik(t),   w_k >= 0,   sum_k w_k = 1,

so it is a valid survival curve whenever every member's is (1 at t = 0,
non-increasing, within [0, 1]). Expected occasions are the same mixture of
the members' expected occasions, and ``p_alive`` is the weighted mean over
the members that define it (NaN when none does).

Weights by backtest
-------------------
With ``weights="backtest"``, ``fit`` picks the weights by a backtest inside
the calibration data, so the holdout after the cut-off is never seen:

1. The occasions before the cut-off are rebuilt as a transaction log from the
   gap episodes. Every episode is one occasion, with its day
   (``occasion_date``), its net amount (``spend_last``) and its items
   (``quantity_last``, when the log has quantities).
2. An inner cut-off ``inner_window_days`` before the cut-off splits that log
   into inner features, inner episodes and the truth of the inner window.
3. Each member is fitted at the inner cut-off and predicts survival on the
   day grid 0..inner_window_days.
4. The weights minimise the integrated Brier score (IBS) of the mixture on
   the inner window. The IBS of a mixture is a quadratic function of the
   weights, so the minimum over the simplex is found by a small quadratic
   program.
5. Every member is refitted on the full calibration data.

The C-index is not part of the objective: a mixture's ranking can be
better or worse than each member's, and IBS rewards both ranking and
calibration.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from rtt_models.models.base import NextPurchaseModel
from rtt_models.models.names import make_model

logger = logging.getLogger("rtt_models")

#: Members of ``make_model("ensemble")``: a BTYD model, the mixture cure
#: regression of gaps and the boosted discrete-time hazard.
DEFAULT_MEMBERS: tuple[str, ...] = ("pareto_nbd", "dropout_timing", "gb_hazard")

# An inner window shorter than this leaves too few inner purchases to weigh
# members; longer calibration histories use a third of their length.
_MIN_INNER_WINDOW_DAYS = 14

# Weights below this after the quadratic program are set to 0.
_NEGLIGIBLE_WEIGHT = 1e-6

# Episode columns that describe the occasion itself, not a pass-through column.
_EPISODE_OWN_COLUMNS = frozenset({"customer_id", "occasion_date", "duration", "event", "elapsed_days", "tenure_days"})


class SurvivalEnsembleModel(NextPurchaseModel):
    """Weighted mixture of next-purchase models (``ensemble``).

    Parameters
    ----------
    members : sequence of str or NextPurchaseModel, default DEFAULT_MEMBERS
        Short model names (see :func:`rtt_models.models.model_names`) or
        unfitted models. Each is cloned before fitting. A member's label is
        its short name, or its class name for a class without one.
    weights : "backtest", None or sequence of float, default "backtest"
        ``"backtest"`` chooses the weights by the internal backtest in the
        module docstring, ``None`` gives every member the same weight, and
        a sequence of one non-negative number per member is divided by its
        sum.
    inner_window_days : int or None, default None
        Length in days of the inner window of the weight backtest. None
        uses a third of the days from the first occasion in the episodes
        to the cut-off, at least 14.

    Attributes
    ----------
    members_ : list of NextPurchaseModel
        Members fitted on the full calibration data.
    member_names_ : list of str
        One label per member: its short name, or its class name.
    weights_ : ndarray, shape (n_members,)
        Mixture weights, non-negative, summing to 1.
    backtest_scores_ : DataFrame or None
        With ``weights="backtest"`` and several members: the inner-window
        IBS per member and of the weighted mixture (row ``ensemble``), with
        column ``weight``; None otherwise.
    inner_cutoff_ : Timestamp or None
        Cut-off day of the internal backtest, None without one.
    feature_names_in_ : list of str
        Union of the members' feature columns, ``elapsed_days`` included.

    Notes
    -----
    * The inner backtest fits each member twice; its cost is about twice the
      members' fitting time.
    * Members whose inner fit or prediction fails get weight 0 and a
      ``UserWarning`` naming the member and the error; when every member
      fails, ``fit`` raises.
    * Weights chosen on an inner window describe the calibration period. A
      change of behaviour between the calibration period and the scoring
      period (a cohort that ages, a season) is not seen by them.
    """

    def __init__(self, members=DEFAULT_MEMBERS, weights="backtest", inner_window_days=None):
        self.members = members
        self.weights = weights
        self.inner_window_days = inner_window_days

    # ----------------------------------------------------------- settings

    @property
    def needs_episodes(self) -> bool:
        """True when a member needs gap episodes or the weights come from the internal backtest."""
        if isinstance(self.weights, str) and self.weights == "backtest":
            return True
        try:
            templates = self._member_templates()
        except (TypeError, ValueError):
            return False
        return any(template.needs_episodes for _, template in templates)

    @property
    def defines_p_alive(self) -> bool:
        """True when at least one fitted member defines P(alive)."""
        members = getattr(self, "members_", None)
        return bool(members) and any(member.defines_p_alive for member in members)

    def _member_templates(self) -> list[tuple[str, NextPurchaseModel]]:
        """Return (label, unfitted model) per member, checking each entry."""
        name = type(self).__name__
        if isinstance(self.members, (str, NextPurchaseModel)) or not isinstance(self.members, Sequence):
            raise TypeError(
                f"{name}: members must be a sequence of model names or models, got {self.members!r}; "
                "for example ('pareto_nbd', 'gb_hazard')."
            )
        if len(self.members) == 0:
            raise ValueError(f"{name}: members is empty; pass at least one model name, for example ('pareto_nbd',).")
        templates, labels = [], []
        for position, member in enumerate(self.members):
            if isinstance(member, str):
                if member == "ensemble":
                    raise ValueError(f"{name}: member {position} is 'ensemble'; an ensemble cannot contain itself.")
                label, template = member, make_model(member)
            elif isinstance(member, NextPurchaseModel):
                label, template = _short_name(type(member)), clone(member)
            else:
                raise TypeError(
                    f"{name}: member {position} is a {type(member).__name__}, not a model name or a "
                    "NextPurchaseModel."
                )
            # Repeated labels get a position suffix so that score tables stay unique.
            if label in labels:
                label = f"{label}_{position}"
            labels.append(label)
            templates.append((label, template))
        return templates

    def _fixed_weights(self, n_members: int) -> np.ndarray | None:
        """Return the normalised fixed weights, or None for ``"backtest"``."""
        name = type(self).__name__
        if isinstance(self.weights, str):
            if self.weights != "backtest":
                raise ValueError(
                    f"{name}: weights must be 'backtest', None or one number per member, got {self.weights!r}."
                )
            return None
        if self.weights is None:
            return np.full(n_members, 1.0 / n_members)
        values = np.asarray(self.weights, dtype=float)
        if values.shape != (n_members,) or not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
            raise ValueError(
                f"{name}: weights must be {n_members} finite numbers >= 0 with a positive sum, one per member, "
                f"got {self.weights!r}."
            )
        return values / values.sum()

    def _check_inner_window(self) -> None:
        value = self.inner_window_days
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < _MIN_INNER_WINDOW_DAYS
        ):
            raise ValueError(
                f"{type(self).__name__}: inner_window_days must be None or a whole number of days >= "
                f"{_MIN_INNER_WINDOW_DAYS}, got {value!r}."
            )

    # ------------------------------------------------------------------ fit

    def fit(self, features: pd.DataFrame, episodes: pd.DataFrame | None = None):
        """Choose the mixture weights, then fit every member on the calibration data.

        Parameters
        ----------
        features : DataFrame, shape (n_customers, n_features)
            Per-customer features at the cut-off, from
            :func:`rtt_models.features.build_features`.
        episodes : DataFrame, shape (n_occasions, n_columns), optional
            Gap episodes at the same cut-off, from
            :func:`rtt_models.features.build_episodes`. Required when
            ``weights="backtest"`` or a member needs episodes.

        Returns
        -------
        self
        """
        name = type(self).__name__
        templates = self._member_templates()
        fixed = self._fixed_weights(len(templates))
        self._check_inner_window()
        if self.needs_episodes and episodes is None:
            raise ValueError(
                f"{name} needs gap episodes (for the weight backtest or a member such as gb_hazard); pass "
                "build_episodes(log, as_of) as the second argument of fit, or set weights=None."
            )
        labels = [label for label, _ in templates]

        # Weights: fixed, or from the backtest inside the calibration data.
        self.backtest_scores_ = None
        self.inner_cutoff_ = None
        if fixed is not None:
            weights = fixed
        elif len(templates) == 1:
            weights = np.ones(1)
        else:
            weights = self._backtest_weights(templates, episodes)

        # Refit every member with a positive weight on the full calibration data.
        members = []
        for (label, template), weight in zip(templates, weights):
            member = clone(template)
            if weight > 0:
                logger.info("ensemble: fitting member %s (weight %.3f)", label, weight)
                member.fit(features, episodes if member.needs_episodes else None)
            members.append(member)
        positive = weights > 0
        self.members_ = [member for member, keep in zip(members, positive) if keep]
        self.member_names_ = [label for label, keep in zip(labels, positive) if keep]
        self.weights_ = weights[positive] / weights[positive].sum()

        columns: list[str] = []
        for member in self.members_:
            columns.extend(c for c in member._required_columns() if c not in columns)
        self.feature_names_in_ = columns
        return self

    def _backtest_weights(self, templates, episodes: pd.DataFrame) -> np.ndarray:
        """Fit members at an inner cut-off and return the weights of least inner IBS."""
        from rtt_models.features import build_episodes, split_calibration_holdout

        log, cutoff_day = transactions_from_episodes(episodes)
        first_day = pd.Timestamp(episodes["occasion_date"].min())
        window = self.inner_window_days
        if window is None:
            window = max(_MIN_INNER_WINDOW_DAYS, int(round((cutoff_day - first_day).days / 3)))
        inner_cutoff = cutoff_day - pd.Timedelta(days=int(window))
        if inner_cutoff <= first_day:
            raise ValueError(
                f"{type(self).__name__}: the inner cut-off {inner_cutoff.date()} ({window} days before the cut-off "
                f"{cutoff_day.date()}) is not after the first occasion on {first_day.date()}; pass a smaller "
                "inner_window_days or weights=None."
            )
        self.inner_cutoff_ = inner_cutoff
        logger.info("ensemble: weight backtest at inner cut-off %s with a %d-day window", inner_cutoff.date(), window)

        # Inner features, episodes and truth; every rebuilt row is an occasion.
        split = split_calibration_holdout(log, inner_cutoff, int(window), occasion_rule="all")
        inner_episodes = build_episodes(log, inner_cutoff, occasion_rule="all")
        grid = np.arange(0, int(window) + 1, dtype=float)

        curves, labels, failed = [], [], []
        for label, template in templates:
            member = clone(template)
            try:
                member.fit(split.features, inner_episodes if member.needs_episodes else None)
                curves.append(member.predict_survival(split.features, grid).to_numpy(dtype=float))
                labels.append(label)
            except Exception as err:  # noqa: BLE001 - one failing member must not stop the others
                warnings.warn(
                    f"ensemble member {label} failed in the weight backtest at {inner_cutoff.date()} and gets "
                    f"weight 0: {type(err).__name__}: {err}",
                    UserWarning,
                    stacklevel=3,
                )
                failed.append(label)
        if not curves:
            raise ValueError(
                f"every ensemble member failed in the weight backtest at {inner_cutoff.date()}; see the warnings, "
                "or set weights=None."
            )

        # Quadratic program on the simplex, then the score table.
        truth = split.truth
        not_yet = ~truth["event"].to_numpy(dtype=bool)[:, None] | (
            truth["days_to_next"].to_numpy(dtype=float)[:, None] > grid[None, :]
        )
        chosen, member_ibs, mixture_ibs = mixture_weights_by_ibs(np.stack(curves), not_yet, grid)
        by_label = dict(zip(labels, chosen))
        weights = np.array([by_label.get(label, 0.0) for label, _ in templates])
        table = pd.DataFrame(
            {
                "ibs": [*[dict(zip(labels, member_ibs)).get(label, np.nan) for label, _ in templates], mixture_ibs],
                "weight": [*weights, 1.0],
            },
            index=pd.Index([*[label for label, _ in templates], "ensemble"], name="member"),
        )
        self.backtest_scores_ = table
        logger.info("ensemble: weights %s", dict(zip(table.index[:-1], np.round(weights, 3))))
        return weights

    # ------------------------------------------------------------ predict

    def _survival_matrix(self, features: pd.DataFrame, times_days: np.ndarray) -> np.ndarray:
        """Return the weighted mixture of the members' finished curves, shape (n_customers, n_times)."""
        total = np.zeros((len(features), len(times_days)))
        for member, weight in zip(self.members_, self.weights_):
            frame = member._check_features(features)
            total += weight * member._finished_survival(frame, times_days)
        return total

    def _closed_form_summary(self, frame: pd.DataFrame, horizon_days: np.ndarray) -> dict[str, np.ndarray] | None:
        """Use the only member's own summaries when the weights keep a single member.

        A mixture of one curve is that curve, so the ensemble then scores
        exactly like the member, closed forms included.
        """
        if len(self.members_) != 1:
            return None
        member = self.members_[0]
        predicted = member.predict(member._check_features(frame), horizons=horizon_days)
        return {
            "p_purchase": predicted[[f"p_purchase_{h}d" for h in horizon_days]].to_numpy(),
            "expected_occasions": predicted[[f"expected_occasions_{h}d" for h in horizon_days]].to_numpy(),
            "median_days": predicted["median_days_to_next"].to_numpy(),
            "restricted_mean_days": predicted["expected_days_to_next"].to_numpy(),
            "p_alive": predicted["p_alive"].to_numpy(),
        }

    def _expected_occasions(self, features: pd.DataFrame, horizon_days: np.ndarray) -> np.ndarray:
        """Return the weighted mixture of the members' expected occasions, shape (n_customers, n_horizons)."""
        total = np.zeros((len(features), len(horizon_days)))
        for member, weight in zip(self.members_, self.weights_):
            total += weight * member._expected_occasions(member._check_features(features), horizon_days)
        return total

    def _p_alive(self, features: pd.DataFrame) -> np.ndarray:
        """Return the weighted mean P(alive) of the members that define it, shape (n_customers,)."""
        total = np.zeros(len(features))
        weight_sum = 0.0
        for member, weight in zip(self.members_, self.weights_):
            if member.defines_p_alive:
                total += weight * member._p_alive(member._check_features(features))
                weight_sum += weight
        return total / weight_sum if weight_sum > 0 else np.full(len(features), np.nan)

    def member_survival(self, features: pd.DataFrame, times: Sequence[float]) -> dict[str, pd.DataFrame]:
        """Predict each member's survival curves, for comparing members with the mixture.

        Returns
        -------
        dict of str to DataFrame
            Member label to ``predict_survival(features, times)`` of that member.
        """
        check_is_fitted(self)
        return {label: member.predict_survival(features, times) for label, member in zip(self.member_names_, self.members_)}


def _short_name(cls: type) -> str:
    """Return the short model name of a class, or its class name when it has none."""
    from rtt_models.models.names import MODEL_CLASSES

    path = f"{cls.__module__}:{cls.__name__}"
    return next((name for name, target in MODEL_CLASSES.items() if target == path), cls.__name__)


def mixture_weights_by_ibs(curves: np.ndarray, not_yet: np.ndarray, grid_days: np.ndarray):
    """Find the mixture weights of least integrated Brier score.

    Parameters
    ----------
    curves : ndarray, shape (n_members, n_customers, n_times)
        Each member's survival ``S_ik(t)`` on ``grid_days``.
    not_yet : ndarray of bool, shape (n_customers, n_times)
        Whether the customer had made no purchase by each day of the grid.
    grid_days : ndarray, shape (n_times,)
        Increasing days from 0 to the window length.

    Returns
    -------
    weights : ndarray, shape (n_members,)
        Non-negative, summing to 1.
    member_ibs : ndarray, shape (n_members,)
        IBS of each member alone.
    mixture_ibs : float
        IBS of the weighted mixture.

    Notes
    -----
    With trapezoid weights ``q_t`` divided by the window length,
    ``IBS(w) = w' G w - 2 b' w + c`` where ``G_kl = mean_i sum_t q_t S_ik S_il``,
    ``b_k = mean_i sum_t q_t S_ik y_it`` and ``c = mean_i sum_t q_t y_it``. The
    minimum over the simplex is found by SLSQP from equal weights; ties
    between identical members keep them equal.
    """
    grid = np.asarray(grid_days, dtype=float)
    quadrature = np.zeros_like(grid)
    steps = np.diff(grid)
    quadrature[:-1] += steps / 2
    quadrature[1:] += steps / 2
    quadrature /= grid[-1] - grid[0]

    n_members, n_customers = curves.shape[0], curves.shape[1]
    target = np.asarray(not_yet, dtype=float)
    weighted = curves * quadrature[None, None, :]
    gram = np.einsum("kit,lit->kl", weighted, curves) / n_customers
    cross = np.einsum("kit,it->k", weighted, target) / n_customers
    constant = float(np.sum(target * quadrature[None, :]) / n_customers)
    member_ibs = np.diag(gram) - 2 * cross + constant

    if n_members == 1:
        return np.ones(1), member_ibs, float(member_ibs[0])
    result = minimize(
        lambda w: (w @ gram @ w - 2 * cross @ w, 2 * gram @ w - 2 * cross),
        np.full(n_members, 1.0 / n_members),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_members,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
        options={"ftol": 1e-12, "maxiter": 200},
    )
    weights = np.clip(result.x, 0.0, None)
    weights[weights < _NEGLIGIBLE_WEIGHT] = 0.0
    weights = weights / weights.sum()
    mixture_ibs = float(weights @ gram @ weights - 2 * cross @ weights + constant)
    return weights, member_ibs, mixture_ibs


def transactions_from_episodes(episodes: pd.DataFrame):
    """Rebuild the occasions behind gap episodes as a transaction log.

    Parameters
    ----------
    episodes : DataFrame, shape (n_occasions, n_columns)
        Output of :func:`rtt_models.features.build_episodes`.

    Returns
    -------
    log : TransactionLog
        One row per occasion: ``customer_id``, ``timestamp`` (the occasion
        day), ``amount`` (``spend_last``, absent when every value is NaN),
        ``quantity`` (``quantity_last``, when present) and the pass-through
        columns. Build features from it with ``occasion_rule="all"``: each
        row already is one occasion.
    cutoff_day : Timestamp
        The cut-off day of the episodes: ``episodes.attrs["as_of"]``, or the
        latest day that a censored episode reaches.
    """
    from rtt_models.data import load_transactions

    required = ["customer_id", "occasion_date", "duration", "event", "spend_last"]
    missing = [c for c in required if c not in episodes.columns]
    if missing:
        raise ValueError(
            f"episodes lack columns {missing}; pass the output of rtt_models.features.build_episodes."
        )
    if episodes.empty:
        raise ValueError("episodes are empty, so there is no occasion to backtest on.")
    dates = pd.to_datetime(episodes["occasion_date"])
    if "as_of" in episodes.attrs:
        cutoff_day = pd.Timestamp(episodes.attrs["as_of"])
    else:
        censored = ~episodes["event"].to_numpy(dtype=bool)
        reach = dates[censored] + pd.to_timedelta(episodes["duration"][censored], unit="D")
        cutoff_day = reach.max().normalize()

    # One row per occasion; pass-through columns are the episode columns that no statistic produces.
    from rtt_models.features import FEATURE_COLUMNS

    frame = pd.DataFrame({"customer_id": episodes["customer_id"].to_numpy(), "timestamp": dates.to_numpy()})
    mapping: dict[str, object] = {"customer_id": "customer_id", "timestamp": "timestamp"}
    if episodes["spend_last"].notna().any():
        frame["amount"] = episodes["spend_last"].to_numpy(dtype=float)
        mapping["amount"] = "amount"
    if "quantity_last" in episodes.columns:
        frame["quantity"] = episodes["quantity_last"].to_numpy(dtype=float)
        mapping["quantity"] = "quantity"
    passthrough = [c for c in episodes.columns if c not in _EPISODE_OWN_COLUMNS and c not in FEATURE_COLUMNS]
    for column in passthrough:
        frame[column] = episodes[column].to_numpy()
    mapping["passthrough"] = tuple(passthrough)
    return load_transactions(frame, columns=mapping), cutoff_day
