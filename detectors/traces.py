"""Demand traces for the scaling replay: reading NAB CSVs and sampling demand on a grid.

Called by ``vigil.detectors.replay`` (``vigil bench scaling``) and by the bench scripts.
A trace is the NAB CSV format, ``timestamp,value`` with ``YYYY-MM-DD HH:MM:SS`` times
(read as UTC) or unix seconds. Demand between trace points is held at the last point's
value (the default) or linearly interpolated.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vigil.core import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Trace", "default_capacity", "read_trace"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Trace:
    """A demand trace: strictly increasing unix-second ``timestamps`` and finite ``values``.

    ``merged`` counts input points folded into another with the same timestamp.
    """

    name: str
    timestamps: FloatArray
    values: FloatArray
    merged: int = 0

    def __post_init__(self) -> None:
        ts = np.asarray(self.timestamps, dtype=np.float64)
        vals = np.asarray(self.values, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != vals.shape or ts.size < 2:
            raise ConfigError(f"trace {self.name}: need at least two aligned points")
        if not np.all(np.diff(ts) > 0):
            raise ConfigError(f"trace {self.name}: timestamps must be strictly increasing")
        if not np.all(np.isfinite(vals)) or np.any(vals < 0):
            raise ConfigError(f"trace {self.name}: values must be finite and >= 0")
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "values", vals)

    @property
    def step(self) -> float:
        """The median sampling interval in seconds."""
        return float(np.median(np.diff(self.timestamps)))

    def demand_at(self, times: FloatArray, *, interpolate: bool = False) -> FloatArray:
        """Demand at ``times``: held from the last point (default) or linearly interpolated.

        Before the first point the first value holds; after the last, the last value.
        """
        if interpolate:
            return np.interp(times, self.timestamps, self.values)
        idx = np.searchsorted(self.timestamps, times, side="right") - 1
        return self.values[np.clip(idx, 0, self.values.size - 1)]

    def cut(self, end: float) -> Trace:
        """The points with timestamp ``<= end`` (for causality checks)."""
        keep = self.timestamps <= end
        return Trace(self.name, self.timestamps[keep], self.values[keep])


def _parse_time(text: str, where: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{where}: timestamp {text!r} is neither 'YYYY-MM-DD HH:MM:SS' nor unix seconds"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def read_trace(path: Path) -> Trace:
    """Read a NAB-style CSV (header ``timestamp,value``) into a ``Trace``."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"trace {path}: cannot open ({exc.strerror})") from exc
    times: list[float] = []
    values: list[float] = []
    with handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["timestamp", "value"]:
            raise ConfigError(
                f"trace {path}: the header must be 'timestamp,value' (NAB format), got {header}"
            )
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"trace {path} line {lineno}"
            if len(row) < 2:
                raise ConfigError(f"{where}: expected 'timestamp,value', got {row}")
            times.append(_parse_time(row[0], where))
            try:
                value = float(row[1])
            except ValueError:
                raise ConfigError(f"{where}: value {row[1]!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{where}: value {value} must be finite and >= 0")
            values.append(value)
    return _merge_duplicates(path, np.array(times), np.array(values))


def _merge_duplicates(path: Path, times: FloatArray, values: FloatArray) -> Trace:
    """Average points that share a timestamp; refuse points that go back in time.

    NAB files carry a daylight-saving artefact (an hour of points all stamped 03:00);
    averaging them keeps the demand level without inventing times.
    """
    back = np.flatnonzero(np.diff(times) < 0)
    if back.size:
        line = int(back[0]) + 3  # header is line 1, the first point line 2
        raise ConfigError(
            f"trace {path} line {line}: timestamp goes back in time; sort the file by timestamp"
        )
    unique, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
    if unique.size == times.size:
        return Trace(path.stem, times, values)
    sums = np.bincount(inverse, weights=values)
    return Trace(path.stem, unique, sums / counts, merged=int(times.size - unique.size))


def default_capacity(trace: Trace, *, pods_at_p95: int = 10, target: float = 0.7) -> float:
    """Capacity per pod such that the 95th percentile of demand needs ``pods_at_p95`` pods
    at the ``target`` utilisation (the benchmark's default; units then do not matter)."""
    p95 = float(np.percentile(trace.values, 95))
    if p95 <= 0:
        p95 = float(trace.values.max())
    if p95 <= 0:
        raise ConfigError(f"trace {trace.name}: demand is zero throughout; give --capacity")
    return p95 / (pods_at_p95 * target)
