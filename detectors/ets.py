"""Exponential smoothing (additive Holt-Winters) residuals against prediction intervals.

Second member of the ensemble. ``holt_winters_filter`` is the additive-trend,
additive-season recursion of statsmodels' ``ExponentialSmoothing`` written once for a
whole bank of rows (each with its own period and smoothing weights); the tests check it
against statsmodels on sample series. ``HoltWintersDetector`` picks the weights per row
from a small grid by the median absolute one-step error (robust to the anomalies in
the history), then scores ``|y - ŷ| / σ``. Innovations beyond ``clip`` σ are clipped
before they reach the state (robust Holt-Winters), so a spike does not bend the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.detectors._robust import (
    MAD_TO_SIGMA,
    chunks,
    nanmean,
    nanmedian,
    robust_scale,
    scale_floor,
)
from vigil.detectors.base import BoolArray, FloatArray, IntArray, Scores, as_matrix
from vigil.detectors.periods import detect_periods

__all__ = ["HoltWintersDetector", "HoltWintersState", "holt_winters_filter", "initial_states"]


@dataclass
class HoltWintersState:
    """The recursion's state for a bank of rows; ``season`` is indexed by ``t % period``."""

    level: FloatArray
    trend: FloatArray
    season: FloatArray
    periods: IntArray
    t: int


def initial_states(history: FloatArray, periods: IntArray) -> HoltWintersState:
    """Heuristic start: first-cycle mean level, cycle-over-cycle trend, first-cycle season."""
    x = as_matrix(history, "history")
    n_rows = x.shape[0]
    width = max(int(periods.max(initial=0)), 1)
    level = np.zeros(n_rows)
    trend = np.zeros(n_rows)
    season = np.zeros((n_rows, width))
    first = nanmean(x[:, : min(10, x.shape[1])], axis=1)
    level[:] = np.nan_to_num(first)
    for period in np.unique(periods[periods > 0]):
        p = int(period)
        rows = np.flatnonzero(periods == p)
        c1 = nanmean(x[rows, :p], axis=1)
        c2 = nanmean(x[rows, p : 2 * p], axis=1)
        level[rows] = np.nan_to_num(c1)
        trend[rows] = np.nan_to_num((c2 - c1) / p)
        season[rows, :p] = np.nan_to_num(x[rows, :p] - c1[:, None])
    return HoltWintersState(level, trend, season, periods.astype(np.int64), 0)


def holt_winters_filter(
    y: FloatArray,
    state: HoltWintersState,
    alpha: FloatArray | float,
    beta: FloatArray | float,
    gamma: FloatArray | float,
    *,
    scale: FloatArray | None = None,
    clip: float = np.inf,
) -> FloatArray:
    """Run the recursion over the columns of ``y``; return the one-step forecasts ``ŷ``.

    ``state`` is advanced in place. Missing points (NaN) and, when ``scale`` is given,
    the part of an innovation beyond ``clip × scale`` do not update the state.
    """
    n_rows, n_cols = y.shape
    rows = np.arange(n_rows)
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n_rows,))
    b = np.broadcast_to(np.asarray(beta, dtype=np.float64), (n_rows,))
    g = np.where(
        state.periods > 0, np.broadcast_to(np.asarray(gamma, dtype=np.float64), (n_rows,)), 0.0
    )
    safe_p = np.maximum(state.periods, 1)
    bound = None if scale is None or not np.isfinite(clip) else clip * scale
    fitted = np.empty((n_rows, n_cols))
    level, trend, season = state.level, state.trend, state.season
    for j in range(n_cols):
        idx = (state.t + j) % safe_p
        s_old = season[rows, idx]
        base = level + trend
        yhat = base + s_old
        fitted[:, j] = yhat
        err = y[:, j] - yhat
        err = np.where(np.isnan(err), 0.0, err)
        if bound is not None:
            err = np.clip(err, -bound, bound)
        y_eff = yhat + err
        new_level = a * (y_eff - s_old) + (1.0 - a) * base
        trend = b * (new_level - level) + (1.0 - b) * trend
        season[rows, idx] = g * (y_eff - base) + (1.0 - g) * s_old
        level = new_level
    state.level, state.trend, state.t = level, trend, state.t + n_cols
    return fitted


