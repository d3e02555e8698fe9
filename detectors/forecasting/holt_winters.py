"""Holt-Winters (additive, damped trend): a vectorised numpy filter and the statsmodels one.

``HoltWinters`` runs the recursions for a whole batch of series and a small grid of
smoothing parameters at once (one numpy operation per time step for all of them), then
keeps, per series, the parameters with the smallest one-step error: a thousand
workloads in well under a second. ``StatsmodelsHoltWinters`` is the reference it is
tested against (``statsmodels`` fits by optimisation; slow, one series at a time).
Both are used through the ``Forecaster`` protocol by ``selection``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from vigil.detectors.forecasting.base import (
    DEFAULT_QUANTILES,
    FloatArray,
    Prediction,
    residual_quantiles,
)

__all__ = ["HoltWinters", "StatsmodelsHoltWinters", "holt_winters_filter"]

ALPHAS = (0.1, 0.3, 0.7)
BETAS = (0.0, 0.02)
GAMMAS = (0.1, 0.3)


def holt_winters_filter(
    x: FloatArray,
    alpha: FloatArray,
    beta: FloatArray,
    gamma: FloatArray,
    *,
    phi: float,
    period: int,
    horizon: int,
) -> tuple[FloatArray, FloatArray]:
    """Additive damped Holt-Winters over rows of ``x`` with per-row parameters.

    Initial state from the first two seasons (level: the first season's mean; trend: the
    change of season means per step; seasonal: the first season minus its mean). Returns
    one-step errors (rows × time, the first season NaN) and forecasts (rows × horizon).
    """
    rows, length = x.shape
    m = max(period, 1)
    if length < 2 * m:
        raise ValueError(f"Holt-Winters needs two seasons ({2 * m} points), got {length}")
    # time-major copies: each step then reads and writes contiguous rows (much faster)
    xt = np.ascontiguousarray(x.T)
    level = xt[:m].mean(axis=0)
    if m > 1:
        trend = (xt[m : 2 * m].mean(axis=0) - level) / m
        season = xt[:m] - level[None, :]
    else:
        trend = xt[1] - xt[0]
        season = np.zeros((1, rows))
    errors = np.empty((length, rows))
    a, b, g = alpha, beta, gamma
    one_a, one_b, one_g = 1 - a, (1 - b) * phi, 1 - g
    for t in range(length):
        j = t % m
        s_prev = season[j]
        damped = level + phi * trend
        yt = xt[t]
        deseason = yt - s_prev
        errors[t] = deseason - damped
        new_level = a * deseason + one_a * damped
        trend = b * (new_level - level) + one_b * trend
        season[j] = g * (yt - damped) + one_g * s_prev
        level = new_level
    errors[:m] = np.nan  # the first season only fits its own initial state
    steps = np.arange(1, horizon + 1)
    damp_sum = np.cumsum(phi**steps)
    forecast = (
        level[:, None] + damp_sum[None, :] * trend[:, None] + season[(length + steps - 1) % m].T
    )
    errors = errors.T
    return errors, forecast


class HoltWinters:
    """Additive damped Holt-Winters on the shortest season, parameters per series by grid."""

    name = "holt-winters"
    version = "1"

    def __init__(self, *, phi: float = 0.98, fit_window_seasons: int = 4) -> None:
        if not 0 < phi <= 1:
            raise ValueError(f"phi (trend damping) must be in (0, 1], got {phi}")
        self.phi = phi
        self.fit_window_seasons = fit_window_seasons

    def min_history(self, periods: Sequence[int]) -> int:
        return 2 * (periods[0] if periods else 1) + 4

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        x = np.atleast_2d(np.asarray(history, dtype=np.float64))
        m = periods[0] if periods else 1
        window = max(self.fit_window_seasons * m, 64)
        x = x[:, -window:]
        grid = list(itertools.product(ALPHAS, BETAS, GAMMAS if m > 1 else (0.0,)))
        n, g = x.shape[0], len(grid)
        params = np.array(grid)  # g × 3
        tiled = np.repeat(x, g, axis=0)  # (n·g) × t, series-major
        alpha = np.tile(params[:, 0], n)
        beta = np.tile(params[:, 1], n)
        gamma = np.tile(params[:, 2], n)
        errors, forecast = holt_winters_filter(
            tiled, alpha, beta, gamma, phi=self.phi, period=m, horizon=horizon
        )
        sse = np.nanmean(errors**2, axis=1).reshape(n, g)
        best = np.argmin(sse, axis=1)
        chosen = np.arange(n) * g + best
        mean = forecast[chosen]
        resid = errors[chosen][:, m:]
        a = params[best, 0]
        steps = np.arange(horizon)
        growth = np.sqrt(1.0 + steps[None, :] * a[:, None] ** 2)
        return Prediction(
            mean=mean,
            residual_quantiles=residual_quantiles(resid, quantiles),
            growth=growth,
            quantiles=tuple(float(q) for q in quantiles),
        )


class StatsmodelsHoltWinters:
    """statsmodels' ``ExponentialSmoothing`` (additive damped trend and season), fitted by
    maximum likelihood per series: the reference implementation, and slow."""

    name = "statsmodels-holt-winters"
    version = "1"

    def min_history(self, periods: Sequence[int]) -> int:
        return 2 * (periods[0] if periods else 1) + 4

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        x = np.atleast_2d(np.asarray(history, dtype=np.float64))
        m = periods[0] if periods else 0
        means, resids = [], []
        for row in x:
            model = ExponentialSmoothing(
                row,
                trend="add",
                damped_trend=True,
                seasonal="add" if m > 1 else None,
                seasonal_periods=m if m > 1 else None,
                initialization_method="estimated",
            )
            fit = model.fit()
            means.append(np.asarray(fit.forecast(horizon), dtype=np.float64))
            resids.append(np.asarray(fit.resid, dtype=np.float64)[max(m, 1) :])
        resid = np.array(resids)
        alpha = np.full(x.shape[0], 0.5)
        steps = np.arange(horizon)
        return Prediction(
            mean=np.array(means),
            residual_quantiles=residual_quantiles(resid, quantiles),
            growth=np.sqrt(1.0 + steps[None, :] * alpha[:, None] ** 2),
            quantiles=tuple(float(q) for q in quantiles),
        )
