"""Multi-seasonal regression: daily and weekly Fourier terms, a trend, AR(1) residuals.

One design matrix serves every series of the same length and step, so a whole batch is
fitted with one least-squares solve; the AR(1) term carries the latest deviation from
the seasonal shape into the next steps. It handles the day-of-week effects that a
single-season Holt-Winters misses. Used through the ``Forecaster`` protocol by
``selection``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vigil.detectors.forecasting.base import (
    DEFAULT_QUANTILES,
    FloatArray,
    Prediction,
    residual_quantiles,
)

__all__ = ["FourierRegression"]


def _design(t: FloatArray, periods: Sequence[int], harmonics: Sequence[int]) -> FloatArray:
    cols = [np.ones_like(t), t / max(float(t.max()), 1.0)]
    for period, k_max in zip(periods, harmonics, strict=True):
        for k in range(1, k_max + 1):
            angle = 2 * np.pi * k * t / period
            cols += [np.sin(angle), np.cos(angle)]
    return np.column_stack(cols)


class FourierRegression:
    """Least squares on Fourier terms of each season plus a linear trend, AR(1) on the rest."""

    name = "fourier-ar1"
    version = "1"

    def __init__(
        self, *, daily_harmonics: int = 6, weekly_harmonics: int = 3, ridge: float = 1e-6
    ) -> None:
        self.daily_harmonics = daily_harmonics
        self.weekly_harmonics = weekly_harmonics
        self.ridge = ridge

    def min_history(self, periods: Sequence[int]) -> int:
        return 2 * (periods[0] if periods else 1) + 8

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        y = np.atleast_2d(np.asarray(history, dtype=np.float64))
        # fit on the last four weeks at most: enough cycles, and recent behaviour only
        window = 4 * periods[-1] if periods else 512
        y = y[:, -window:]
        length = y.shape[1]
        harmonics = [
            min(k, p // 2)
            for p, k in zip(periods, (self.daily_harmonics, self.weekly_harmonics), strict=False)
        ]
        t = np.arange(length + horizon, dtype=np.float64)
        design = _design(t, periods[: len(harmonics)], harmonics)
        x_fit, x_new = design[:length], design[length:]
        gram = x_fit.T @ x_fit + self.ridge * length * np.eye(x_fit.shape[1])
        coef = np.linalg.solve(gram, x_fit.T @ y.T)  # features × series
        resid = y - (x_fit @ coef).T
        lagged, current = resid[:, :-1], resid[:, 1:]
        denom = np.sum(lagged**2, axis=1)
        phi = np.where(denom > 0, np.sum(lagged * current, axis=1) / np.maximum(denom, 1e-12), 0)
        phi = np.clip(phi, 0.0, 0.98)
        innovations = current - phi[:, None] * lagged
        steps = np.arange(1, horizon + 1)
        carry = phi[:, None] ** steps[None, :] * resid[:, -1:]
        mean = (x_new @ coef).T + carry
        growth = np.sqrt(np.cumsum(phi[:, None] ** (2 * (steps[None, :] - 1)), axis=1))
        return Prediction(
            mean=mean,
            residual_quantiles=residual_quantiles(innovations, quantiles),
            growth=growth,
            quantiles=tuple(float(q) for q in quantiles),
        )
