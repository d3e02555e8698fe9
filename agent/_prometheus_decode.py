"""Prometheus HTTP API answers → numpy: the step grid, chunk plan and JSON decoding.

Private to ``vigil.agent.prometheus`` (``PrometheusSource``), which does the HTTP; this
module does no I/O. Time is handled in integer milliseconds (Prometheus' own precision)
so alignment and chunk boundaries are exact whatever the float rounding of seconds.

Where the time goes on a large range query (1,000 series × 1,441 points, ~33 MB of
JSON): ``json.loads`` builds ~3 million small lists, and CPython's cyclic garbage
collector, triggered by all those allocations, re-scans them again and again — more
than half of the parse time — and, once re-enabled, it scans those millions of lists
at least once more before they are freed. ``paused_gc`` keeps the collector off while a
range answer is parsed, decoded and freed (the lists hold no cycles, so nothing is
lost). Converting the point lists to arrays takes
one ``np.fromiter`` over timestamps and one C-level string→float conversion per series.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BadAnswer",
    "FloatArray",
    "Grid",
    "IntArray",
    "LabelKey",
    "data_list",
    "decode_instant",
    "decode_matrix",
    "error_detail",
    "excerpt",
    "format_ms",
    "label_key",
    "parse_json",
    "paused_gc",
    "retry_after_seconds",
    "unwrap",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
LabelKey = tuple[tuple[str, str], ...]

_first = itemgetter(0)
_second = itemgetter(1)


class BadAnswer(ValueError):
    """The answer is not what the Prometheus API returns; the message says what is off."""


def format_ms(ms: int) -> str:
    """Unix milliseconds as the exact decimal seconds Prometheus parses (``"1700000000.5"``)."""
    sec, rem = divmod(ms, 1000)
    return str(sec) if rem == 0 else f"{sec}.{rem:03d}".rstrip("0")


@dataclass(frozen=True)
class Grid:
    """A step-aligned range: points at ``start_ms + k * step_ms`` up to ``end_ms`` inclusive.

    Start and end are floored to multiples of the step (as Grafana does), so the same
    dashboard-like query asked a few seconds apart hits the same points: answers are
    deterministic and cacheable, and a series cache can merge them without jitter.
    """

    start_ms: int
    end_ms: int
    step_ms: int

    @classmethod
    def aligned(cls, start_ms: int, end_ms: int, step_ms: int) -> Grid:
        if step_ms <= 0:
            raise ValueError(f"step must be at least 1 ms, got {step_ms} ms")
        if end_ms < start_ms:
            raise ValueError(
                f"range end {format_ms(end_ms)} is before its start {format_ms(start_ms)}"
            )
        start = (start_ms // step_ms) * step_ms
        end = (end_ms // step_ms) * step_ms
        # A range shorter than one step still asks for the step point at or before start.
        return cls(start, max(start, end), step_ms)

    @property
    def points(self) -> int:
        return (self.end_ms - self.start_ms) // self.step_ms + 1

    def timestamps(self) -> FloatArray:
        """The grid's times in unix seconds."""
        ms = self.start_ms + self.step_ms * np.arange(self.points, dtype=np.int64)
        return ms / 1000.0

    def chunks(self, max_points: int) -> list[Grid]:
        """Consecutive, non-overlapping sub-grids of at most ``max_points`` points each.

        Chunk ``i`` ends one step before chunk ``i + 1`` starts, so stitching them gives
        every point once (no duplicated boundary point)."""
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        out = []
        for first in range(0, self.points, max_points):
            last = min(first + max_points, self.points) - 1
            out.append(
                Grid(
                    self.start_ms + first * self.step_ms,
                    self.start_ms + last * self.step_ms,
                    self.step_ms,
                )
            )
        return out