class HoltWintersDetector:
    """Robust additive Holt-Winters one-step residual detector (univariate, level-invariant)."""

    name = "ets"
    version = "1.0"
    multivariate = False
    level_invariant = True
    uses_season = True

    def __init__(
        self,
        *,
        threshold: float = 5.0,
        alphas: tuple[float, ...] = (0.05, 0.2, 0.5),
        gammas: tuple[float, ...] = (0.05, 0.2),
        beta: float = 0.005,
        clip: float = 3.0,
        min_points: int = 36,
        burn_in: int = 12,
        min_acf: float = 0.3,
        score_sample: int = 1024,
    ) -> None:
        for name, grid in (("alphas", alphas), ("gammas", gammas)):
            if not grid or not all(0.0 < v < 1.0 for v in grid):
                raise ValueError(
                    f"{name} must be a non-empty tuple of values in (0, 1), got {grid}"
                )
        self.threshold = float(threshold)
        self.alphas, self.gammas, self.beta = alphas, gammas, float(beta)
        self.clip = float(clip)
        self.min_points = int(min_points)
        self.burn_in = int(burn_in)
        self.min_acf = float(min_acf)
        self.score_sample = int(score_sample)
        self.state = HoltWintersState(
            np.zeros(0), np.zeros(0), np.zeros((0, 1)), np.zeros(0, dtype=np.int64), 0
        )
        self.alpha: FloatArray = np.zeros(0)
        self.gamma: FloatArray = np.zeros(0)
        self.scale: FloatArray = np.zeros(0)
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def fit(self, history: FloatArray, step: float, *, periods: IntArray | None = None) -> None:
        x = as_matrix(history, "history")
        n_rows, n_points = x.shape
        self._ready = np.count_nonzero(~np.isnan(x), axis=1) >= self.min_points
        periods = detect_periods(x, step, min_acf=self.min_acf) if periods is None else periods
        floor = scale_floor(x) if n_points > 1 else np.full(n_rows, 1e-9)
        width = max(int(periods.max(initial=0)), 1)
        level, trend = np.zeros(n_rows), np.zeros(n_rows)
        season = np.zeros((n_rows, width))
        self.alpha, self.gamma, self.scale = np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
        grid = [(a, g) for a in self.alphas for g in self.gammas]
        first = max(self.burn_in, n_points - self.score_sample)
        # All grid points run in one recursion, stacked along the rows: one Python loop
        # over the columns instead of one per grid point.
        for rows in chunks(n_rows, max(1, 3000 // len(grid))):
            sub = x[rows]
            m = sub.shape[0]
            start = initial_states(sub, periods[rows])
            # A rough scale from the first differences bounds the innovations during
            # the grid search, so anomalies in the history do not steer the choice.
            rough = np.maximum(robust_scale(np.diff(sub, axis=1), axis=1), floor[rows])
            reps = len(grid)
            st = HoltWintersState(
                np.tile(start.level, reps),
                np.tile(start.trend, reps),
                np.tile(start.season, (reps, 1)),
                np.tile(start.periods, reps),
                0,
            )
            alphas = np.repeat([a for a, _ in grid], m)
            gammas = np.repeat([g for _, g in grid], m)
            fitted = holt_winters_filter(
                np.tile(sub, (reps, 1)),
                st,
                alphas,
                self.beta,
                gammas,
                scale=np.tile(rough * 2, reps),
                clip=self.clip,
            )
            # Judged on the recent errors (at most ``score_sample`` columns): they
            # matter most, and medians over all columns dominate the cost.
            err = np.tile(sub[:, first:], (reps, 1)) - fitted[:, first:]
            loss = np.nan_to_num(nanmedian(np.abs(err), axis=1), nan=np.inf).reshape(reps, m)
            best = np.argmin(loss, axis=0)
            pick = best * m + np.arange(m)
            self.alpha[rows] = alphas[pick]
            self.gamma[rows] = gammas[pick]
            level[rows] = st.level[pick]
            trend[rows] = st.trend[pick]
            season[rows] = st.season[pick]
            # One-step errors centre on zero, so MAD ≈ median |error|.
            self.scale[rows] = MAD_TO_SIGMA * loss[best, np.arange(m)]
        self.scale = np.where(np.isfinite(self.scale), np.maximum(self.scale, floor), floor)
        self.state = HoltWintersState(level, trend, season, periods, n_points)

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        if x.shape[0] != self._ready.size:
            raise ValueError(f"{self.name}: fitted on {self._ready.size} rows, got {x.shape[0]}")
        fitted = holt_winters_filter(
            x, self.state, self.alpha, self.beta, self.gamma, scale=self.scale, clip=self.clip
        )
        scale = self.scale[:, None]
        score = np.where(self._ready[:, None], np.abs(x - fitted) / scale, np.nan)
        band = self.threshold * scale
        return Scores(score=score, expected=fitted, low=fitted - band, high=fitted + band)
