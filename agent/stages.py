"""The tick's stages as the agent wires them: fetch, feedback, detect, shadow, refit, prune.

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
    Clock,
    FeedbackLabel,
    Finding,
    FindingKind,
    FindingStore,
    MetricSource,
    ObjectRef,
    PermanentError,
    RetryableError,
    Series,
    Severity,
    to_datetime,
    to_timestamp,
)
from vigil.detectors.shadow import latest_labels, sensitivity_from_feedback

__all__ = [
    "AnomalyEngine",
    "DetectStage",
    "FetchStage",
    "PruneStage",
    "RefitJob",
    "RefitStage",
    "SensitivityStage",
    "ShadowStage",
    "target_from_labels",
]

log = logging.getLogger(__name__)


class Prunable(Protocol):
    def prune(self, older_than: datetime) -> Mapping[str, int]: ...


class DetectionReport(Protocol):
    @property
    def anomalies(self) -> Sequence[Anomaly]: ...

    @property
    def warming_up(self) -> Mapping[str, tuple[int, int]]: ...


class Scorer(Protocol):
    """What the detect and shadow stages need: score the latest series each tick."""

    def observe(
        self, series: Sequence[Series], now: datetime, *, refit: bool = True
    ) -> DetectionReport: ...


class RefittingEngine(Protocol):
    def refit(self, now: datetime, *, limit: int | None = None) -> int: ...


class TunableEngine(Protocol):
    def set_sensitivity(self, series_id: str, factor: float) -> None: ...


class AnomalyEngine(Scorer, RefittingEngine, TunableEngine, Protocol):
    """What the agent needs of ``vigil.detectors.engine.DetectionEngine``: score each
    tick, refit on a schedule, take per-series sensitivity from feedback."""


class FeedbackLog(Protocol):
    def feedback_since(
        self, after_id: int = 0
    ) -> Sequence[tuple[int, str, str, FeedbackLabel, datetime]]: ...


class ShadowLog(Protocol):
    def record_shadow(
        self,
        role: str,
        config: str,
        anomalies: Sequence[tuple[Anomaly, str | None]],
        *,
        at: datetime,
    ) -> None: ...


class FetchStage:
    """Fetch every configured query over the look-back window (incrementally after the first)."""

    name = "fetch"

    def __init__(
        self,
        source: MetricSource,
        queries: Mapping[str, str],
        *,
        lookback: float,
        step: float,
        overlap: float = 300.0,
    ) -> None:
        if not queries:
            raise ValueError("fetch stage needs at least one query")
        self._source = source
        self._queries = dict(queries)
        self._step = timedelta(seconds=step)
        self._lookback = lookback
        self._overlap = overlap
        self._caches = {name: SeriesCache(lookback) for name in self._queries}
        self._resume: dict[str, float] = {}

    def run(self, ctx: TickContext) -> None:
        failures: list[str] = []
        retryable = True
        for name, query in self._queries.items():
            cache = self._caches[name]
            last = self._resume.get(name)
            start = ctx.now - timedelta(seconds=self._lookback)
            if last is not None:
                start = max(start, to_datetime(last - self._overlap))
            try:
                fresh = self._source.query_range(query, start, ctx.now, self._step)
            except RetryableError as exc:
                failures.append(f"{name}: {exc}")
                ctx.series.extend(cache.merge([], to_timestamp(ctx.now)))
                continue
            except PermanentError as exc:
                failures.append(f"{name}: {exc}")
                retryable = False
                continue
            named = [Series(name, s.labels, s.timestamps, s.values) for s in fresh]
            merged = cache.merge(named, to_timestamp(ctx.now))
            ctx.series.extend(merged)
            resume = _resume_point(merged, self._overlap)
            if resume is not None:
                self._resume[name] = resume
        if failures:
            summary = f"{len(failures)} of {len(self._queries)} queries failed: " + "; ".join(
                failures
            )
            if retryable:
                raise RetryableError(summary)
            raise PermanentError(summary)


def _resume_point(series: Sequence[Series], overlap: float) -> float | None:
    """Where the next fetch of a query starts: the oldest newest point among live series.

    A series whose newest point is more than ``overlap`` behind the freshest one has
    ended (a deleted pod) or is not being scraped; waiting for it would make every
    later tick fetch again from its last point, hours or days of data for all series.
    The overlap still re-reads the recent points of series that merely lag a scrape.
    """
    ends = [float(s.timestamps[-1]) for s in series if len(s)]
    if not ends:
        return None
    newest = max(ends)
    return min(e for e in ends if e >= newest - overlap)


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
    """Score the fetched series and keep one finding per ongoing anomaly.

    An anomaly on a series that already has an open finding seen within ``resolve_after``
    seconds refreshes that finding (same id, same start) instead of opening a new one, so
    one incident is one finding however many ticks it lasts; a finding whose series has
    been quiet for ``resolve_after`` seconds is resolved. Open findings are re-read from
    the store on the first tick, so a restarted daemon continues the same incidents. An
    anomaly on a pod's series that a change in its workload's pod count explains opens
    no finding for ``replica_change_hold`` seconds (``vigil.agent.replica_changes``).
    """

    name = "detect"

    def __init__(
        self,
        engine: Scorer,
        store: FindingStore,
        *,
        min_severity: Severity,
        resolve_after: float = 900.0,
        replica_change_hold: float = 1800.0,
    ) -> None:
        if resolve_after <= 0:
            raise ValueError(f"resolve_after must be > 0 seconds, got {resolve_after}")
        from vigil.agent.replica_changes import ReplicaChanges

        self._replicas = ReplicaChanges(replica_change_hold) if replica_change_hold else None
        self._engine = engine
        self._store = store
        self._min = Severity(min_severity)
        self._quiet = timedelta(seconds=resolve_after)
        self._open: dict[str, tuple[datetime, datetime, str]] | None = None

    def _load_open(self) -> dict[str, tuple[datetime, datetime, str]]:
        if self._open is None:
            self._open = {
                f.subject: (f.started_at, f.observed_at, f.id)
                for f in self._store.open_findings(limit=10_000)
                if f.kind is FindingKind.ANOMALY
            }
        return self._open

    def run(self, ctx: TickContext) -> None:
        open_ = self._load_open()
        if ctx.series:
            # Refits are the refit job's (or stage's), never the detect stage's.
            report = self._engine.observe(ctx.series, ctx.now, refit=False)
            ctx.warming_up.update(report.warming_up)
            if self._replicas is not None:
                self._replicas.observe(ctx.series, ctx.now)
            for anomaly in report.anomalies:
                ctx.anomalies.append(anomaly)
                if not anomaly.severity.at_least(self._min):
                    continue
                if self._replicas is not None and self._replicas.explains(anomaly, ctx.now):
                    # Per-pod load shifted because the workload just scaled or rolled.
                    log.debug("%s: explained by a change in its pod count", anomaly.series)
                    continue
                self._record(anomaly, ctx, open_)
        for subject, (_, last, fid) in list(open_.items()):
            if ctx.now - last >= self._quiet:
                self._store.resolve_finding(fid, ctx.now)
                del open_[subject]
                log.info("finding %s resolved: %s quiet for %s", fid, subject, self._quiet)

    def _record(
        self,
        anomaly: Anomaly,
        ctx: TickContext,
        open_: dict[str, tuple[datetime, datetime, str]],
    ) -> None:
        previous = open_.get(anomaly.series)
        ongoing = previous is not None and ctx.now - previous[1] < self._quiet
        started = previous[0] if previous is not None and ongoing else anomaly.start
        finding = Finding(
            kind=FindingKind.ANOMALY,
            subject=anomaly.series,
            title=anomaly.summary(),
            severity=anomaly.severity,
            observed_at=ctx.now,
            started_at=started,
            labels=anomaly.labels,
            target=target_from_labels(anomaly.labels),
            anomaly=anomaly,
        )
        if self._store.record_finding(finding):
            log.info("new finding %s: %s", finding.id, finding.title)
        open_[anomaly.series] = (started, ctx.now, finding.id)
        ctx.findings.append(finding)


class PruneStage:
    """Deletes history older than ``retention`` once every ``every`` seconds.

    The store keeps pending approvals, running actions and undelivered messages whatever
    their age (``SqliteStore.prune``).
    """

    name = "prune"

    def __init__(self, store: Prunable, *, retention: float, every: float = 86_400.0) -> None:
        if retention <= 0 or every <= 0:
            raise ValueError("retention and every must be > 0 seconds")
        self._store = store
        self._retention = timedelta(seconds=retention)
        self._every = timedelta(seconds=every)
        self._last: datetime | None = None
        self.pruned: dict[str, int] = {}

    def run(self, ctx: TickContext) -> None:
        if self._last is not None and ctx.now - self._last < self._every:
            return
        self._last = ctx.now
        self.pruned = dict(self._store.prune(ctx.now - self._retention))
        if any(self.pruned.values()):
            log.info("pruned rows older than %s: %s", self._retention, self.pruned)


class SensitivityStage:
    """Applies people's feedback to the detection engines as per-series sensitivity.

    Each tick it reads the feedback given since its last read (``vigil feedback``), and
    sets each labelled series' factor, ``sensitivity_from_feedback`` of its findings'
    latest labels, on every engine (champion and challenger alike, so shadow
    comparisons stay fair). Its first run reads every label, so a restarted agent
    applies them all again.
    """

    name = "feedback"

    def __init__(self, store: FeedbackLog, engines: Sequence[TunableEngine]) -> None:
        self._store = store
        self._engines = tuple(engines)
        self._after = 0
        self._rows: list[tuple[str, str, FeedbackLabel]] = []
        self.factors: dict[str, float] = {}

    def run(self, ctx: TickContext) -> None:
        rows = self._store.feedback_since(self._after)
        if not rows:
            return
        for row_id, finding, series, label, _at in rows:
            self._rows.append((finding, series, label))
            self._after = max(self._after, row_id)
        labels = latest_labels(self._rows)
        for series in sorted({series for _, _, series, _, _ in rows}):
            factor = sensitivity_from_feedback(labels.get(series, []))
            self.factors[series] = factor
            for engine in self._engines:
                engine.set_sensitivity(series, factor)
            log.info(
                "sensitivity of %s now ×%.2f from %d labelled finding(s)",
                series,
                factor,
                len(labels.get(series, [])),
            )


class ShadowStage:
    """Runs the challenger engine on the tick's series and stores both runs' anomalies.

    Nothing here opens a finding or plans an action: the challenger's anomalies only go
    to the store's shadow table, beside the champion's (from the detect stage, with the
    id of the finding each opened, which is what feedback labels). Both are filtered at
    ``min_severity``, as findings are. ``vigil shadow report`` compares them.
    """

    name = "shadow"

    def __init__(
        self,
        challenger: Scorer,
        store: ShadowLog,
        *,
        champion_config: str,
        challenger_config: str,
        min_severity: Severity,
    ) -> None:
        self._engine = challenger
        self._store = store
        self._configs = {"champion": champion_config, "challenger": challenger_config}
        self._min = Severity(min_severity)

    def run(self, ctx: TickContext) -> None:
        if not ctx.series:
            return
        report = self._engine.observe(ctx.series, ctx.now, refit=False)
        opened = {f.subject: f.id for f in ctx.findings if f.kind is FindingKind.ANOMALY}
        champion = [
            (a, opened.get(a.series)) for a in ctx.anomalies if a.severity.at_least(self._min)
        ]
        challenger: list[tuple[Anomaly, str | None]] = [
            (a, None) for a in report.anomalies if a.severity.at_least(self._min)
        ]
        for role, found in (("champion", champion), ("challenger", challenger)):
            self._store.record_shadow(role, self._configs[role], found, at=ctx.now)
        ctx.extras["shadow_anomalies"] = len(challenger)


class RefitStage:
    """Refits due banks inside the tick: for ``vigil demo`` and ``vigil backtest``, whose
    clock is simulated (no second thread runs jobs). ``vigil run`` uses ``RefitJob``."""

    name = "refit"

    def __init__(self, engines: Sequence[RefittingEngine], *, limit: int | None) -> None:
        self._engines = tuple(engines)
        self._limit = limit

    def run(self, ctx: TickContext) -> None:
        for engine in self._engines:
            engine.refit(ctx.now, limit=self._limit)


class RefitJob:
    """``vigil run``'s refit job, scheduled beside the tick every ``detection.refit_every``:
    refits every due bank of every engine. The engine fits outside its lock and swaps
    the new model in, so a tick running meanwhile is not held up."""

    name = "refit"

    def __init__(self, engines: Sequence[RefittingEngine], clock: Clock) -> None:
        self._engines = tuple(engines)
        self._clock = clock
        self.runs = 0

    def __call__(self) -> int:
        now = self._clock.now()
        done = sum(engine.refit(now) for engine in self._engines)
        self.runs += 1
        if done:
            log.info("refit job: %d bank(s) refitted", done)
        return done
