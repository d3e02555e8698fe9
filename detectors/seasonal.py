"""Seasonal baseline: season shape + robust local level, residuals scored by median/MAD.

The cheap first stage of the ensemble (``vigil.detectors.ensemble``), vectorised over
thousands of series. At fit, each row gets a season (daily, weekly or none, see
``periods``), a seasonal shape (median over recent cycles of the series minus its
centred moving average; statsmodels' STL is the reference the tests compare against)
and a residual scale (MAD of the causal residuals). Each update predicts
``level + season[phase]``, where level is the median of the last ``level_window``
deseasonalised points, and scores ``|residual| / scale``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vigil.detectors._robust import chunks, nanmedian, robust_scale, scale_floor
from vigil.detectors.base import BoolArray, FloatArray, IntArray, Scores, as_matrix
from vigil.detectors.periods import detect_periods, phase_index, seasonal_profile

__all__ = ["SeasonalBaseline"]


class SeasonalBaseline:
    """Robust seasonal baseline detector (univariate, level-invariant)."""

    name = "seasonal"
    version = "1.0"
    multivariate = False
    level_invariant = True
    uses_season = True

    def __init__(
        self,
        *,
        threshold: float = 5.0,
        level_window: int = 12,
        max_cycles: int = 4,
        min_points: int = 36,
        min_acf: float = 0.3,
        scale_sample: int = 1024,
        clip: float = 3.0,
    ) -> None:
        if level_window < 1:
            raise ValueError(f"level_window must be >= 1 point, got {level_window}")
        if min_points < level_window + 2:
            raise ValueError(
                f"min_points ({min_points}) must exceed level_window ({level_window}) by 2"
            )
        self.threshold = float(threshold)
        self.level_window = int(level_window)
        self.max_cycles = int(max_cycles)
        self.min_points = int(min_points)
        self.min_acf = float(min_acf)
        self.scale_sample = int(scale_sample)
        self.clip = float(clip)
        self.periods: IntArray = np.zeros(0, dtype=np.int64)
        self.profile: FloatArray = np.zeros((0, 1))
        self.scale: FloatArray = np.zeros(0)
        self._buf: FloatArray = np.zeros((0, self.level_window))
        self._pos = 0
        self._t = 0
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def fit(self, history: FloatArray, step: float, *, periods: IntArray | None = None) -> None:
        x = as_matrix(history, "history")
        n_rows, n_points = x.shape
        w = self.level_window
        self._ready = np.count_nonzero(~np.isnan(x), axis=1) >= self.min_points
        self.periods = detect_periods(x, step, min_acf=self.min_acf) if periods is None else periods
        self.profile = seasonal_profile(x, self.periods, self.max_cycles)
        cols = np.arange(n_points)
        self.scale = np.full(n_rows, np.nan)
        floor = scale_floor(x) if n_points > 1 else np.full(n_rows, 1e-9)
        for rows in chunks(n_rows, 512):
            idx = np.arange(rows.start, rows.stop)
            season = self.profile[
                idx[:, None], cols[None, :] % np.maximum(self.periods[idx], 1)[:, None]
            ]
            deseason = x[rows] - season
            if n_points > w:
                # Causal residuals exactly as ``update`` computes them, on at most
                # ``scale_sample`` recent columns to bound the cost of the rolling median.
                windows = sliding_window_view(deseason[:, :-1], w, axis=1)
                take = min(self.scale_sample, windows.shape[1])
                level = nanmedian(windows[:, -take:, :], axis=2)
                resid = deseason[:, -take:] - level
                self.scale[rows] = robust_scale(resid, axis=1)
        self.scale = np.where(np.isfinite(self.scale), np.maximum(self.scale, floor), floor)
        self._buf = np.full((n_rows, w), np.nan)
        take = min(3 * w, n_points)
        if take:
            season_tail = self.profile[
                np.arange(n_rows)[:, None],
                cols[None, -take:] % np.maximum(self.periods, 1)[:, None],
            ]
            tail = x[:, -take:] - season_tail
            # Clipped around the median of a longer stretch, as ``update`` clips: a
            # refit in the middle of an excursion must not start from its level.
            base = nanmedian(tail, axis=1)[:, None]
            bound = self.clip * self.scale[:, None]
            tail = np.where(np.isnan(base), tail, np.clip(tail, base - bound, base + bound))
            keep = min(w, take)
            self._buf[:, w - keep :] = tail[:, -keep:]
        self._pos = 0
        self._t = n_points

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        n_rows, k = x.shape
        if n_rows != self._ready.size:
            raise ValueError(f"{self.name}: fitted on {self._ready.size} rows, got {n_rows}")
        out = np.full((4, n_rows, k), np.nan)
        rows = np.arange(n_rows)
        for j in range(k):
            season = self.profile[rows, phase_index(self._t, self.periods)]
            level = nanmedian(self._buf, axis=1)
            expected = level + season
            col = x[:, j]
            score = np.abs(col - expected) / self.scale
            out[0, :, j] = np.where(self._ready, score, np.nan)
            out[1, :, j] = expected
            out[2, :, j] = expected - self.threshold * self.scale
            out[3, :, j] = expected + self.threshold * self.scale
            # Clipped before it joins the level window: a short excursion must not drag
            # the level (or the return to normal would look anomalous); a lasting
            # shift is still adopted, ``clip`` scales per step.
            bound = self.clip * self.scale
            deseason = col - season
            self._buf[:, self._pos] = np.where(
                np.isnan(level), deseason, np.clip(deseason, level - bound, level + bound)
            )
            self._pos = (self._pos + 1) % self.level_window
            self._t += 1
        return Scores(score=out[0], expected=out[1], low=out[2], high=out[3])
