"""Time series as they cross package boundaries: ``Series`` and instant ``Sample``s.

Produced by every ``MetricSource`` (``vigil.agent.prometheus``, ``vigil.sim``), consumed
by detectors, forecasters and the NL layer. DataFrames never cross a package boundary;
numpy arrays do, read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from vigil.core._validate import frozen_labels, require_text

__all__ = ["Sample", "Series", "series_id", "to_datetime", "to_timestamp"]

FloatArray = npt.NDArray[np.float64]


def series_id(metric: str, labels: Mapping[str, str]) -> str:
    """Canonical identity of a series: ``metric{a="1",b="2"}`` with sorted, escaped labels."""
    parts = []
    for key in sorted(labels):
        if key == "__name__":
            continue
        val = labels[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{key}="{val}"')
    return f"{metric}{{{','.join(parts)}}}"


def to_timestamp(when: datetime) -> float:
    """Unix seconds from an aware datetime."""
    if when.tzinfo is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {when.isoformat()}")
    return when.timestamp()


def to_datetime(ts: float) -> datetime:
    """Aware UTC datetime from unix seconds."""
    return datetime.fromtimestamp(ts, tz=UTC)


def _readonly(values: object, name: str) -> FloatArray:
    arr = np.array(values, dtype=np.float64, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Series:
    """One metric series: labels plus aligned unix-second timestamps and float values.

    Missing points are NaN (Prometheus stale markers and gaps become NaN, never 0).
    Timestamps are strictly increasing.
    """

    metric: str
    labels: Mapping[str, str]
    timestamps: FloatArray
    values: FloatArray
    id: str = field(init=False)

    def __post_init__(self) -> None:
        require_text("metric", self.metric)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        ts = _readonly(self.timestamps, "timestamps")
        vals = _readonly(self.values, "values")
        if ts.shape != vals.shape:
            raise ValueError(f"series {self.metric}: {ts.size} timestamps but {vals.size} values")
        if ts.size and not np.all(np.isfinite(ts)):
            raise ValueError(f"series {self.metric}: timestamps must be finite")
        if ts.size > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError(f"series {self.metric}: timestamps must be strictly increasing")
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "id", series_id(self.metric, self.labels))

    def __len__(self) -> int:
        return int(self.values.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return (
            self.id == other.id
            and np.array_equal(self.timestamps, other.timestamps)
            and np.array_equal(self.values, other.values, equal_nan=True)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def start(self) -> datetime | None:
        return to_datetime(float(self.timestamps[0])) if self.timestamps.size else None

    @property
    def end(self) -> datetime | None:
        return to_datetime(float(self.timestamps[-1])) if self.timestamps.size else None

    def valid_count(self) -> int:
        """Number of non-NaN points."""
        return int(np.count_nonzero(~np.isnan(self.values)))

    def tail(self, n: int) -> Series:
        """The last ``n`` points as a new series."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return Series(
            self.metric,
            self.labels,
            self.timestamps[-n:] if n else self.timestamps[:0],
            self.values[-n:] if n else self.values[:0],
        )

    def between(self, start: float, end: float) -> Series:
        """Points with ``start <= t <= end`` (unix seconds)."""
        mask = (self.timestamps >= start) & (self.timestamps <= end)
        return Series(self.metric, self.labels, self.timestamps[mask], self.values[mask])


@dataclass(frozen=True)
class Sample:
    """One value of an instant vector: labels, value and its unix-second timestamp."""

    metric: str
    labels: Mapping[str, str]
    value: float
    timestamp: float

    def __post_init__(self) -> None:
        require_text("metric", self.metric)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "value", float(self.value))

    @property
    def id(self) -> str:
        return series_id(self.metric, self.labels)