# The collector is paused while any thread decodes; a counter so that one thread finishing
# does not re-enable it under another one's work, and so that a collector the embedding
# application disabled on purpose stays disabled.
_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (see the module docstring); nests across threads.

    Parse *and free* a large answer inside it: re-enabled while the parsed lists are
    still alive, the collector would scan all of them at its next run anyway."""
    global _gc_pausers, _gc_was_enabled  # noqa: PLW0603 - process-wide state by nature
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def parse_json(body: bytes) -> Any:
    """``json.loads`` with the collector paused, for answers that are used, then dropped."""
    with paused_gc():
        return json.loads(body)


def unwrap(doc: Any, result_types: tuple[str, ...]) -> tuple[str, Any]:
    """The ``(resultType, result)`` of a successful query answer, or ``BadAnswer``."""
    data = _data(doc)
    if not isinstance(data, Mapping):
        raise BadAnswer(f"'data' is {type(data).__name__}, expected an object")
    kind = data.get("resultType")
    if kind not in result_types:
        raise BadAnswer(f"resultType is {kind!r}, expected one of {', '.join(result_types)}")
    if "result" not in data:
        raise BadAnswer("'data' has no 'result'")
    return kind, data["result"]


def _data(doc: Any) -> Any:
    if not isinstance(doc, Mapping):
        raise BadAnswer(f"the JSON is {type(doc).__name__}, expected an object with 'status'")
    status = doc.get("status")
    if status != "success":
        raise BadAnswer(f"status is {status!r}, expected 'success' (error: {doc.get('error')!r})")
    if "data" not in doc:
        raise BadAnswer("the answer has no 'data'")
    return doc["data"]


def data_list(doc: Any) -> list[Any]:
    """``data`` of a metadata answer (series, label values), which is a list."""
    data = _data(doc)
    if not isinstance(data, list):
        raise BadAnswer(f"'data' is {type(data).__name__}, expected a list")
    return data


def label_key(metric: Any, where: str) -> LabelKey:
    """A hashable, sorted label set; ``BadAnswer`` unless it maps strings to strings."""
    if not isinstance(metric, Mapping):
        raise BadAnswer(f"{where}: 'metric' is {type(metric).__name__}, expected an object")
    items = tuple(sorted(metric.items()))
    for key, val in items:
        if not isinstance(key, str) or not isinstance(val, str):
            raise BadAnswer(f"{where}: label {key!r}={val!r} is not a string pair")
    return items


def _floats(texts: list[Any], where: str) -> FloatArray:
    try:
        # One C-level conversion; "NaN", "+Inf" and "-Inf" (Prometheus' spellings) parse.
        return np.array(texts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadAnswer(f"{where}: a sample value is not a number ({exc})") from None


def decode_matrix(result: Any, grid: Grid) -> Iterator[tuple[LabelKey, IntArray, FloatArray]]:
    """Each series of a ``matrix`` result as (label key, grid indices, values).

    Indices place the points on ``grid``; a point that is not on it means the answer is
    not for the range asked, which is reported rather than silently dropped."""
    if not isinstance(result, list):
        raise BadAnswer(f"'result' is {type(result).__name__}, expected a list of series")
    step_s = grid.step_ms / 1000.0
    start_s = grid.start_ms / 1000.0
    for pos, item in enumerate(result):
        where = f"result[{pos}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("values"), list):
            raise BadAnswer(f"{where}: expected {{'metric': {{…}}, 'values': [[time, value], …]}}")
        key = label_key(item.get("metric"), where)
        pairs = item["values"]
        count = len(pairs)
        try:
            texts = list(map(_second, pairs))
            idx = _indices(pairs, start_s, step_s)
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise BadAnswer(
                f'{where}: points must be [time, "value"] pairs on the requested grid ({exc})'
            ) from None
        if count and (idx[0] < 0 or idx[-1] >= grid.points):
            raise BadAnswer(f"{where}: points are outside the requested range {_describe(grid)}")
        yield key, idx, _floats(texts, where)


def _describe(grid: Grid) -> str:
    return (
        f"(start {format_ms(grid.start_ms)}, end {format_ms(grid.end_ms)}, "
        f"step {format_ms(grid.step_ms)}s)"
    )


def _indices(pairs: list[Any], start_s: float, step_s: float) -> IntArray:
    """Grid indices of a series' points; ``ValueError`` if one is off the grid.

    Prometheus returns strictly increasing points on the grid, so when the first and
    last points span exactly ``len(pairs)`` steps the series has no holes and the
    indices are a plain range: reading every timestamp would cost a third of the
    decoding of a large answer."""
    count = len(pairs)
    if not count:
        return np.zeros(0, dtype=np.int64)
    first = _index(pairs[0][0], start_s, step_s)
    last = _index(pairs[-1][0], start_s, step_s)
    if last - first + 1 == count:
        return np.arange(first, last + 1, dtype=np.int64)
    times = np.fromiter(map(_first, pairs), dtype=np.float64, count=count)
    offsets = (times - start_s) / step_s
    idx = np.rint(offsets).astype(np.int64)
    if not np.all(np.abs(offsets - idx) < 1e-3):
        raise ValueError("some times are not on the step grid")
    if not np.all(np.diff(idx) > 0):
        raise ValueError("times are not strictly increasing")
    return idx


def _index(when: Any, start_s: float, step_s: float) -> int:
    """Grid index of one timestamp; ``ValueError`` when it is not on the grid."""
    offset = (float(when) - start_s) / step_s
    idx = round(offset)
    if abs(offset - idx) > 1e-3:
        raise ValueError(f"time {when!r} is not on the step grid")
    return idx


def decode_instant(kind: str, result: Any) -> list[tuple[LabelKey, float, float]]:
    """An instant ``vector`` or ``scalar`` result as (label key, value, timestamp)."""
    if kind == "scalar":
        return [((), *_point(result, "result"))]
    if not isinstance(result, list):
        raise BadAnswer(f"'result' is {type(result).__name__}, expected a list of samples")
    out = []
    for pos, item in enumerate(result):
        where = f"result[{pos}]"
        if not isinstance(item, Mapping):
            raise BadAnswer(f"{where}: expected {{'metric': {{…}}, 'value': [time, value]}}")
        key = label_key(item.get("metric"), where)
        out.append((key, *_point(item.get("value"), where)))
    return out


def _point(pair: Any, where: str) -> tuple[float, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise BadAnswer(f'{where}: expected a [time, "value"] pair, got {pair!r:.80}')
    try:
        when, value = float(pair[0]), float(pair[1])
    except (TypeError, ValueError) as exc:
        raise BadAnswer(f"{where}: {pair!r:.80} is not [time, number] ({exc})") from None
    if not math.isfinite(when):
        raise BadAnswer(f"{where}: time {pair[0]!r} is not finite")
    return value, when


def error_detail(body: bytes) -> str:
    """Prometheus' ``errorType: error`` from an error answer, else an excerpt of the body."""
    try:
        doc = parse_json(body)
    except ValueError:
        return excerpt(body)
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        kind = doc.get("errorType")
        return f"{kind}: {doc['error']}" if kind else doc["error"]
    return excerpt(body)


def excerpt(body: bytes, limit: int = 120) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    if not text:
        return "(empty body)"
    return repr(text + ("…" if len(body) > limit else ""))


def retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from Prometheus proxies, fall back to backoff
