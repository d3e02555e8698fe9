"""A bank: many series on one time grid, their history ring and one fitted ensemble.

Owned by ``vigil.detectors.engine.DetectionEngine``: it groups series by step into
banks of at most a few thousand rows, so a tick is one vectorised update per bank and
a refit touches one bank at a time. Column ``j`` of the ring is grid time
``last_time - (filled - 1 - j) × step`` once the ring is read chronologically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vigil.detectors.base import FloatArray, as_matrix
from vigil.detectors.ensemble import Ensemble, EnsembleScores

__all__ = ["Bank"]


class Bank:
    """Series ids, their aligned history (ring of ``capacity`` columns) and their ensemble."""

    def __init__(
        self,
        ids: Sequence[str],
        step: float,
        last_time: float,
        history: FloatArray,
        *,
        capacity: int,
        make_ensemble: Callable[[], Ensemble],
    ) -> None:
        hist = as_matrix(history, "history")
        if hist.shape[0] != len(ids):
            raise ValueError(f"bank: {len(ids)} ids but {hist.shape[0]} history rows")
        if capacity < 2:
            raise ValueError(f"bank: capacity must be >= 2 columns, got {capacity}")
        self.ids = list(ids)
        self.index = {sid: row for row, sid in enumerate(self.ids)}
        self.step = float(step)
        self.capacity = int(capacity)
        self.last_time = float(last_time)
        self._make_ensemble = make_ensemble
        self._ring = np.full((len(self.ids), self.capacity), np.nan)
        self._pos = 0
        self.filled = 0
        self._append(hist[:, -self.capacity :])
        self.ensemble = make_ensemble()
        self.fitted_at = float("-inf")
        self.run_start = np.full(len(self.ids), np.nan)

    def __len__(self) -> int:
        return len(self.ids)

    def _append(self, cols: FloatArray) -> None:
        k = cols.shape[1]
        if k >= self.capacity:
            self._ring[:] = cols[:, -self.capacity :]
            self._pos = 0
            self.filled = self.capacity
            return
        end = self._pos + k
        if end <= self.capacity:
            self._ring[:, self._pos : end] = cols
        else:
            first = self.capacity - self._pos
            self._ring[:, self._pos :] = cols[:, :first]
            self._ring[:, : k - first] = cols[:, first:]
        self._pos = end % self.capacity
        self.filled = min(self.capacity, self.filled + k)

    def history(self, rows: int | slice = slice(None)) -> FloatArray:
        """The ring in time order (oldest first), ``filled`` columns."""
        ring = self._ring[rows]
        if self.filled < self.capacity:
            return np.asarray(ring[..., : self.filled])
        return np.asarray(np.concatenate([ring[..., self._pos :], ring[..., : self._pos]], axis=-1))

    def times(self, k: int) -> FloatArray:
        """Grid times of the last ``k`` columns."""
        return self.last_time - self.step * np.arange(k - 1, -1, -1, dtype=np.float64)

    def fit(self, now: float, sensitivity: FloatArray) -> None:
        """Refit on the history; the persistence window carries over, so an incident
        in progress stays one incident across the refit."""
        old = self.ensemble
        self.ensemble = self._make_ensemble()
        self.ensemble.fit(self.history(), self.step)
        self.ensemble.sensitivity = np.asarray(sensitivity, dtype=np.float64).copy()
        self.ensemble.carry_persistence(old)
        self.fitted_at = now

    def advance(self, new: FloatArray) -> EnsembleScores:
        """Score ``new`` columns (the next grid times) and append them to the history."""
        scores = self.ensemble.update(new)
        self._append(new)
        self.last_time += self.step * new.shape[1]
        return scores

    def valid_counts(self) -> FloatArray:
        return np.asarray(np.count_nonzero(~np.isnan(self.history()), axis=1), dtype=np.float64)
