"""Incident messages: findings and journal transitions become ``Notification``s in the outbox.

``NotifyStage`` is the tick's last stage (``name="notify"``). Each tick it queues, per
channel chosen by the ``Router``:

1. ``detected`` for every open finding it has not announced yet (this tick's findings,
   and findings recorded between ticks, such as Alertmanager alerts);
2. the playbook engine's messages for this tick (``ctx.extras["notifications"]``:
   awaiting-approval, acting, verified, reverted, escalated) and, from the journal rows
   of the tick (``ctx.extras["journal"]``), what it would have done in dry-run or was
   refused by a guardrail; each preceded by its incident's ``detected`` message if that
   was never queued, and enriched with the incident's headline (and its severity, so
   the incident keeps its channels) and, for approvals, signed approve/deny links;
3. ``resolved`` for findings resolved since the last tick.

One incident is one finding (``incident_key`` = finding id). Dedupe keys are
``<finding>:<state>[:<action>]``: the outbox's ``UNIQUE(channel, dedupe_key)`` makes a
re-run tick or a restarted daemon queue nothing twice. Then it drains the outbox once
(``DeliveryWorker``); a background thread keeps draining between ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from vigil.agent.metrics import JOURNAL_KEY
from vigil.core import (
    ActionStatus,
    Finding,
    FindingKind,
    IncidentState,
    JournalEntry,
    NotFoundError,
    Notification,
    OutboxItem,
    Severity,
)

if TYPE_CHECKING:
    from vigil.agent.approval_links import ApprovalLinks
    from vigil.agent.delivery import DeliveryWorker
    from vigil.agent.loop import TickContext
    from vigil.agent.routing import Router

__all__ = [
    "NOTIFICATIONS_KEY",
    "NotifyStage",
    "describe_item",
    "detected_message",
    "plan_message",
    "resolved_message",
]

log = logging.getLogger(__name__)

NOTIFICATIONS_KEY = "notifications"
"""``ctx.extras`` key under which the playbook stage leaves this tick's ``Notification``s."""

_SEEN_MAX = 200_000  # (channel, dedupe key) pairs remembered to skip repeat inserts


class _IncidentStore(Protocol):
    def get_finding(self, finding_id: str) -> Finding: ...

    def open_findings(self, limit: int = 100) -> list[Finding]: ...

    def findings_between(self, start: datetime, end: datetime) -> list[Finding]: ...

    def enqueue(self, channel: str, notification: Notification, *, at: datetime) -> bool: ...


def _describe(finding: Finding) -> str:
    lines = []
    if finding.target is not None:
        lines.append(f"target: {finding.target}")
    if finding.kind is FindingKind.ANOMALY and finding.anomaly is not None:
        a = finding.anomaly
        lines.append(f"detector {a.detector} {a.detector_version}, score {a.score:.2f}")
    if finding.kind is FindingKind.ALERT:
        summary = finding.details.get("summary") or finding.details.get("description")
        if summary:
            lines.append(str(summary))
    lines.append(f"since {finding.started_at:%Y-%m-%d %H:%M:%S} UTC")
    return "\n".join(lines)


def _namespace(finding: Finding) -> str | None:
    if finding.target is not None and finding.target.namespace:
        return finding.target.namespace
    return finding.labels.get("namespace") or None


def detected_message(finding: Finding, *, now: datetime, cluster: str = "") -> Notification:
    """The first message of an incident: what was noticed, on what, since when."""
    return Notification(
        incident_key=finding.id,
        dedupe_key=f"{finding.id}:{IncidentState.DETECTED}",
        state=IncidentState.DETECTED,
        severity=finding.severity,
        title=finding.title,
        text=_describe(finding),
        created_at=now,
        namespace=_namespace(finding),
        fields={"incident": finding.title, "kind": str(finding.kind), "cluster": cluster},
    )


def resolved_message(finding: Finding, *, now: datetime, cluster: str = "") -> Notification:
    """The last message of an incident."""
    resolved = finding.resolved_at or now
    took = resolved - finding.started_at
    return Notification(
        incident_key=finding.id,
        dedupe_key=f"{finding.id}:{IncidentState.RESOLVED}",
        state=IncidentState.RESOLVED,
        severity=finding.severity,
        title=finding.title,
        text=f"resolved at {resolved:%Y-%m-%d %H:%M:%S} UTC after {_duration(took)}",
        created_at=now,
        namespace=_namespace(finding),
        fields={"incident": finding.title, "kind": str(finding.kind), "cluster": cluster},
    )


