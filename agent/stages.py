"""The tick's stages as the agent wires them: fetch, detect, record findings.

Each stage is small and takes its collaborators through ports (``MetricSource``,
``Store``) or a structural protocol (the detection engine), so ``vigil run`` (Prometheus)
and ``vigil demo`` (the twin) compose the same stages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from vigil.agent.loop import TickContext
from vigil.agent.series_cache import SeriesCache
from vigil.core import (
    Anomaly,
    Finding,
    FindingKind,
    FindingStore,
    MetricSource,
    ObjectRef,
    PermanentError,
    RetryableError,
    Series,
    Severity,
    to_timestamp,
)

__all__ = ["AnomalyEngine", "DetectStage", "FetchStage", "target_from_labels"]

log = logging.getLogger(__name__)


class DetectionReport(Protocol):
    @property
    def anomalies(self) -> Sequence[Anomaly]: ...

    @property
    def warming_up(self) -> Mapping[str, tuple[int, int]]: ...


class AnomalyEngine(Protocol):
    """What the agent needs of ``vigil.detectors``: score the latest series each tick."""

    def observe(self, series: Sequence[Series], now: datetime) -> DetectionReport: ...


class FetchStage:
    """Fetch every configured query over the look-back window (incrementally after the first)."""

    name = "fetch"

    def __init__(
        self,
        source: MetricSource,
        queries: Sequence[str],
        *,
        lookback: float,
        step: float,
        overlap: float = 300.0,
    ) -> None:
        if not queries:
            raise ValueError("fetch stage needs at least one query")
        self._source = source
        self._queries = tuple(queries)
        self._step = timedelta(seconds=step)
        self._lookback = lookback
        self._overlap = overlap
        self._caches = {q: SeriesCache(lookback) for q in self._queries}

    def run(self, ctx: TickContext) -> None:
        failures: list[str] = []
        retryable = True
        for query in self._queries:
            cache = self._caches[query]
            last = cache.last_timestamp()
            start = ctx.now - timedelta(seconds=self._lookback)
            if last is not None:
                start = max(
                    start,
                    ctx.now
                    - timedelta(seconds=ctx.now.timestamp() - last)
                    - timedelta(seconds=self._overlap),
                )
            try:
                fresh = self._source.query_range(query, start, ctx.now, self._step)
            except RetryableError as exc:
                failures.append(str(exc))
                ctx.series.extend(cache.merge([], to_timestamp(ctx.now)))
                continue
            except PermanentError as exc:
                failures.append(str(exc))
                retryable = False
                continue
            ctx.series.extend(cache.merge(fresh, to_timestamp(ctx.now)))
        if failures:
            summary = f"{len(failures)} of {len(self._queries)} queries failed: " + "; ".join(
                failures
            )
            if retryable:
                raise RetryableError(summary)
            raise PermanentError(summary)


_WORKLOAD_LABELS = ("deployment", "statefulset")


def target_from_labels(labels: Mapping[str, str]) -> ObjectRef | None:
    """The Kubernetes object a series is about, when its labels say so plainly.

    ``namespace`` + ``deployment``/``statefulset`` → that workload; ``namespace`` +
    ``service`` → the Deployment of that name (the convention the twin and most charts
    follow); ``namespace`` + ``pod`` → the pod (playbooks follow owner references).
    """
    ns = labels.get("namespace")
    if not ns:
        return None
    try:
        for kind in _WORKLOAD_LABELS:
            if labels.get(kind):
                return ObjectRef(kind, ns, labels[kind])
        if labels.get("service"):
            return ObjectRef("deployment", ns, labels["service"])
        if labels.get("pod"):
            return ObjectRef("pod", ns, labels["pod"])
    except ValueError:
        return None
    return None


class DetectStage:
    """Score the fetched series; every anomaly at or above ``min_severity`` opens a finding."""

    name = "detect"

    def __init__(
        self, engine: AnomalyEngine, store: FindingStore, *, min_severity: Severity
    ) -> None:
        self._engine = engine
        self._store = store
        self._min = Severity(min_severity)

    def run(self, ctx: TickContext) -> None:
        if not ctx.series:
            return
        report = self._engine.observe(ctx.series, ctx.now)
        ctx.warming_up.update(report.warming_up)
        for anomaly in report.anomalies:
            ctx.anomalies.append(anomaly)
            if not anomaly.severity.at_least(self._min):
                continue
            finding = Finding(
                kind=FindingKind.ANOMALY,
                subject=anomaly.series,
                title=anomaly.summary(),
                severity=anomaly.severity,
                observed_at=ctx.now,
                started_at=anomaly.start,
                labels=anomaly.labels,
                target=target_from_labels(anomaly.labels),
                anomaly=anomaly,
            )
            if self._store.record_finding(finding):
                log.info("new finding %s: %s", finding.id, finding.title)
            ctx.findings.append(finding)
