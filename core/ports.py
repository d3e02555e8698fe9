"""The ports: what the other packages need from the world, as small ``Protocol``s.

Implementations are named by what they are: ``vigil.agent.prometheus.PrometheusSource``
and ``vigil.sim`` (``MetricSource``), ``vigil.actions.kubernetes`` and ``vigil.sim``
(``Cluster``), ``vigil.actions.slack`` / ``webhook`` (``Notifier``),
``vigil.agent.store.SqliteStore`` (``Store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from vigil.core.actions import ActionResult, ActionStatus, Plan, Verification
from vigil.core.findings import Finding, Forecast
from vigil.core.notifications import Delivery, Notification
from vigil.core.objects import HpaInfo, NodeInfo, ObjectRef, PodInfo, WorkloadInfo
from vigil.core.records import FeedbackLabel, JournalEntry, OutboxItem, TickRecord
from vigil.core.series import Sample, Series

__all__ = [
    "ActionJournal",
    "Cluster",
    "FeedbackStore",
    "FindingStore",
    "ForecastStore",
    "MetricSource",
    "Notifier",
    "Outbox",
    "Store",
    "TickLog",
]


@runtime_checkable
class MetricSource(Protocol):
    """Read access to metrics (PromQL semantics). Errors: ``SourceUnavailable`` (retry),
    ``QueryError`` (bad query, do not retry)."""

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        """Instant query at ``at`` (default: now)."""
        ...

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        """Range query; points aligned to multiples of ``step``, gaps as NaN."""
        ...

    def series(self, selector: str, start: datetime, end: datetime) -> list[Mapping[str, str]]:
        """Label sets of the series matching ``selector`` in [start, end]."""
        ...

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        """Known values of ``label`` (optionally among series matching ``selector``)."""
        ...


@runtime_checkable
class Cluster(Protocol):
    """Kubernetes as the agent sees it: reads, and typed mutating actions.

    Every mutating method honours ``dry_run`` (server-side dry run: validated, nothing
    changes) and returns an ``ActionResult`` whose ``before`` holds what a revert needs.
    """

    def list_namespaces(self) -> list[str]: ...

    def list_workloads(self, namespace: str | None = None) -> list[WorkloadInfo]: ...

    def get_workload(self, ref: ObjectRef) -> WorkloadInfo: ...

    def list_pods(
        self, namespace: str | None = None, selector: Mapping[str, str] | None = None
    ) -> list[PodInfo]: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def list_hpas(self, namespace: str | None = None) -> list[HpaInfo]: ...

    def owner_workload(self, pod: ObjectRef) -> ObjectRef | None:
        """Follow owner references pod → ReplicaSet → Deployment (or StatefulSet)."""
        ...

    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult: ...

    def rollout_restart(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult: ...

    def rollout_undo(
        self, ref: ObjectRef, *, to_revision: int | None = None, dry_run: bool
    ) -> ActionResult: ...

    def delete_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult: ...

    def evict_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult: ...

    def cordon(self, node: str, *, dry_run: bool) -> ActionResult: ...

    def uncordon(self, node: str, *, dry_run: bool) -> ActionResult: ...

    def patch_hpa(
        self,
        ref: ObjectRef,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        dry_run: bool,
    ) -> ActionResult: ...

    def patch_resources(
        self,
        ref: ObjectRef,
        container: str,
        *,
        requests: Mapping[str, str] | None = None,
        limits: Mapping[str, str] | None = None,
        dry_run: bool,
    ) -> ActionResult: ...


@runtime_checkable
class Notifier(Protocol):
    """A channel to people. ``send`` posts a new message; ``update`` edits one when the
    channel can (``supports_update``). Errors: ``RetryableError`` (with delay) or
    ``PermanentError``."""

    name: str
    supports_update: bool

    def send(self, message: Notification) -> Delivery: ...

    def update(self, message_ref: str, message: Notification) -> Delivery: ...


class TickLog(Protocol):
    def start_tick(self, started_at: datetime) -> int: ...

    def finish_tick(
        self,
        tick_id: int,
        ended_at: datetime,
        durations: Mapping[str, float],
        errors: Sequence[str],
    ) -> None: ...

    def recent_ticks(self, limit: int = 10) -> list[TickRecord]: ...


class FindingStore(Protocol):
    def record_finding(self, finding: Finding) -> bool:
        """Insert or refresh a finding by id; ``True`` when it is new."""
        ...

    def resolve_finding(self, finding_id: str, at: datetime) -> None: ...

    def get_finding(self, finding_id: str) -> Finding: ...

    def open_findings(self, limit: int = 100) -> list[Finding]: ...

    def findings_between(self, start: datetime, end: datetime) -> list[Finding]: ...


class ForecastStore(Protocol):
    def record_forecast(self, forecast: Forecast) -> None: ...

    def latest_forecast(self, series: str) -> Forecast | None: ...


class ActionJournal(Protocol):
    """The action journal: one row per intended action, unique by idempotency key.

    Guardrails read their state (cooldowns, budgets) from here, so a restart forgets
    nothing."""

    def journal_plan(
        self, plan: Plan, status: ActionStatus, *, reason: str = "", at: datetime
    ) -> JournalEntry | None:
        """Insert a row for ``plan``; ``None`` if its idempotency key exists already."""
        ...

    def journal_get(self, action_id: int) -> JournalEntry: ...

    def journal_by_key(self, key: str) -> JournalEntry | None: ...

    def journal_transition(
        self,
        action_id: int,
        status: ActionStatus,
        *,
        at: datetime,
        expect: Sequence[ActionStatus] | None = None,
        message: str = "",
        result: ActionResult | None = None,
        verify_at: datetime | None = None,
    ) -> JournalEntry:
        """Move a row to ``status`` (only from one of ``expect`` when given: compare-and-set)."""
        ...

    def journal_list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[ActionStatus] | None = None,
        namespace: str | None = None,
        playbook: str | None = None,
        limit: int = 100,
    ) -> list[JournalEntry]: ...

    def count_actions(
        self,
        *,
        since: datetime,
        statuses: Sequence[ActionStatus],
        namespace: str | None = None,
        playbook: str | None = None,
        target: ObjectRef | None = None,
    ) -> int: ...

    def last_action_at(
        self, *, playbook: str, target: ObjectRef, statuses: Sequence[ActionStatus]
    ) -> datetime | None: ...

    def due_verifications(self, now: datetime) -> list[JournalEntry]: ...

    def record_verification(self, verification: Verification) -> None: ...


class Outbox(Protocol):
    def enqueue(self, channel: str, notification: Notification, *, at: datetime) -> bool:
        """Queue a message; ``False`` when this channel has that dedupe key already."""
        ...

    def due_messages(self, now: datetime, limit: int = 50) -> list[OutboxItem]: ...

    def mark_delivered(self, item_id: int, delivery: Delivery, *, at: datetime) -> None: ...

    def mark_failed(self, item_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failed attempt; ``retry_at=None`` gives up (dead letter)."""
        ...

    def message_ref(self, channel: str, incident_key: str) -> str | None:
        """The channel's id of the incident's message, to update it in place."""
        ...

    def outbox_depth(self) -> int: ...


class FeedbackStore(Protocol):
    def record_feedback(self, finding_id: str, label: FeedbackLabel, *, at: datetime) -> None: ...

    def feedback_for(self, series: str) -> list[FeedbackLabel]: ...


class Store(TickLog, FindingStore, ForecastStore, ActionJournal, Outbox, FeedbackStore, Protocol):
    """Everything the agent keeps, behind one port (``vigil.agent.store.SqliteStore``)."""

    def prune(self, older_than: datetime) -> Mapping[str, int]:
        """Delete rows older than ``older_than``; returns counts per table."""
        ...

    def stats(self) -> Mapping[str, Any]: ...
