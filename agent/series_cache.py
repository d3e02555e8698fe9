"""Keeps fetched series between ticks so each tick asks Prometheus only for new points.

The first tick fetches the whole look-back window; later ticks fetch from the last
point seen (minus an overlap, since recent points can still change) and merge.
Used by the fetch stage in ``vigil.agent.stages``.
"""

from __future__ import annotations

import numpy as np

from vigil.core import Series

__all__ = ["SeriesCache"]


class SeriesCache:
    """Series by id, trimmed to ``lookback`` seconds behind the newest point."""

    def __init__(self, lookback: float) -> None:
        if lookback <= 0:
            raise ValueError(f"lookback must be > 0 seconds, got {lookback}")
        self._lookback = lookback
        self._series: dict[str, Series] = {}

    def __len__(self) -> int:
        return len(self._series)

    def merge(self, fresh: list[Series], now: float) -> list[Series]:
        """Merge newly fetched points (they win over cached ones); return all series."""
        horizon = now - self._lookback
        for new in fresh:
            old = self._series.get(new.id)
            if old is None or not len(old):
                merged = new
            else:
                keep = old.timestamps < (new.timestamps[0] if len(new) else np.inf)
                merged = Series(
                    new.metric,
                    new.labels,
                    np.concatenate([old.timestamps[keep], new.timestamps]),
                    np.concatenate([old.values[keep], new.values]),
                )
            self._series[new.id] = merged.between(horizon, np.inf)
        for key in [k for k, s in self._series.items() if not len(s) or s.timestamps[-1] < horizon]:
            del self._series[key]
        return list(self._series.values())
