"""Multivariate IsolationForest over the related metrics of one workload.

The expensive second stage: the engine (``vigil.detectors.engine``) runs it only for
workloads in which the cheap univariate stage flagged a series, within a time budget.
Rows are the workload's metrics (cpu, memory, latency, error rate, restarts); each
point becomes its deviation from the metric's median of the previous ``window``
points, in units of that deviation's MAD, so levels, seasons and units do not matter;
columns (time points) are the samples of the forest. The raw score is how far a point's isolation
score lies above the history's, in robust standard deviations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from vigil.detectors._robust import nanmedian, robust_scale, scale_floor
from vigil.detectors.base import BoolArray, FloatArray, Scores, as_matrix

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

__all__ = ["IsolationDetector"]


class IsolationDetector:
    """IsolationForest on one workload's standardised metrics (multivariate, level-invariant)."""

    name = "isolation-forest"
    version = "1.0"
    multivariate = True
    level_invariant = True

    def __init__(
        self,
        *,
        threshold: float = 6.0,
        n_estimators: int = 50,
        max_samples: int = 256,
        min_points: int = 36,
        window: int = 12,
        seed: int = 0,
    ) -> None:
        self.threshold = float(threshold)
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.min_points = int(min_points)
        self.seed = int(seed)
        self.window = int(window)
        self._buf: FloatArray = np.zeros((0, self.window))
        self.centre: FloatArray = np.zeros(0)
        self.scale: FloatArray = np.zeros(0)
        self._forest: IsolationForest | None = None
        self._score_centre = 0.0
        self._score_scale = 1.0
        self._reach: FloatArray = np.zeros(0)
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def _deviations(self, x: FloatArray) -> FloatArray:
        """Each column minus the median of the ``window`` columns before it (NaN at first)."""
        padded = np.concatenate([self._buf, x], axis=1)
        windows = sliding_window_view(padded[:, :-1], self.window, axis=1)
        return np.asarray(x - nanmedian(windows, axis=2), dtype=np.float64)

    def _features(self, dev: FloatArray) -> FloatArray:
        z = dev / self.scale[:, None]
        # A missing metric at a time point sits at zero deviation: it says nothing.
        return np.asarray(np.nan_to_num(z, nan=0.0).T, dtype=np.float64)

    def fit(self, history: FloatArray, step: float) -> None:
        from sklearn.ensemble import IsolationForest

        x = as_matrix(history, "history")
        n_rows, n_points = x.shape
        valid = np.count_nonzero(~np.isnan(x), axis=1)
        self._ready = valid >= self.min_points
        self.centre = np.nan_to_num(nanmedian(x, axis=1))
        self._buf = np.full((n_rows, self.window), np.nan)
        dev = self._deviations(x)
        self._buf = self._tail(self._buf, x)
        floor = scale_floor(x) if n_points > 1 else np.full(n_rows, 1e-9)
        scale = robust_scale(dev, axis=1)
        self.scale = np.where(np.isfinite(scale), np.maximum(scale, floor), floor)
        if not self._ready.any():
            self._forest = None
            return
        feats = self._features(dev)[np.any(~np.isnan(dev), axis=0)]
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, feats.shape[0]),
            random_state=self.seed,
        )
        forest.fit(feats)
        base: Any = -forest.score_samples(feats)
        self._reach = np.abs(feats).max(axis=0)
        self._score_centre = float(np.median(base))
        self._score_scale = max(float(robust_scale(np.asarray(base)[None, :])[0]), 1e-3)
        self._forest = forest

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        n_rows, k = x.shape
        if n_rows != self._ready.size:
            raise ValueError(f"{self.name}: fitted on {self._ready.size} metrics, got {n_rows}")
        band = self.threshold * self.scale[:, None]
        dev = self._deviations(x)
        expected = x - dev  # the recent median each point is compared with
        self._buf = self._tail(self._buf, x)
        if self._forest is None:
            score = np.full((n_rows, k), np.nan)
        else:
            feats = self._features(dev)
            raw = -self._forest.score_samples(feats)
            beyond = np.maximum(np.abs(feats) - self._reach[None, :], 0.0).sum(axis=1)
            joint = np.maximum(0.0, (raw - self._score_centre) / self._score_scale) + beyond
            joint = np.where(np.all(np.isnan(x), axis=0), np.nan, joint)
            score = np.where(self._ready[:, None], joint[None, :], np.nan)
        return Scores(score=score, expected=expected, low=expected - band, high=expected + band)

    def _tail(self, buf: FloatArray, x: FloatArray) -> FloatArray:
        return np.concatenate([buf, x], axis=1)[:, -self.window :].copy()
