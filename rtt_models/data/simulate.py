"""Simulate a transaction log with known per-customer parameters.

The simulator is the built-in dataset: a realistic log for examples, tests
and benchmarks, together with the ground truth that generated it, so that a
fitted model can be checked against the parameters it should recover.

Generative model (defaults in brackets; all times in days)
-----------------------------------------------------------
Customers are drawn into segments (:data:`DEFAULT_SEGMENTS`):

=============  =====  ===============  ==========  ===  ==================  =============
segment        share  mean rate / day  rate shape  k    mean dropout / day  dropout shape
=============  =====  ===============  ==========  ===  ==================  =============
replenishment  0.25   1/45             8           4    1/1095              3
frequent       0.25   1/30             2           1    1/365               2
occasional     0.50   1/150            0.8         1    1/540               1.5
=============  =====  ===============  ==========  ===  ==================  =============

Each customer also gets an acquisition ``channel`` ("web", "store", "app"
with shares 0.5, 0.35, 0.15), independent of everything else.

* **Acquisition.** Each customer's first purchase is at a time drawn
  uniformly from the first ``acquisition_days`` [365] of the window, so the
  log mixes customers of every age.
* **Purchase rate.** A customer's rate ``lambda`` (purchases per day) is
  gamma distributed across the customers of a segment with the segment's
  shape and mean, times ``rate_scale`` [1.0].
* **Timing.** Gaps between purchases are Erlang-k with mean ``1 / lambda``
  (coefficient of variation ``1 / sqrt(k)``): k = 4 makes the replenishment
  segment regular, k = 1 makes the other segments Poisson processes.
* **Dropout.** Pareto/NBD-style silent churn: a customer stays active for an
  exponential lifetime after acquisition, with a dropout rate ``mu`` that is
  gamma distributed across the segment's customers. Nothing is recorded
  after the dropout time. A segment with mean dropout rate 0 never drops out.
* **Season.** Purchase timing runs on a warped clock whose speed is
  ``1 + season_amplitude * exp(-d**2 / (2 * 12**2))`` [amplitude 1.0], with
  ``d`` the days to the nearest 10 December, normalised to average 1 over a
  non-leap year. The peak speed is therefore about 1.85 times the yearly
  average, and
  ``lambda`` keeps its meaning as the yearly average rate. Acquisition and
  dropout times are not warped.
* **Time of day.** Within each day, the clock is warped again so that
  purchases follow shop hours (:data:`HOURLY_WEIGHTS`). Both warps are
  increasing, so the order of events is preserved.
* **Spend.** Gamma-gamma: an occasion's spend is gamma with shape
  ``spend_p`` [6] and rate ``nu``, where ``nu`` is gamma with shape
  ``spend_q`` [4] and rate ``spend_gamma`` [15] across customers. The
  customer's mean spend is ``spend_p / nu`` (population mean
  ``spend_p * spend_gamma / (spend_q - 1)`` = 30 currency units). Amounts
  are rounded to cents, with a minimum of 0.01.

Recording artefacts, which exercise the data layer's repairs:

* ``split_rate`` [0.03]: share of purchases recorded as two rows on the same
  day, with the amount split between them.
* ``refund_rate`` [0.02]: share of purchase rows followed by a refund row
  (negative amount) later on the same day. A refund is full with
  probability ``full_refund_share`` [0.3] and otherwise between 10 % and 90 %
  of the row's amount, so a refund never exceeds the purchase it refers to.
  A fully refunded day nets to zero and is then no purchase occasion.
* ``duplicate_rate`` [0.001]: share of purchase rows that appear twice,
  identical in every column.

Row counts. A customer's expected number of purchases is about
``1 + lambda * T_active``, with ``T_active`` the active time inside the
window. Each purchase gives on average
``(1 + split_rate) * (1 + refund_rate + duplicate_rate)`` rows. Measured with the defaults over 730 days
(100,000 customers, seeds 0 and 1): 7.6 rows per customer at
``rate_scale=1.0`` and 10.0 at ``rate_scale=1.37``, so 1,000,000 customers
at ``rate_scale=1.37`` give about 10 million rows.

The simulation is vectorised across customers: it draws, per customer, the
count of purchases of an underlying Poisson process and places them with
gamma spacings, without a loop over customers or purchases.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtt_models.data.simulate_clock import (
    HOURLY_WEIGHTS,
    from_clock,
    seasonal_clock,
    seconds_to_timestamps,
    to_clock,
    to_shop_seconds,
)

__all__ = [
    "DEFAULT_SEGMENTS",
    "HOURLY_WEIGHTS",
    "SegmentSpec",
    "SimulatedData",
    "simulate_transactions",
]

CHANNELS = ("web", "store", "app")
CHANNEL_SHARES = (0.5, 0.35, 0.15)

# Upper bounds that keep timestamps and Poisson draws in range.
MAX_DAYS = 36_500
MAX_RATE_SCALE = 100.0


@dataclass(frozen=True)
class SegmentSpec:
    """Parameters of one customer segment (rates in events per day).

    Attributes
    ----------
    name : str
        Segment label written to the ``segment`` column.
    share : float
        Expected share of customers in the segment, in (0, 1].
    rate_mean_per_day : float
        Mean purchase rate across the segment's customers, purchases per day.
    rate_shape : float
        Gamma shape of the purchase rate across customers; the rate's
        coefficient of variation across customers is ``1 / sqrt(rate_shape)``.
    regularity_k : int
        Erlang shape of the gaps: 1 gives a Poisson process, larger values
        give more regular gaps (coefficient of variation ``1 / sqrt(k)``).
    dropout_mean_per_day : float
        Mean dropout rate across customers, per day; the mean lifetime of a
        customer with rate ``mu`` is ``1 / mu`` days. 0 means no dropout.
    dropout_shape : float
        Gamma shape of the dropout rate across customers.
    """

    name: str
    share: float
    rate_mean_per_day: float
    rate_shape: float
    regularity_k: int = 1
    dropout_mean_per_day: float = 0.0
    dropout_shape: float = 1.0


DEFAULT_SEGMENTS = (
    SegmentSpec("replenishment", 0.25, 1 / 45, 8.0, regularity_k=4, dropout_mean_per_day=1 / 1095, dropout_shape=3.0),
    SegmentSpec("frequent", 0.25, 1 / 30, 2.0, regularity_k=1, dropout_mean_per_day=1 / 365, dropout_shape=2.0),
    SegmentSpec("occasional", 0.50, 1 / 150, 0.8, regularity_k=1, dropout_mean_per_day=1 / 540, dropout_shape=1.5),
)


@dataclass(frozen=True)
class SimulatedData:
    """A simulated transaction log and the parameters that generated it.

    Attributes
    ----------
    transactions : DataFrame, shape (n_rows, 5)
        Columns ``customer_id`` (str, ``"C000001"``...), ``timestamp``
        (datetime64[ns], naive, with a time of day) and ``amount`` (float,
        currency units, negative for refunds). The pass-through columns
        ``segment`` (str) and ``channel`` (str, the customer's acquisition
        channel) are constant per customer. Rows are sorted by timestamp.
    customers : DataFrame, shape (n_customers, 10)
        Ground truth indexed by ``customer_id``: ``segment``, ``channel``,
        ``acquisition_date`` (timestamp of the first purchase),
        ``purchase_rate_per_day`` (yearly average, ``rate_scale`` included),
        ``regularity_k`` (Erlang shape of the gaps), ``dropout_rate_per_day``,
        ``dropout_date`` (NaT when the customer is still active at the end of
        the window), ``mean_spend`` (expected spend per occasion),
        ``n_purchases`` (purchases simulated, the first included, before
        splits, refunds and duplicates) and ``n_rows`` (rows in
        ``transactions``).
    window_start : Timestamp
        Start of the simulated window (midnight, included).
    window_end : Timestamp
        End of the simulated window (midnight, excluded).
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    window_start: pd.Timestamp
    window_end: pd.Timestamp


