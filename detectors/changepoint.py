"""Level shifts: a two-sided CUSUM on the deseasonalised series, vectorised over rows.

Third member of the ensemble: a step that is small against the noise of each point
(so the seasonal and ETS residuals stay quiet) still adds up here. At fit each row gets
its season (``periods``), a reference level (median of the last ``level_window``
deseasonalised points) and a noise scale. Each update adds ``z - drift`` to the upper
and ``-z - drift`` to the lower sum; the raw score is the larger sum. Once a sum passes
``reset × threshold`` the shift is accepted: the reference moves to the recent mean and
the sums restart.

The scale is the *long-run* one: the spread of ``batch``-point means (from the
differences of consecutive batch means, which a level shift barely moves) times
``√batch``, never below the point-to-point noise. Metrics such as
``rate(x[5m])`` sampled every minute are strongly autocorrelated (lag-1 correlation
0.9 and more); scaled by point noise alone, their natural wander adds up in the sums
like a shift, and the twin showed CUSUM over its threshold a third of the time.

A level shift can only be told from a daily swing once the daily season could be
learned: a row is ready only when its own history spans ``season_cycles`` days (when
the step allows a daily season at all). Younger rows (new pods, a fresh install) are
warming up for this member; the seasonal and Holt-Winters members, whose local level
follows a slow swing, score them meanwhile.
"""

from __future__ import annotations

import numpy as np

from vigil.detectors._robust import nanmean, nanmedian, robust_scale, scale_floor
from vigil.detectors.base import BoolArray, FloatArray, IntArray, Scores, as_matrix
from vigil.detectors.periods import DAY, detect_periods, phase_index, seasonal_profile

__all__ = ["CusumDetector"]


