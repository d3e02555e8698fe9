"""What a handler gets: the sources (recording every query), the settings, the clock and the
resolved entities; and the unit formatting answers share.

Built by ``vigil.nlq.engine`` for one question; used by the handler modules
(``handlers_metrics``, ``handlers_records``, ``handlers_cluster``). Each query is timed,
so the engine can report latency with and without source time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vigil.core import MetricSource, Sample, Series, format_quantity
from vigil.nlq.answer import Answer, Query

if TYPE_CHECKING:
    from vigil.nlq.entities import Entities
    from vigil.nlq.inventory import Inventory
    from vigil.nlq.metrics_map import MetricMap
    from vigil.nlq.ports import ClusterReader, StoreReader
    from vigil.nlq.settings import NlqSettings

__all__ = ["Ctx", "fmt", "sql_time", "when"]

UNITS = {
    "cpu": "cores",
    "memory": "bytes",
    "restarts": "",
    "request_rate": "req/s",
    "http_5xx_ratio": "ratio",
    "http_latency_p95": "seconds",
    "http_latency_p99": "seconds",
    "db_query_duration": "seconds",
    "node_memory_requested": "ratio",
    "pvc_usage": "bytes",
}
WORDS = {
    "cpu": "CPU",
    "memory": "memory",
    "restarts": "restarts",
    "request_rate": "request rate",
    "http_5xx_ratio": "5xx ratio",
    "http_latency_p95": "p95 latency",
    "http_latency_p99": "p99 latency",
    "db_query_duration": "query p95",
    "node_memory_requested": "memory requested",
    "pvc_usage": "volume usage",
}


def fmt(value: float | None, unit: str) -> str:
    """A value for people: ``420 ms``, ``498.0 MiB``, ``7.5 %``, ``0.41 cores``, ``120 req/s``."""
    if value is None:
        return "no data"
    if unit == "req/s":
        return f"{value:.1f} req/s" if value < 100 else f"{value:.0f} req/s"
    if unit == "":
        return f"{round(value):d}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
    return format_quantity(value, unit)


def when(ts: datetime | str | None) -> str:
    """``2026-11-23 14:22 UTC`` from a datetime or the store's ISO text."""
    if ts is None:
        return "-"
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sql_time(ts: datetime) -> str:
    """The store's fixed-width ISO text, so SQL compares times as text."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Ctx:
    """One question's working state."""

    ent: Entities
    inv: Inventory
    settings: NlqSettings
    now: datetime
    question: str
    metrics: MetricSource | None
    store: StoreReader | None
    cluster: ClusterReader | None
    queries: list[Query] = field(default_factory=list)
    source_seconds: float = 0.0

    @property
    def m(self) -> MetricMap:
        return self.settings.metrics

    def answer(self, intent: str, **kwargs: Any) -> Answer:
        out = Answer(intent=intent, entities=self.ent.as_json(), **kwargs)
        out.notes = [*self.ent.notes, *out.notes]
        out.queries = self.queries
        return out

    def _timed(self, query: Query, began: float) -> None:
        took = time.perf_counter() - began
        self.source_seconds += took
        self.queries.append(Query(query.kind, query.text, query.params, seconds=round(took, 4)))

    def prom(self, promql: str, at: datetime | None = None) -> list[Sample]:
        if self.metrics is None:
            raise _NoSource("Prometheus")
        began = time.perf_counter()
        when_at = at or self.now
        try:
            return self.metrics.query(promql, at=when_at)
        finally:
            # the evaluation time, so the query can be re-run as it was
            self._timed(Query("promql", promql, (f"time={_iso(when_at)}",)), began)

    def prom_range(
        self, promql: str, start: datetime, end: datetime, points: int = 60
    ) -> list[Series]:
        if self.metrics is None:
            raise _NoSource("Prometheus")
        seconds = max(60, int((end - start).total_seconds()) // points // 60 * 60)
        began = time.perf_counter()
        try:
            return self.metrics.query_range(promql, start, end, timedelta(seconds=seconds))
        finally:
            span = (f"start={_iso(start)}", f"end={_iso(end)}", f"step={seconds}s")
            self._timed(Query("promql_range", promql, span), began)

    def sql(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        if self.store is None:
            raise _NoSource("the store")
        began = time.perf_counter()
        try:
            return self.store.run_sql(sql, tuple(params))
        finally:
            self._timed(Query("sql", sql, tuple(params)), began)


class _NoSource(Exception):
    """A handler needs a source this engine was built without."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not configured")
        self.what = what