def simulate_transactions(
    n_customers: int = 10_000,
    *,
    seed: int = 0,
    start: str | pd.Timestamp = "2022-01-01",
    days: int = 730,
    acquisition_days: int = 365,
    rate_scale: float = 1.0,
    segments: tuple[SegmentSpec, ...] = DEFAULT_SEGMENTS,
    season_amplitude: float = 1.0,
    spend_p: float = 6.0,
    spend_q: float = 4.0,
    spend_gamma: float = 15.0,
    split_rate: float = 0.03,
    refund_rate: float = 0.02,
    full_refund_share: float = 0.3,
    duplicate_rate: float = 0.001,
) -> SimulatedData:
    """Simulate purchases of ``n_customers`` customers over ``days`` days.

    The generative model and its default parameter values are described in
    the module docstring.

    Parameters
    ----------
    n_customers : int, default 10_000
        Number of customers; each makes at least one purchase.
    seed : int, default 0
        Seed of the ``numpy.random.Generator``; the same seed and settings
        give identical frames.
    start : str or Timestamp, default "2022-01-01"
        First day of the window, a date without a time of day.
    days : int, default 730
        Length of the window in days.
    acquisition_days : int, default 365
        First purchases are uniform over the first ``acquisition_days`` days.
    rate_scale : float, default 1.0
        Factor applied to every purchase rate, in (0, 100]. Use it to reach a target
        number of rows: about 7.6 rows per customer at 1.0 and 10.0 at 1.37
        with the default segments and window.
    segments : tuple or list of SegmentSpec, default DEFAULT_SEGMENTS
        Segments with unique names and shares that sum to 1.
    season_amplitude : float, default 1.0
        Height of the seasonal bump around 10 December relative to the base
        purchase intensity; 0 disables the season.
    spend_p, spend_q, spend_gamma : float, default 6, 4, 15
        Gamma-gamma spend parameters (``spend_q`` above 1 so that the mean
        spend is finite).
    split_rate, refund_rate, full_refund_share, duplicate_rate : float
        Probabilities of the recording artefacts, each in [0, 1].

    Returns
    -------
    SimulatedData
        The transactions, the per-customer ground truth and the window.

    Raises
    ------
    ValueError
        If a parameter is out of its allowed range; the message names the
        parameter, the value received and the range.
    """
    window_start = _validate_start(start)
    _validate_settings(
        n_customers=n_customers,
        seed=seed,
        days=days,
        acquisition_days=acquisition_days,
        rate_scale=rate_scale,
        season_amplitude=season_amplitude,
        spend_p=spend_p,
        spend_q=spend_q,
        spend_gamma=spend_gamma,
        split_rate=split_rate,
        refund_rate=refund_rate,
        full_refund_share=full_refund_share,
        duplicate_rate=duplicate_rate,
    )
    _validate_segments(segments)
    rng = np.random.default_rng(seed)
    n = int(n_customers)

    # Customer-level parameters: segment, channel, rates, lifetimes, spend.
    shares = np.array([segment.share for segment in segments])
    segment_index = rng.choice(len(segments), size=n, p=shares / shares.sum())
    channel_index = rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARES)
    rate_shape = np.array([s.rate_shape for s in segments])[segment_index]
    rate_mean = np.array([s.rate_mean_per_day for s in segments])[segment_index]
    purchase_rate = rng.gamma(rate_shape, rate_mean / rate_shape) * rate_scale
    regularity_k = np.array([s.regularity_k for s in segments], dtype=np.int64)[segment_index]
    dropout_shape = np.array([s.dropout_shape for s in segments])[segment_index]
    dropout_mean = np.array([s.dropout_mean_per_day for s in segments])[segment_index]
    dropout_rate = rng.gamma(dropout_shape, dropout_mean / dropout_shape)
    spend_rate = rng.gamma(spend_q, 1.0 / spend_gamma, size=n)
    mean_spend = spend_p / spend_rate

    # Calendar times in days since window_start: acquisition and dropout.
    acquisition_time = rng.uniform(0.0, acquisition_days, size=n)
    with np.errstate(divide="ignore"):
        lifetime = rng.exponential(1.0, size=n) / dropout_rate
    dropout_time = acquisition_time + lifetime
    active_end_time = np.minimum(dropout_time, float(days))

    # Purchase times on the seasonal clock: the acquisition purchase, then
    # every k-th point of a Poisson process of rate k * lambda, which makes
    # Erlang-k gaps of mean 1 / lambda.
    clock_knots = seasonal_clock(window_start, days, season_amplitude)
    acquisition_clock = to_clock(acquisition_time, clock_knots)
    active_clock = to_clock(active_end_time, clock_knots) - acquisition_clock
    repeat_offsets, n_repeats = _place_repeat_purchases(rng, purchase_rate, regularity_k, active_clock)

    # Lay purchases out by customer, then time: each customer's block is the
    # acquisition followed by the repeats, which are already increasing.
    purchase_owner = np.repeat(np.arange(n), n_repeats + 1)
    is_acquisition = np.zeros(purchase_owner.size, dtype=bool)
    is_acquisition[np.arange(n) + np.concatenate([[0], np.cumsum(n_repeats)[:-1]])] = True
    purchase_clock = np.empty(purchase_owner.size)
    purchase_clock[is_acquisition] = acquisition_clock
    purchase_clock[~is_acquisition] = np.repeat(acquisition_clock, n_repeats) + repeat_offsets
    purchase_seconds = to_shop_seconds(from_clock(purchase_clock, clock_knots))
    purchase_amount = _round_cents(rng.gamma(spend_p, 1.0 / spend_rate[purchase_owner]))

    # Recording artefacts: split purchases, refunds, exact duplicates.
    owner, seconds, amount = _split_purchases(rng, purchase_owner, purchase_seconds, purchase_amount, split_rate)
    refunds = _draw_refunds(rng, owner, seconds, amount, refund_rate, full_refund_share)
    duplicates = rng.random(owner.size) < duplicate_rate
    owner = np.concatenate([owner, refunds[0], owner[duplicates]])
    seconds = np.concatenate([seconds, refunds[1], seconds[duplicates]])
    amount = np.concatenate([amount, refunds[2], amount[duplicates]])

    # Assemble the frames; a stable sort keeps a purchase before its refund
    # and its duplicate when they share a timestamp.
    width = max(6, len(str(n)))
    customer_ids = np.array([f"C{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    segment_names = np.array([s.name for s in segments], dtype=object)
    channel_names = np.array(CHANNELS, dtype=object)
    order = np.argsort(seconds, kind="stable")
    owner = owner[order]
    transactions = pd.DataFrame(
        {
            "customer_id": customer_ids[owner],
            "timestamp": seconds_to_timestamps(seconds[order], window_start),
            "amount": amount[order],
            "segment": segment_names[segment_index][owner],
            "channel": channel_names[channel_index][owner],
        }
    )
    dropout_date = seconds_to_timestamps(to_shop_seconds(active_end_time), window_start)
    dropout_date[dropout_time >= days] = np.datetime64("NaT")
    customers = pd.DataFrame(
        {
            "segment": segment_names[segment_index],
            "channel": channel_names[channel_index],
            "acquisition_date": seconds_to_timestamps(to_shop_seconds(acquisition_time), window_start),
            "purchase_rate_per_day": purchase_rate,
            "regularity_k": regularity_k,
            "dropout_rate_per_day": dropout_rate,
            "dropout_date": dropout_date,
            "mean_spend": mean_spend,
            "n_purchases": 1 + n_repeats,
            "n_rows": np.bincount(owner, minlength=n),
        },
        index=pd.Index(customer_ids, name="customer_id"),
    )
    return SimulatedData(
        transactions=transactions,
        customers=customers,
        window_start=window_start,
        window_end=window_start + pd.Timedelta(days=days),
    )


# ---------------------------------------------------------------- validation


def _validate_start(start) -> pd.Timestamp:
    """Parse ``start`` and check that it is a naive date at midnight."""
    try:
        timestamp = pd.Timestamp(start)
    except (TypeError, ValueError) as err:
        raise ValueError(f"start must be a date such as '2022-01-01', got {start!r}.") from err
    if timestamp is pd.NaT or timestamp.tzinfo is not None or timestamp != timestamp.normalize():
        raise ValueError(
            f"start must be a date without time of day or time zone, such as '2022-01-01', got {start!r}."
        )
    return timestamp


def _check_integer(name: str, value, low: int, high: int | None = None) -> None:
    """Raise ValueError unless ``value`` is an integer in [low, high]."""
    in_range = (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )
    if not in_range:
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}.")


def _check_real(name: str, value, low: float, high: float, *, low_open: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite real number in its range.

    The range is [low, high], or (low, high] when ``low_open`` is true; an
    infinite ``high`` means no upper bound.
    """
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    in_range = is_number and (value > low if low_open else value >= low) and value <= high
    if not in_range:
        lower = f"> {low}" if low_open else f">= {low}"
        allowed = lower if math.isinf(high) else f"{lower} and <= {high}"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}.")


def _validate_settings(**settings) -> None:
    """Check every scalar setting of :func:`simulate_transactions`."""
    _check_integer("n_customers", settings["n_customers"], 1)
    _check_integer("seed", settings["seed"], 0)
    _check_integer("days", settings["days"], 1, MAX_DAYS)
    _check_integer("acquisition_days", settings["acquisition_days"], 1, settings["days"])
    _check_real("rate_scale", settings["rate_scale"], 0.0, MAX_RATE_SCALE, low_open=True)
    _check_real("season_amplitude", settings["season_amplitude"], 0.0, math.inf)
    _check_real("spend_p", settings["spend_p"], 0.0, math.inf, low_open=True)
    _check_real("spend_q", settings["spend_q"], 1.0, math.inf, low_open=True)
    _check_real("spend_gamma", settings["spend_gamma"], 0.0, math.inf, low_open=True)
    for name in ("split_rate", "refund_rate", "full_refund_share", "duplicate_rate"):
        _check_real(name, settings[name], 0.0, 1.0)


def _validate_segments(segments) -> None:
    """Check the segment specifications: types, ranges, names and shares."""
    if not isinstance(segments, (tuple, list)) or len(segments) == 0:
        raise ValueError(f"segments must be a non-empty tuple of SegmentSpec, got {segments!r}.")
    for position, segment in enumerate(segments):
        if not isinstance(segment, SegmentSpec):
            raise ValueError(f"segments[{position}] must be a SegmentSpec, got {type(segment).__name__}.")
        label = f"segment {segment.name!r}"
        _check_real(f"{label} share", segment.share, 0.0, 1.0, low_open=True)
        _check_real(f"{label} rate_mean_per_day", segment.rate_mean_per_day, 0.0, math.inf, low_open=True)
        _check_real(f"{label} rate_shape", segment.rate_shape, 0.0, math.inf, low_open=True)
        _check_integer(f"{label} regularity_k", segment.regularity_k, 1, 100)
        _check_real(f"{label} dropout_mean_per_day", segment.dropout_mean_per_day, 0.0, math.inf)
        _check_real(f"{label} dropout_shape", segment.dropout_shape, 0.0, math.inf, low_open=True)
    names = [segment.name for segment in segments]
    if len(set(names)) != len(names):
        raise ValueError(f"segment names must be unique, got {names}.")
    total_share = sum(segment.share for segment in segments)
    if not math.isclose(total_share, 1.0, abs_tol=1e-6):
        raise ValueError(f"segment shares must sum to 1, got {total_share:.6g}; rescale the shares.")


# ---------------------------------------------------------------- purchases


def _place_repeat_purchases(
    rng: np.random.Generator, rate: np.ndarray, regularity_k: np.ndarray, active_clock: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw each customer's repeat purchases after acquisition on the seasonal clock.

    For customer i, the underlying Poisson process of rate ``k_i * rate_i``
    has ``N_i`` points in ``(0, active_clock_i)``. Given ``N_i``, the points
    are spaced like ``N_i + 1`` standard exponentials scaled to fill the
    interval. Every k-th point is a purchase (``M_i = N_i // k_i`` of them),
    so each purchase's spacing is one Gamma(k) draw. The spacing after the
    last purchase is a single Gamma(N_i - k_i M_i + 1) draw, so no sort and
    no loop are needed.

    Returns
    -------
    offsets : ndarray, shape (sum(M),)
        Clock days from acquisition to each repeat purchase, grouped by
        customer in customer order and increasing within a customer.
    counts : ndarray of int, shape (n_customers,)
        ``M_i``, the number of repeat purchases of each customer.
    """
    n_points = rng.poisson(regularity_k * rate * active_clock)
    counts = n_points // regularity_k
    remainder = n_points - counts * regularity_k

    # Segmented cumulative sums of the Gamma(k) spacings, one segment per customer.
    spacing = rng.gamma(np.repeat(regularity_k, counts).astype(np.float64))
    tail = rng.gamma(remainder + 1.0)
    running = np.concatenate([[0.0], np.cumsum(spacing)])
    segment_start = np.concatenate([[0], np.cumsum(counts)])
    before_segment = running[segment_start[:-1]]
    segment_total = running[segment_start[1:]] - before_segment
    cumulative = running[1:] - np.repeat(before_segment, counts)

    # Scale to each customer's active clock time.
    scale = active_clock / (segment_total + tail)
    return cumulative * np.repeat(scale, counts), counts


def _round_cents(amounts: np.ndarray) -> np.ndarray:
    """Round to cents, with a minimum of 0.01."""
    return np.maximum(np.round(amounts, 2), 0.01)


def _later_same_day(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """Draw a time at or after each given second and before the next midnight."""
    remaining = 86_399 - seconds % 86_400
    return seconds + np.floor(rng.random(seconds.size) * (remaining + 1)).astype(np.int64)


def _split_purchases(
    rng: np.random.Generator, owner: np.ndarray, seconds: np.ndarray, amount: np.ndarray, split_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record a share of purchases as two rows on the same day.

    The first row keeps 20 % to 80 % of the amount. The second row, later
    that day, gets the rest. Purchases under 0.02 are never split.

    Returns
    -------
    owner, seconds, amount : ndarray, shape (n_rows,)
        The purchase rows followed by the second rows of the split purchases.
    """
    split = (rng.random(owner.size) < split_rate) & (amount >= 0.02)
    first_part = np.clip(np.round(amount[split] * rng.uniform(0.2, 0.8, split.sum()), 2), 0.01, amount[split] - 0.01)
    second_part = np.round(amount[split] - first_part, 2)
    amount = amount.copy()
    amount[split] = first_part
    return (
        np.concatenate([owner, owner[split]]),
        np.concatenate([seconds, _later_same_day(rng, seconds[split])]),
        np.concatenate([amount, second_part]),
    )


def _draw_refunds(
    rng: np.random.Generator,
    owner: np.ndarray,
    seconds: np.ndarray,
    amount: np.ndarray,
    refund_rate: float,
    full_refund_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw refund rows for a share of purchase rows, later on the same day.

    A partial refund is 10 % to 90 % of the row's amount, rounded down to
    cents, so that no refund exceeds the purchase it refers to.

    Returns
    -------
    owner, seconds, amount : ndarray, shape (n_refunds,)
        Refund rows; ``amount`` is negative.
    """
    refunded = rng.random(owner.size) < refund_rate
    purchase = amount[refunded]
    full = rng.random(purchase.size) < full_refund_share
    partial = np.floor(purchase * rng.uniform(0.1, 0.9, purchase.size) * 100.0) / 100.0
    refund = np.where(full, purchase, np.maximum(np.round(partial, 2), 0.01))
    return owner[refunded], _later_same_day(rng, seconds[refunded]), -refund