class CusumDetector:
    """Two-sided CUSUM level-shift detector (univariate, level-invariant)."""

    name = "cusum"
    version = "1.1"
    multivariate = False
    level_invariant = True
    uses_season = True

    def __init__(
        self,
        *,
        threshold: float = 12.0,
        drift: float = 1.0,
        reset: float = 2.0,
        level_window: int = 24,
        fast_alpha: float = 0.2,
        slow_alpha: float = 0.01,
        min_points: int = 36,
        min_acf: float = 0.3,
        batch: int = 30,
        season_cycles: float = 3.0,
    ) -> None:
        if drift <= 0 or threshold <= 0 or reset < 1:
            raise ValueError(
                f"cusum needs drift > 0, threshold > 0 and reset >= 1, got "
                f"{drift}, {threshold}, {reset}"
            )
        self.threshold = float(threshold)
        self.drift = float(drift)
        self.reset = float(reset)
        self.level_window = int(level_window)
        self.fast_alpha = float(fast_alpha)
        self.slow_alpha = float(slow_alpha)
        self.min_points = int(min_points)
        self.min_acf = float(min_acf)
        if batch < 1 or season_cycles < 0:
            raise ValueError(
                f"cusum needs batch >= 1 point and season_cycles >= 0, got {batch}, {season_cycles}"
            )
        self.batch = int(batch)
        self.season_cycles = float(season_cycles)
        self.needed: IntArray = np.zeros(0, dtype=np.int64)
        self.periods: IntArray = np.zeros(0, dtype=np.int64)
        self.profile: FloatArray = np.zeros((0, 1))
        self.scale: FloatArray = np.zeros(0)
        self.reference: FloatArray = np.zeros(0)
        self._fast: FloatArray = np.zeros(0)
        self._upper: FloatArray = np.zeros(0)
        self._lower: FloatArray = np.zeros(0)
        self._t = 0
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def fit(self, history: FloatArray, step: float, *, periods: IntArray | None = None) -> None:
        x = as_matrix(history, "history")
        n_rows, n_points = x.shape
        valid = ~np.isnan(x)
        span = np.where(valid.any(axis=1), n_points - np.argmax(valid, axis=1), 0)
        self.needed = np.full(n_rows, max(self.min_points, self.season_points(step)))
        self._ready = (np.count_nonzero(valid, axis=1) >= self.min_points) & (span >= self.needed)
        self.periods = detect_periods(x, step, min_acf=self.min_acf) if periods is None else periods
        self.profile = seasonal_profile(x, self.periods)
        cols = np.arange(n_points)
        season = self.profile[
            np.arange(n_rows)[:, None], cols[None, :] % np.maximum(self.periods, 1)[:, None]
        ]
        deseason = x - season
        floor = scale_floor(x) if n_points > 1 else np.full(n_rows, 1e-9)
        # Differences cancel a level shift but double the noise variance: divide by √2.
        diff_scale = robust_scale(np.diff(deseason, axis=1), axis=1) / np.sqrt(2.0)
        point = np.where(np.isfinite(diff_scale), np.maximum(diff_scale, floor), floor)
        long_run = self._long_run_scale(deseason)
        self.scale = np.where(np.isfinite(long_run), np.maximum(long_run, point), point)
        self.reference = np.nan_to_num(nanmedian(deseason[:, -self.level_window :], axis=1))
        self._fast = self.reference.copy()
        self._upper = np.zeros(n_rows)
        self._lower = np.zeros(n_rows)
        self._t = n_points

    def season_points(self, step: float) -> int:
        """Points of history a row needs before a shift can be told from a daily swing."""
        if step <= 0 or round(DAY / step) < 4:
            return 0  # too coarse a step for a daily season: nothing to wait for
        return int(np.ceil(self.season_cycles * DAY / step))

    def _long_run_scale(self, deseason: FloatArray) -> FloatArray:
        """σ of the sums CUSUM adds up: spread of batch means × √batch (NaN if too short)."""
        n_rows, n_points = deseason.shape
        b = self.batch
        usable = n_points // b * b
        if b == 1 or usable < 3 * b:
            return np.full(n_rows, np.nan)
        blocks = deseason[:, n_points - usable :].reshape(n_rows, -1, b)
        means = nanmean(blocks, axis=2)
        # Differences of consecutive means, as for the point scale: a shift moves one.
        scale = robust_scale(np.diff(means, axis=1), axis=1) / np.sqrt(2.0) * np.sqrt(b)
        return np.asarray(scale, dtype=np.float64)

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        n_rows, k = x.shape
        if n_rows != self._ready.size:
            raise ValueError(f"{self.name}: fitted on {self._ready.size} rows, got {n_rows}")
        out = np.full((4, n_rows, k), np.nan)
        rows = np.arange(n_rows)
        band = (self.drift + 3.0) * self.scale
        for j in range(k):
            season = self.profile[rows, phase_index(self._t, self.periods)]
            self._t += 1
            col = x[:, j] - season
            seen = ~np.isnan(col)
            z = np.where(seen, (col - self.reference) / self.scale, 0.0)
            self._upper = np.maximum(0.0, self._upper + z - self.drift)
            self._lower = np.maximum(0.0, self._lower - z - self.drift)
            score = np.maximum(self._upper, self._lower)
            expected = self.reference + season
            out[0, :, j] = np.where(self._ready & seen, score, np.nan)
            out[1, :, j] = expected
            out[2, :, j] = expected - band
            out[3, :, j] = expected + band
            self._fast = np.where(
                seen, self._fast + self.fast_alpha * (col - self._fast), self._fast
            )
            # In control the reference follows slow drift (bounded steps, so a spike
            # cannot drag it); after an accepted shift it jumps to the new level.
            step = np.clip(np.nan_to_num(col - self.reference), -self.scale, self.scale)
            self.reference = self.reference + self.slow_alpha * step
            shifted = score > self.reset * self.threshold
            self.reference = np.where(shifted, self._fast, self.reference)
            self._upper = np.where(shifted, 0.0, self._upper)
            self._lower = np.where(shifted, 0.0, self._lower)
        return Scores(score=out[0], expected=out[1], low=out[2], high=out[3])
