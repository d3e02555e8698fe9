"""Season detection: daily, weekly or none, per series, vectorised over rows.

Called by the seasonal and exponential-smoothing detectors at fit time. A period is
only considered when the history holds ``min_cycles + 1`` of it (three days for a
daily season by default), and chosen when
the autocorrelation at that lag of the series minus its trailing one-period mean
(which removes trend and level shifts but keeps the season) clears ``min_acf``.
"""

from __future__ import annotations

import numpy as np

from vigil.detectors._robust import moving_average, nanmean, nanmedian
from vigil.detectors.base import FloatArray, IntArray, as_matrix

__all__ = [
    "DAY",
    "WEEK",
    "candidate_periods",
    "detect_periods",
    "lag_autocorrelation",
    "phase_index",
    "seasonal_profile",
]

DAY = 86_400.0
WEEK = 7 * DAY


def candidate_periods(n_points: int, step: float, min_cycles: float = 2.0) -> list[int]:
    """Daily and weekly periods in columns that fit ``min_cycles + 1`` times in the history."""
    if step <= 0:
        raise ValueError(f"step must be > 0 seconds, got {step}")
    out = []
    for length in (DAY, WEEK):
        period = round(length / step)
        if (
            period >= 4
            and abs(period * step - length) < step / 2
            # One cycle more than min_cycles: the first is spent on the moving average.
            and n_points >= (min_cycles + 1) * period
        ):
            out.append(period)
    return out


def lag_autocorrelation(x: FloatArray, lag: int) -> FloatArray:
    """Per-row Pearson correlation of ``x[:, lag:]`` with ``x[:, :-lag]``, ignoring NaN pairs."""
    a = x[:, lag:]
    b = x[:, :-lag]
    both = ~(np.isnan(a) | np.isnan(b))
    a = np.where(both, a, np.nan)
    b = np.where(both, b, np.nan)
    da = a - nanmean(a, axis=1)[:, None]
    db = b - nanmean(b, axis=1)[:, None]
    num = np.nansum(da * db, axis=1)
    den = np.sqrt(np.nansum(da * da, axis=1) * np.nansum(db * db, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        acf = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.asarray(acf, dtype=np.float64)


def detect_periods(
    history: FloatArray,
    step: float,
    *,
    min_cycles: float = 2.0,
    min_acf: float = 0.3,
    weekly_margin: float = 0.1,
) -> IntArray:
    """The season length in columns for each row: daily, weekly, or 0 for none.

    Weekly wins over daily only when its autocorrelation is higher by ``weekly_margin``
    (a daily pattern repeats at the weekly lag too).
    """
    x = as_matrix(history, "history")
    n_rows, n_points = x.shape
    best = np.zeros(n_rows, dtype=np.int64)
    best_acf = np.full(n_rows, -np.inf)
    for period in candidate_periods(n_points, step, min_cycles):
        detrended = x - moving_average(x, period)
        acf = lag_autocorrelation(detrended[:, period:], period)
        take = (acf >= min_acf) & (acf > best_acf + np.where(best > 0, weekly_margin, 0.0))
        best = np.where(take, period, best)
        best_acf = np.where(take, acf, best_acf)
    return best


def phase_index(t: int, periods: IntArray) -> IntArray:
    """Column ``t``'s position in each row's season (0 for rows without a season)."""
    return np.asarray(t % np.maximum(periods, 1), dtype=np.int64)


def seasonal_profile(history: FloatArray, periods: IntArray, max_cycles: int = 4) -> FloatArray:
    """Per-row seasonal shape (``n × max(periods)``), phase ``j % period`` for column ``j``.

    The median over the last ``max_cycles`` cycles of the series minus its centred
    one-period moving average, centred to mean zero; rows without a season get zeros.
    Medians keep one bad day from bending the shape.
    """
    x = as_matrix(history, "history")
    n_rows, n_points = x.shape
    width = max(int(periods.max(initial=0)), 1)
    profile = np.zeros((n_rows, width))
    for period in np.unique(periods[periods > 0]):
        p = int(period)
        rows = np.flatnonzero(periods == p)
        sub = x[rows]
        trailing = moving_average(sub, p)
        centred = np.full_like(sub, np.nan)
        half = p // 2
        off = p - 1 - half  # trailing mean at c + off is centred on c
        centred[:, : n_points - off] = trailing[:, off:]
        centred[:, :half] = np.nan  # the trailing mean is not yet a full cycle there
        detrended = sub - centred
        cycles = min(max_cycles, n_points // p)
        start = n_points - cycles * p
        seg = detrended[:, start:].reshape(len(rows), cycles, p)
        shape = np.nan_to_num(nanmedian(seg, axis=1))
        # A median of a few cycles is noisy; a short circular running median (1/48 of
        # the period, 30 minutes of a day) smooths it and, unlike a mean, keeps steps sharp.
        width_smooth = max(1, p // 48) | 1
        if width_smooth > 1:
            from scipy.ndimage import median_filter

            shape = median_filter(shape, size=(1, width_smooth), mode="wrap")
        shape -= shape.mean(axis=1, keepdims=True)
        profile[rows, :p] = np.roll(shape, start % p, axis=1)
    return profile
