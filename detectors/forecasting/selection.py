"""Choosing a forecaster per series by rolling-origin backtest, scored by MASE.

``AutoForecaster`` is the forecaster the agent uses: for each series it replays the
last few forecast origins with every candidate (each sees only the data before its
origin), scores them by MASE — mean absolute error over the in-sample error of the
seasonal naive forecast — and keeps the best. The choice is cached per series key and
redone every ``reselect_every`` calls, so the backtest cost is amortised over ticks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from vigil.detectors.forecasting.base import DEFAULT_QUANTILES, FloatArray, Forecaster, Prediction
from vigil.detectors.forecasting.fourier import FourierRegression
from vigil.detectors.forecasting.holt_winters import HoltWinters
from vigil.detectors.forecasting.naive import LastValue, SeasonalNaive

__all__ = ["AutoForecaster", "backtest_mase", "mase_scale"]


def mase_scale(history: FloatArray, period: int) -> FloatArray:
    """Per row: in-sample mean absolute error of the seasonal naive forecast (MASE's unit)."""
    m = period if history.shape[1] > period else 1
    diffs = np.abs(history[:, m:] - history[:, :-m])
    scale = diffs.mean(axis=1) if diffs.shape[1] else np.ones(history.shape[0])
    return np.where(scale > 1e-12, scale, 1.0)


def backtest_mase(
    forecaster: Forecaster,
    history: FloatArray,
    horizon: int,
    periods: Sequence[int],
    *,
    origins: int = 3,
) -> FloatArray:
    """Mean MASE per row over ``origins`` rolling origins (the last ``origins × horizon``
    points are forecast in turn, each from the data before it)."""
    x = np.atleast_2d(history)
    m = periods[0] if periods else 1
    scores = np.zeros(x.shape[0])
    used = 0
    for k in range(origins, 0, -1):
        origin = x.shape[1] - k * horizon
        if origin < forecaster.min_history(periods):
            continue
        past, future = x[:, :origin], x[:, origin : origin + horizon]
        pred = forecaster.predict(past, future.shape[1], periods, (0.5,))
        mae = np.abs(future - pred.mean).mean(axis=1)
        scores += mae / mase_scale(past, m)
        used += 1
    return scores / used if used else np.full(x.shape[0], np.inf)


class AutoForecaster:
    """Per-series choice among candidates by rolling-origin MASE, cached per key."""

    name = "auto"
    version = "1"

    def __init__(
        self,
        candidates: Sequence[Forecaster] | None = None,
        *,
        origins: int = 3,
        reselect_every: int = 24,
    ) -> None:
        self.candidates = list(
            candidates or (SeasonalNaive(), LastValue(), HoltWinters(), FourierRegression())
        )
        if not self.candidates:
            raise ValueError("AutoForecaster needs at least one candidate")
        self.origins = origins
        self.reselect_every = reselect_every
        self._choice: dict[Hashable, tuple[int, int]] = {}  # key -> (candidate, age)
        self.last_scores: FloatArray = np.empty((0, len(self.candidates)))

    def min_history(self, periods: Sequence[int]) -> int:
        return min(c.min_history(periods) for c in self.candidates)

    def select(self, history: FloatArray, horizon: int, periods: Sequence[int]) -> np.ndarray:
        """Index of the best candidate per row (MASE matrix kept in ``last_scores``)."""
        x = np.atleast_2d(history)
        scores = np.full((x.shape[0], len(self.candidates)), np.inf)
        for j, cand in enumerate(self.candidates):
            if x.shape[1] >= cand.min_history(periods) + horizon:
                scores[:, j] = backtest_mase(cand, x, horizon, periods, origins=self.origins)
        self.last_scores = scores
        best: np.ndarray = np.argmin(scores, axis=1)
        return best

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        *,
        keys: Sequence[Hashable] | None = None,
    ) -> Prediction:
        """Forecast each row with its chosen candidate; ``keys`` lets choices be reused."""
        x = np.atleast_2d(np.asarray(history, dtype=np.float64))
        n = x.shape[0]
        if keys is not None and len(keys) != n:
            raise ValueError(f"{len(keys)} keys for {n} series")
        choice = np.full(n, -1)
        if keys is not None:
            for i, key in enumerate(keys):
                cached = self._choice.get(key)
                if cached and cached[1] < self.reselect_every:
                    choice[i] = cached[0]
                    self._choice[key] = (cached[0], cached[1] + 1)
        todo = np.flatnonzero(choice < 0)
        if todo.size:
            choice[todo] = self.select(x[todo], horizon, periods)
            if keys is not None:
                for i in todo.tolist():
                    self._choice[keys[i]] = (int(choice[i]), 1)
        qs = tuple(float(q) for q in quantiles)
        mean = np.empty((n, horizon))
        growth = np.empty((n, horizon))
        rq = np.empty((n, len(qs)))
        for j, cand in enumerate(self.candidates):
            rows = np.flatnonzero(choice == j)
            if rows.size:
                pred = cand.predict(x[rows], horizon, periods, qs)
                mean[rows], growth[rows], rq[rows] = pred.mean, pred.growth, pred.residual_quantiles
        names = tuple(self.candidates[int(j)].name for j in choice)
        return Prediction(
            mean=mean, residual_quantiles=rq, growth=growth, quantiles=qs, models=names
        )
