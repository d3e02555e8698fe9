"""Robust, NaN-aware statistics over rows of a 2-D array (private to ``vigil.detectors``).

The detectors call these in fit and update. numpy warns on all-NaN slices; a series
that is all gaps is normal here (it is warming up), so those warnings are silenced and
the result is NaN, which the callers turn into the warming-up state.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

from vigil.detectors.base import FloatArray

__all__ = [
    "MAD_TO_SIGMA",
    "chunks",
    "moving_average",
    "nanmean",
    "nanmedian",
    "robust_scale",
    "scale_floor",
]

# For Gaussian data, sigma = 1.4826 × median absolute deviation.
MAD_TO_SIGMA = 1.4826


def nanmedian(x: FloatArray, axis: int = -1) -> FloatArray:
    """Median ignoring NaN; NaN where a slice is all NaN.

    numpy's own ``nanmedian`` falls back to masked arrays on short axes (the rolling
    windows here), about 10× slower than sorting once and picking the middle.
    """
    moved = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    if moved.shape[-1] == 0:
        return np.full(moved.shape[:-1], np.nan)
    nan = np.isnan(moved)
    if not nan.any():
        return np.asarray(np.median(moved, axis=-1), dtype=np.float64)
    ordered = np.sort(moved, axis=-1)  # NaN sorts last
    count = moved.shape[-1] - np.count_nonzero(nan, axis=-1)
    lo = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, np.maximum(count // 2, 0)[..., None], axis=-1)[..., 0]
    return np.asarray(np.where(count > 0, (lo + hi) / 2.0, np.nan), dtype=np.float64)


def nanmean(x: FloatArray, axis: int = -1) -> FloatArray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(x, axis=axis), dtype=np.float64)


def robust_scale(x: FloatArray, axis: int = -1) -> FloatArray:
    """Sigma estimated from the median absolute deviation along ``axis`` (NaN-aware)."""
    med = nanmedian(x, axis=axis)
    return MAD_TO_SIGMA * nanmedian(np.abs(x - np.expand_dims(med, axis)), axis=axis)


def scale_floor(history: FloatArray) -> FloatArray:
    """A per-row lower bound for a residual scale.

    A flat or quantised series has MAD 0; dividing by it would turn rounding noise into
    huge scores. The floor is a small fraction of the row's own spread (level-invariant)
    plus a tiny term of its magnitude for float rounding only.
    """
    spread = nanmean(np.abs(np.diff(history, axis=1)), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q_hi, q_lo = np.nanpercentile(history, [95, 5], axis=1)
    mag = nanmean(np.abs(history), axis=1)
    floor = (
        0.05 * np.nan_to_num(spread)
        + 0.01 * np.nan_to_num(np.abs(q_hi - q_lo))
        + 1e-9 * np.nan_to_num(mag)
    )
    return np.asarray(np.maximum(floor, 1e-9), dtype=np.float64)


def moving_average(x: FloatArray, window: int) -> FloatArray:
    """Trailing NaN-aware mean over ``window`` columns (including the current one)."""
    valid = ~np.isnan(x)
    vals = np.where(valid, x, 0.0)
    csum = np.cumsum(vals, axis=1)
    ccnt = np.cumsum(valid, axis=1, dtype=np.float64)
    csum[:, window:] = csum[:, window:] - csum[:, :-window].copy()
    ccnt[:, window:] = ccnt[:, window:] - ccnt[:, :-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(
            np.where(ccnt > 0, csum / np.maximum(ccnt, 1.0), np.nan), dtype=np.float64
        )


def chunks(n: int, size: int) -> Iterator[slice]:
    """Row slices of at most ``size`` rows: fits run batch by batch to bound memory."""
    for start in range(0, n, max(size, 1)):
        yield slice(start, min(start + size, n))
