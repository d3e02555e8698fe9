"""The ensemble: member detectors → one calibrated score in [0, 1] → persistent alarms.

What the engine runs per bank of series (``vigil.detectors.engine``), and what the NAB
benchmark scores. Each member's raw score ``z`` is mapped to ``c = 1 − 2^-(z·s/θ)²``
(θ its threshold, ``s`` the row's sensitivity), so ``c = 0.5`` exactly at a member's
own threshold; members combine as a weighted noisy-or ``1 − Π (1 − c)^w``, so two
members half-way to their thresholds add up, one member at its threshold alone gives
0.5. A point is alarming when the combined score reaches ``alarm``; a row pages only
when ``k`` of its last ``n`` points are alarming (persistence), so one blip pages
nobody.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from vigil.detectors.base import (
    BoolArray,
    Detector,
    FloatArray,
    IntArray,
    Scores,
    SeasonAware,
    as_matrix,
)
from vigil.detectors.periods import detect_periods

__all__ = ["Ensemble", "EnsembleScores", "calibrate", "default_members"]


def calibrate(raw: FloatArray, threshold: float) -> FloatArray:
    """Raw score → [0, 1], 0.5 at ``threshold``; NaN stays NaN."""
    ratio = raw / threshold
    return np.asarray(1.0 - np.exp2(-(ratio * ratio)), dtype=np.float64)


def default_members(min_points: int = 36) -> list[Detector]:
    """The univariate members the agent runs: seasonal baseline, Holt-Winters, CUSUM."""
    from vigil.detectors.changepoint import CusumDetector
    from vigil.detectors.ets import HoltWintersDetector
    from vigil.detectors.seasonal import SeasonalBaseline

    return [
        SeasonalBaseline(min_points=min_points),
        HoltWintersDetector(min_points=min_points),
        CusumDetector(min_points=min_points),
    ]


@dataclass(frozen=True, eq=False)
class EnsembleScores(Scores):
    """``score`` calibrated in [0, 1]; ``alarm`` after persistence; raw ``members`` scores."""

    alarm: BoolArray
    members: Mapping[str, FloatArray]


class Ensemble:
    """Calibrated noisy-or of member detectors with k-of-n persistence."""

    name = "ensemble"
    multivariate = False

    def __init__(
        self,
        members: Sequence[Detector] | None = None,
        *,
        weights: Sequence[float] | None = None,
        alarm: float = 0.5,
        persistence: tuple[int, int] = (2, 3),
    ) -> None:
        self.members = list(members) if members is not None else default_members()
        if not self.members:
            raise ValueError("ensemble: give at least one member detector")
        if any(m.multivariate for m in self.members):
            raise ValueError(
                "ensemble: members must be univariate (the engine runs multivariate ones)"
            )
        self.weights = np.asarray(weights if weights is not None else [1.0] * len(self.members))
        if self.weights.shape != (len(self.members),) or np.any(self.weights <= 0):
            raise ValueError(
                f"ensemble: need one positive weight per member ({len(self.members)}), "
                f"got {weights}"
            )
        k, n = persistence
        if not 1 <= k <= n:
            raise ValueError(
                f"ensemble: persistence must be k of n with 1 <= k <= n, got {k} of {n}"
            )
        if not 0.0 < alarm < 1.0:
            raise ValueError(f"ensemble: alarm level must be in (0, 1), got {alarm}")
        self.alarm_level = float(alarm)
        self.k, self.n = k, n
        self.threshold = self.alarm_level
        self.version = "1.0+" + ",".join(f"{m.name}-{m.version}" for m in self.members)
        self.min_points = max(m.min_points for m in self.members)
        self.level_invariant = all(m.level_invariant for m in self.members)
        self.sensitivity: FloatArray = np.ones(0)
        self._recent: BoolArray = np.zeros((0, n), dtype=bool)
        self._pos = 0

    @property
    def ready(self) -> BoolArray:
        ready = self.members[0].ready
        for member in self.members[1:]:
            ready = ready & member.ready
        return ready

    @property
    def needed(self) -> IntArray:
        """Per row: points of history the slowest member waits for before it scores."""
        rows = self.members[0].ready.size
        out = np.full(rows, self.min_points, dtype=np.int64)
        for member in self.members:
            own = getattr(member, "needed", None)
            if isinstance(own, np.ndarray) and own.shape == (rows,):
                out = np.maximum(out, own)
        return out

    def fit(self, history: FloatArray, step: float) -> None:
        x = as_matrix(history, "history")
        periods = detect_periods(x, step) if step > 0 else None
        for member in self.members:
            if getattr(member, "uses_season", False):
                cast("SeasonAware", member).fit(x, step, periods=periods)
            else:
                member.fit(x, step)
        if self.sensitivity.size != x.shape[0]:
            self.sensitivity = np.ones(x.shape[0])
        self._recent = np.zeros((x.shape[0], self.n), dtype=bool)
        self._pos = 0

    def carry_persistence(self, other: Ensemble) -> None:
        """Take over ``other``'s k-of-n window (same rows), e.g. across a refit."""
        if other._recent.shape == self._recent.shape:
            self._recent = other._recent.copy()
            self._pos = other._pos

    def set_sensitivity(self, rows: object, factor: float) -> None:
        """Scale the raw scores of ``rows`` by ``factor`` (> 1 more alarms, < 1 fewer)."""
        if not factor > 0:
            raise ValueError(f"sensitivity factor must be > 0, got {factor}")
        self.sensitivity[np.asarray(rows)] = factor

    def update(self, values: FloatArray) -> EnsembleScores:
        x = as_matrix(values, "values")
        n_rows, k = x.shape
        raw = {m.name: m.update(x) for m in self.members}
        primary = raw[self.members[0].name]
        log_quiet = np.zeros((n_rows, k))
        seen = np.zeros((n_rows, k), dtype=bool)
        for member, weight in zip(self.members, self.weights, strict=True):
            z = raw[member.name].score * self.sensitivity[:, None]
            cal = calibrate(z, member.threshold)
            seen |= ~np.isnan(cal)
            log_quiet += weight * np.log1p(-np.minimum(np.nan_to_num(cal), 1.0 - 1e-12))
        score = np.where(seen, 1.0 - np.exp(log_quiet), np.nan)
        alarm = np.zeros((n_rows, k), dtype=bool)
        for j in range(k):
            self._recent[:, self._pos] = np.nan_to_num(score[:, j]) >= self.alarm_level
            self._pos = (self._pos + 1) % self.n
            alarm[:, j] = self._recent.sum(axis=1) >= self.k
        return EnsembleScores(
            score=score,
            expected=primary.expected,
            low=primary.low,
            high=primary.high,
            alarm=alarm,
            members={name: s.score for name, s in raw.items()},
        )
