"""The twin's metric history: every series' samples in one preallocated float array.

Rows are twin steps (row ``i`` is time ``start + i * step``); columns are reused: a
series owns a column from ``first_row`` to ``last_row`` (inclusive), so a pod that
goes away frees its columns for the next pod without mixing their samples. NaN means
"no sample" (Prometheus' stale marker). Written by ``vigil.sim.recording``; read by
``vigil.sim.evaluator`` (PromQL) and ``vigil.sim.exposition``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Matcher", "SeriesMeta", "SeriesStore"]


@dataclass(frozen=True)
class Matcher:
    """A label matcher: ``op`` is one of ``=``, ``!=``, ``=~``, ``!~`` (regexes fully anchored)."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = _regex(self.value).fullmatch(have) is not None
        return found if self.op == "=~" else not found


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _regex(text: str) -> re.Pattern[str]:
    pattern = _REGEX_CACHE.get(text)
    if pattern is None:
        pattern = re.compile(text)
        _REGEX_CACHE[text] = pattern
    return pattern


@dataclass
class SeriesMeta:
    """One series: its labels (with ``__name__``), column and the rows it spans."""

    labels: dict[str, str]
    col: int
    first_row: int
    last_row: int | None = None  # None: still live


class SeriesStore:
    """Preallocated ``[rows, columns]`` history with a series registry."""

    def __init__(self, start: float, step: float, rows: int = 1024, columns: int = 512) -> None:
        if step <= 0:
            raise ValueError(f"step must be > 0 seconds, got {step}")
        self.start = float(start)
        self.step = float(step)
        self.data: npt.NDArray[np.float64] = np.full((max(rows, 16), columns), np.nan)
        self.rows = 0  # rows written
        self.columns = 0  # columns allocated
        self.series: list[SeriesMeta] = []
        self.by_name: dict[str, list[int]] = {}
        self.types: dict[str, str] = {}
        self.help: dict[str, str] = {}
        self.version = 0  # bumped whenever the series set changes

    # ------------------------------------------------------------------ layout
    def declare(self, name: str, kind: str, text: str) -> None:
        """Record a metric family's type (counter, gauge, histogram) and help text."""
        self.types[name] = kind
        self.help[name] = text

    def allocate(self, n: int) -> int:
        """Reserve ``n`` new columns; returns the first one."""
        first = self.columns
        self.columns += n
        if self.columns > self.data.shape[1]:
            grown = np.full((self.data.shape[0], max(self.columns, 2 * self.data.shape[1])), np.nan)
            grown[:, : self.data.shape[1]] = self.data
            self.data = grown
        return first

    def open(self, labels: dict[str, str], col: int) -> int:
        """A new series in ``col`` starting with the next row written."""
        meta = SeriesMeta(labels, col, self.rows)
        self.series.append(meta)
        self.by_name.setdefault(labels["__name__"], []).append(len(self.series) - 1)
        self.version += 1
        return len(self.series) - 1

    def close(self, index: int) -> None:
        """End a series at the last row written (it stays queryable for its past)."""
        meta = self.series[index]
        if meta.last_row is None:
            meta.last_row = self.rows - 1
            self.version += 1

    # ------------------------------------------------------------------ rows
    def next_row(self) -> npt.NDArray[np.float64]:
        """A NaN-filled view of the next row, to be filled and then ``commit``-ted."""
        if self.rows >= self.data.shape[0]:
            grown = np.full((self.data.shape[0] * 2, self.data.shape[1]), np.nan)
            grown[: self.rows] = self.data[: self.rows]
            self.data = grown
        return self.data[self.rows]

    def commit(self) -> None:
        self.rows += 1

    def time_of(self, row: int) -> float:
        return self.start + row * self.step

    def last_time(self) -> float | None:
        return self.time_of(self.rows - 1) if self.rows else None

    def end_row(self, meta: SeriesMeta) -> int:
        return self.rows - 1 if meta.last_row is None else meta.last_row

    # ------------------------------------------------------------------ selection
    def select(self, name: str | None, matchers: tuple[Matcher, ...]) -> list[int]:
        """Indexes of series whose labels satisfy every matcher (and the name, if given)."""
        candidates: list[int] | range = (
            self.by_name.get(name, []) if name is not None else range(len(self.series))
        )
        return [i for i in candidates if all(m.matches(self.series[i].labels) for m in matchers)]

    def has_data(self, index: int, first_row: int, last_row: int) -> bool:
        """Whether the series has any sample within rows [first_row, last_row]."""
        meta = self.series[index]
        lo = max(first_row, meta.first_row)
        hi = min(last_row, self.end_row(meta))
        if hi < lo:
            return False
        return bool(np.any(~np.isnan(self.data[lo : hi + 1, meta.col])))
