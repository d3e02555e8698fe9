"""The agent's Prometheus metrics, on its own ``CollectorRegistry`` (served at ``/metrics``).

``vigil run`` makes one ``Metrics``; the runner calls ``observe_tick`` after every tick,
the HTTP server counts Alertmanager alerts and approvals, the delivery worker reports
each drain (``count_delivery``), and the outbox depth is read at scrape time. A
registry of our own (not the global one) keeps tests independent and the exposition
free of other libraries' metrics.

What the loop tells it: ``TickOutcome`` (durations, errors), ``ctx.findings`` (counted
once per finding id) and ``ctx.extras["journal"]`` — the journal rows the playbook stage
created or moved this tick — counted by status and playbook, refusals separately.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from vigil.core import ActionStatus, Clock, JournalEntry, SystemClock, VigilError

if TYPE_CHECKING:
    from vigil.agent.delivery import DeliveryStats
    from vigil.agent.loop import TickOutcome

__all__ = ["JOURNAL_KEY", "Metrics"]

log = logging.getLogger(__name__)

JOURNAL_KEY = "journal"
"""``ctx.extras`` key: the ``JournalEntry`` rows the playbook stage wrote this tick."""

_TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_SEEN_FINDINGS = 50_000


class Metrics:
    """Every metric vigil exports; ``render()`` gives the exposition text."""

    def __init__(
        self,
        *,
        outbox_depth: Callable[[], int] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.tick_seconds = Histogram(
            "vigil_tick_duration_seconds", "Wall time of one tick.", buckets=_TICK_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.stage_seconds = Histogram(
            "vigil_stage_duration_seconds", "Wall time of one stage of a tick.", ["stage"],
            buckets=_TICK_BUCKETS, registry=r,
        )  # fmt: skip
        self.ticks = Counter("vigil_ticks_total", "Ticks run, by result (ok, failed).",
                             ["result"], registry=r)  # fmt: skip
        self.last_success = Gauge(
            "vigil_last_successful_tick_timestamp_seconds",
            "Unix time the last tick without errors ended (0 before the first).", registry=r,
        )  # fmt: skip
        self.findings = Counter("vigil_findings_total", "New findings, by kind and severity.",
                                ["kind", "severity"], registry=r)  # fmt: skip
        self.actions = Counter(
            "vigil_actions_total", "Journal transitions, by status and playbook.",
            ["status", "playbook"], registry=r,
        )  # fmt: skip
        self.refusals = Counter("vigil_guardrail_refusals_total",
                                "Plans a guardrail refused, by playbook.", ["playbook"],
                                registry=r)  # fmt: skip
        self.outbox = Gauge("vigil_outbox_depth", "Notifications waiting for delivery.",
                            registry=r)  # fmt: skip
        self.deliveries = Counter(
            "vigil_notifications_total",
            "Delivery attempts by result (delivered, retried, dead).", ["result"], registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "vigil_alertmanager_alerts_total",
            "Alerts received, by status and what came of them (new, repeat, resolved, unknown).",
            ["status", "result"], registry=r,
        )  # fmt: skip
        self.rejected = Counter("vigil_http_rejected_total",
                                "Requests refused with a 4xx, by path and reason.",
                                ["path", "reason"], registry=r)  # fmt: skip
        self.approvals = Counter("vigil_approvals_total", "Decisions taken through links.",
                                 ["decision"], registry=r)  # fmt: skip
        self.leader = Gauge("vigil_leader", "1 while this replica holds the leader lease.",
                            registry=r)  # fmt: skip
        if outbox_depth is not None:
            self.outbox.set_function(lambda: _safe(outbox_depth))
        self._seen: OrderedDict[str, None] = OrderedDict()

    def observe_tick(self, outcome: TickOutcome) -> None:
        """Record one tick: durations, result, new findings and journal transitions."""
        self.tick_seconds.observe(sum(outcome.durations.values()))
        for stage, seconds in outcome.durations.items():
            self.stage_seconds.labels(stage=stage).observe(seconds)
        self.ticks.labels(result="ok" if outcome.ok else "failed").inc()
        if outcome.ok:
            self.last_success.set(self._clock.now().timestamp())
        for finding in outcome.context.findings:
            if finding.id in self._seen:
                continue
            self._seen[finding.id] = None
            if len(self._seen) > _SEEN_FINDINGS:
                self._seen.popitem(last=False)
            self.findings.labels(kind=str(finding.kind), severity=str(finding.severity)).inc()
        entries = outcome.context.extras.get(JOURNAL_KEY, ())
        self.count_journal(entries)

    def count_journal(self, entries: Iterable[JournalEntry]) -> None:
        for entry in entries:
            self.actions.labels(status=str(entry.status), playbook=entry.playbook).inc()
            if entry.status is ActionStatus.REFUSED:
                self.refusals.labels(playbook=entry.playbook).inc()

    def count_delivery(self, stats: DeliveryStats) -> None:
        """The delivery worker's observer: every drain, from the tick or its thread."""
        self.deliveries.labels(result="delivered").inc(stats.delivered)
        self.deliveries.labels(result="retried").inc(stats.retried)
        self.deliveries.labels(result="dead").inc(stats.dead)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _safe(read: Callable[[], int]) -> float:
    try:
        return float(read())
    except VigilError as exc:  # a busy store must not fail the scrape
        log.warning("outbox depth unavailable: %s", exc)
        return math.nan
