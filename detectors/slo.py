"""Static SLO rules: a fixed ceiling, and multi-window error-budget burn rate.

Threshold-based detectors (not level-invariant) for latency and error series, where an
absolute line matters more than "unusual". ``StaticThreshold`` scores ``value /
ceiling``. ``BurnRate`` reads an error-ratio series (errors / requests, 0–1) and fires
when both the long and the short window of a pair burn the error budget faster than
the pair's factor (the SRE workbook's 1 h/5 m at 14.4× and 6 h/30 m at 6×). The engine
applies them to the series their ``SloRule`` selects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vigil.detectors._robust import nanmean
from vigil.detectors.base import BoolArray, FloatArray, Scores, as_matrix

__all__ = ["BurnRate", "BurnWindow", "SloRule", "StaticThreshold"]


class StaticThreshold:
    """``value > ceiling`` as a score ``value / ceiling`` (threshold 1)."""

    name = "slo-threshold"
    version = "1.0"
    multivariate = False
    level_invariant = False
    threshold = 1.0
    min_points = 1

    def __init__(self, ceiling: float) -> None:
        if not ceiling > 0:
            raise ValueError(f"static threshold: ceiling must be > 0, got {ceiling}")
        self.ceiling = float(ceiling)
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def fit(self, history: FloatArray, step: float) -> None:
        x = as_matrix(history, "history")
        self._ready = np.ones(x.shape[0], dtype=bool)

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        score = np.maximum(x, 0.0) / self.ceiling
        low = np.zeros_like(x)
        high = np.full_like(x, self.ceiling)
        return Scores(
            score=score, expected=np.minimum(np.nan_to_num(x), self.ceiling), low=low, high=high
        )


@dataclass(frozen=True)
class BurnWindow:
    """One pair: fire when the ``long`` and ``short`` windows (seconds) both burn ≥ ``factor``."""

    long: float
    short: float
    factor: float

    def __post_init__(self) -> None:
        if not 0 < self.short < self.long:
            raise ValueError(f"burn window: need 0 < short < long seconds, got {self}")
        if self.factor <= 0:
            raise ValueError(f"burn window: factor must be > 0, got {self.factor}")


DEFAULT_WINDOWS = (BurnWindow(3600.0, 300.0, 14.4), BurnWindow(6 * 3600.0, 1800.0, 6.0))


class BurnRate:
    """Multi-window burn rate of an error-ratio series against ``objective`` (e.g. 0.999)."""

    name = "slo-burn-rate"
    version = "1.0"
    multivariate = False
    level_invariant = False
    threshold = 1.0

    def __init__(self, objective: float, windows: Sequence[BurnWindow] = DEFAULT_WINDOWS) -> None:
        if not 0.0 < objective < 1.0:
            raise ValueError(f"burn rate: objective must be in (0, 1), e.g. 0.999, got {objective}")
        if not windows:
            raise ValueError("burn rate: give at least one BurnWindow")
        self.budget = 1.0 - objective
        self.windows = tuple(windows)
        self.min_points = 1
        self._sizes: list[tuple[int, int, float]] = []
        self._buf: FloatArray = np.zeros((0, 1))
        self._ready: BoolArray = np.zeros(0, dtype=bool)

    @property
    def ready(self) -> BoolArray:
        return self._ready

    def fit(self, history: FloatArray, step: float) -> None:
        if step <= 0:
            raise ValueError(f"burn rate: step must be > 0 seconds, got {step}")
        x = as_matrix(history, "history")
        self._sizes = [
            (max(1, round(w.long / step)), max(1, round(w.short / step)), w.factor)
            for w in self.windows
        ]
        self.min_points = min(long for long, _, _ in self._sizes)
        width = max(long for long, _, _ in self._sizes)
        self._buf = np.full((x.shape[0], width), np.nan)
        take = min(width, x.shape[1])
        if take:
            self._buf[:, width - take :] = x[:, -take:]
        self._ready = np.count_nonzero(~np.isnan(x), axis=1) >= self.min_points

    def update(self, values: FloatArray) -> Scores:
        x = as_matrix(values, "values")
        n_rows, k = x.shape
        score = np.full((n_rows, k), np.nan)
        fastest = min(f for _, _, f in self._sizes)
        for j in range(k):
            self._buf = np.concatenate([self._buf[:, 1:], x[:, j : j + 1]], axis=1)
            burn = np.zeros(n_rows)
            for long, short, factor in self._sizes:
                long_rate = nanmean(self._buf[:, -long:], axis=1) / self.budget
                short_rate = nanmean(self._buf[:, -short:], axis=1) / self.budget
                burn = np.fmax(burn, np.fmin(long_rate, short_rate) / factor)
            score[:, j] = np.where(self._ready & ~np.isnan(x[:, j]), burn, np.nan)
        high = np.full_like(x, fastest * self.budget)
        return Scores(
            score=score, expected=np.full_like(x, self.budget), low=np.zeros_like(x), high=high
        )


@dataclass(frozen=True)
class SloRule:
    """Which series a static rule watches: its metric name and required label values.

    ``kind`` is ``"threshold"`` (``limit`` is the ceiling, in the series' unit) or
    ``"burn-rate"`` (``limit`` is the objective, e.g. 0.999, on an error-ratio series).
    """

    metric: str
    kind: str
    limit: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("threshold", "burn-rate"):
            raise ValueError(
                f"slo rule {self.metric}: kind must be 'threshold' or 'burn-rate', "
                f"got {self.kind!r}"
            )
        self.detector()  # validates the limit with the detector's own message

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        return metric == self.metric and all(labels.get(k) == v for k, v in self.labels.items())

    def detector(self) -> StaticThreshold | BurnRate:
        return StaticThreshold(self.limit) if self.kind == "threshold" else BurnRate(self.limit)
