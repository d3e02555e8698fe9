"""The seasonal naive forecaster: tomorrow looks like today (or the next step like this one).

The baseline every other model must beat (MASE is measured against it) and the
fallback while a series is too short for the others. Called through the
``Forecaster`` protocol by ``selection`` and ``forecast_series``.
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

__all__ = ["LastValue", "SeasonalNaive"]


class SeasonalNaive:
    """Repeat the last season (the shortest period given), or the last value without one.

    Bands come from the recent seasonal differences, widening with the number of
    seasons ahead (a random walk over seasons).
    """

    name = "seasonal-naive"
    version = "1"

    def __init__(self, residual_window: int = 2016) -> None:
        self.residual_window = residual_window

    def min_history(self, periods: Sequence[int]) -> int:
        return (periods[0] if periods else 1) + 2

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        x = np.atleast_2d(np.asarray(history, dtype=np.float64))
        m = periods[0] if periods else 1
        if x.shape[1] < m + 1:
            m = 1
        steps = np.arange(horizon)
        last_season = x[:, x.shape[1] - m :]
        mean = last_season[:, steps % m]
        tail = x[:, -min(x.shape[1], self.residual_window + m) :]
        residuals = tail[:, m:] - tail[:, :-m]
        growth = np.sqrt(steps // m + 1.0)[None, :].repeat(x.shape[0], axis=0)
        return Prediction(
            mean=mean,
            residual_quantiles=residual_quantiles(residuals, quantiles),
            growth=growth,
            quantiles=tuple(float(q) for q in quantiles),
        )


class LastValue(SeasonalNaive):
    """The next points equal the last one: hard to beat an hour ahead on bursty series."""

    name = "last-value"
    version = "1"

    def min_history(self, periods: Sequence[int]) -> int:
        return 3

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        return super().predict(history, horizon, (), quantiles)
