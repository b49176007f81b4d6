"""Calendar helpers of the transaction simulator: the seasonal clock and shop hours.

The simulator draws purchases on a seasonal clock, which runs faster around
the December peak, so that a constant purchase rate on the clock gives the
seasonal bump in calendar time. Times of day are then moved into shop hours
by the hourly weights below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Seasonal peak date (month, day) and its Gaussian width in days.
SEASON_PEAK_MONTH_DAY = (12, 10)
SEASON_WIDTH_DAYS = 12.0

#: Relative purchase intensity per hour of the day, from 00:00 to 23:00.
HOURLY_WEIGHTS = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4,
     2.8, 2.6, 2.2, 2.0, 2.2, 2.6, 3.0, 3.2, 3.0, 2.4, 1.6, 0.8]
)  # fmt: skip


def seasonal_clock(window_start: pd.Timestamp, days: int, amplitude: float) -> np.ndarray:
    """Return the seasonal clock at each midnight of the window.

    The clock's speed is constant within a day and its integral over a
    non-leap year is 365, so it runs at the calendar's pace on average.

    Returns
    -------
    ndarray, shape (days + 1,)
        Clock time in days at midnights 0, 1, ..., ``days``; starts at 0.
    """
    dates = np.datetime64(window_start.date(), "D") + np.arange(days)
    reference_year = np.datetime64("2021-01-01", "D") + np.arange(365)
    window_speed = _season_speed(dates, amplitude)
    mean_speed = _season_speed(reference_year, amplitude).mean()
    return np.concatenate([[0.0], np.cumsum(window_speed / mean_speed)])


def _season_speed(dates: np.ndarray, amplitude: float) -> np.ndarray:
    """Return the unnormalised clock speed of each date (datetime64[D])."""
    month, day = SEASON_PEAK_MONTH_DAY
    year_start = dates.astype("datetime64[Y]")
    distances = []
    for year_shift in (-1, 0, 1):
        peak = (year_start + year_shift).astype("datetime64[M]") + (month - 1)
        peak = peak.astype("datetime64[D]") + (day - 1)
        distances.append(np.abs((dates - peak).astype(np.float64)))
    distance = np.min(distances, axis=0)
    return 1.0 + amplitude * np.exp(-0.5 * (distance / SEASON_WIDTH_DAYS) ** 2)


def to_clock(times: np.ndarray, clock_knots: np.ndarray) -> np.ndarray:
    """Map calendar days since the window start to seasonal clock days."""
    return np.interp(times, np.arange(clock_knots.size, dtype=np.float64), clock_knots)


def from_clock(clock: np.ndarray, clock_knots: np.ndarray) -> np.ndarray:
    """Map seasonal clock days back to calendar days since the window start."""
    return np.interp(clock, clock_knots, np.arange(clock_knots.size, dtype=np.float64))


def to_shop_seconds(times: np.ndarray) -> np.ndarray:
    """Convert calendar days to whole seconds, moving times of day into shop hours.

    Within each day, the fraction of the day is mapped through the quantile
    function of :data:`HOURLY_WEIGHTS`, which is increasing, so the order
    of times is kept (ties possible at the resolution of one second).
    """
    hour_cdf = np.concatenate([[0.0], np.cumsum(HOURLY_WEIGHTS)]) / HOURLY_WEIGHTS.sum()
    day = np.floor(times)
    hour = np.interp(times - day, hour_cdf, np.arange(25, dtype=np.float64))
    second_of_day = np.minimum(np.floor(hour * 3600.0), 86_399.0)
    return (day * 86_400.0 + second_of_day).astype(np.int64)


def seconds_to_timestamps(seconds: np.ndarray, window_start: pd.Timestamp) -> np.ndarray:
    """Convert whole seconds since the window start to datetime64[ns]."""
    return np.datetime64(window_start.to_datetime64(), "ns") + seconds.astype("timedelta64[s]").astype(
        "timedelta64[ns]"
    )