def plan_message(entry: JournalEntry, *, now: datetime) -> Notification:
    """What vigil would have done (dry-run) or was stopped from doing (a guardrail), as a
    message in the incident's thread; the incident stays ``detected``: nothing changed."""
    what = f"{entry.action} {entry.target}"
    if entry.status is ActionStatus.DRY_RUN:
        text = f"dry-run: would have run {what}" + (f" ({entry.reason})" if entry.reason else "")
    else:
        text = f"refused: {what} — {entry.reason or 'a guardrail said no'}"
    return Notification(
        incident_key=entry.finding_id,
        dedupe_key=f"{entry.finding_id}:{IncidentState.DETECTED}:{entry.status}:{entry.id}",
        state=IncidentState.DETECTED,
        severity=Severity.INFO,
        title=f"{entry.playbook}: {what}",
        text=text,
        created_at=now,
        namespace=entry.target.namespace,
        fields={"action_id": entry.id, "playbook": entry.playbook, "status": str(entry.status)},
    )


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class NotifyStage:
    """Queues incident messages for the tick and drains the outbox once."""

    name = "notify"

    def __init__(
        self,
        store: _IncidentStore,
        router: Router,
        *,
        worker: DeliveryWorker | None = None,
        links: ApprovalLinks | None = None,
        cluster: str = "",
        resolved_lookback: float = 3600.0,
        open_scan: int = 1000,
    ) -> None:
        self._store = store
        self._router = router
        self._worker = worker
        self._links = links
        self._cluster = cluster
        self._lookback = timedelta(seconds=resolved_lookback)
        self._open_scan = open_scan
        self._since: datetime | None = None
        self._seen: set[tuple[str, str]] = set()
        self.queued = 0

    # -- queueing -------------------------------------------------------------------

    def _enqueue(self, message: Notification, severity: Severity, now: datetime) -> None:
        for channel in self._router.channels_for(message, severity):
            key = (channel, message.dedupe_key)
            if key in self._seen:
                continue
            if self._store.enqueue(channel, message, at=now):
                self.queued += 1
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen.add(key)

    def _finding(self, finding_id: str) -> Finding | None:
        try:
            return self._store.get_finding(finding_id)
        except NotFoundError:
            return None

    def _enrich(
        self, message: Notification, finding: Finding | None, severity: Severity, now: datetime
    ) -> Notification:
        extra: dict[str, object] = {"cluster": self._cluster}
        if finding is not None:
            extra["incident"] = finding.title
        action_id = message.fields.get("action_id")
        if (
            message.state is IncidentState.AWAITING_APPROVAL
            and self._links is not None
            and isinstance(action_id, int)
        ):
            extra["approve_url"] = self._links.mint(action_id, "approve", now=now)
            extra["deny_url"] = self._links.mint(action_id, "deny", now=now)
        namespace = message.namespace or (_namespace(finding) if finding else None)
        return replace(
            message, fields={**extra, **message.fields}, namespace=namespace, severity=severity
        )

    def queue(
        self, findings: Iterable[Finding], messages: Sequence[Notification], now: datetime
    ) -> None:
        """Queue detected → engine messages → resolved for one tick (see the module doc)."""
        since = self._since or now - self._lookback
        announced: set[str] = set()
        for finding in findings:
            if finding.id in announced or finding.resolved:
                continue
            announced.add(finding.id)
            self._enqueue(detected_message(finding, now=now, cluster=self._cluster),
                          finding.severity, now)  # fmt: skip
        for message in messages:
            incident = self._finding(message.incident_key)
            severity = message.severity
            if incident is not None:
                if incident.severity.rank > severity.rank:
                    severity = incident.severity  # the incident keeps its channels
                if incident.id not in announced:
                    announced.add(incident.id)
                    self._enqueue(detected_message(incident, now=now, cluster=self._cluster),
                                  severity, now)  # fmt: skip
            self._enqueue(self._enrich(message, incident, severity, now), severity, now)
        for finding in self._store.findings_between(since, now):
            if finding.resolved_at is None or finding.resolved_at < since:
                continue
            if finding.id not in announced:
                self._enqueue(detected_message(finding, now=now, cluster=self._cluster),
                              finding.severity, now)  # fmt: skip
            self._enqueue(resolved_message(finding, now=now, cluster=self._cluster),
                          finding.severity, now)  # fmt: skip
        self._since = now

    def run(self, ctx: TickContext) -> None:
        messages = list(ctx.extras.get(NOTIFICATIONS_KEY, ()))
        messages += [
            plan_message(entry, now=ctx.now)
            for entry in ctx.extras.get(JOURNAL_KEY, ())
            if entry.status in (ActionStatus.DRY_RUN, ActionStatus.REFUSED)
        ]
        findings = [*ctx.findings, *self._store.open_findings(limit=self._open_scan)]
        self.queue(findings, messages, ctx.now)
        if self._worker is not None:
            self._worker.drain(ctx.now)
            self._worker.wake()


def describe_item(item: OutboxItem) -> str:
    """One line for `vigil status`: channel, state, incident, attempts and last error."""
    n = item.notification
    err = f" — {item.last_error}" if item.last_error else ""
    return f"{item.channel}: {n.state} {n.incident_key} ({item.attempts} attempts){err}"
