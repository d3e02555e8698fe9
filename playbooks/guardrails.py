"""The safety model (design.md): every plan passes these checks, and every decision is a row.

Order: idempotency → live finding → namespace allow/deny (never kube-system) →
cooldown → per-playbook rate limit → change budget (namespace, then cluster) → nothing
to do → blast radius → storm → freeze windows → dry-run → approval → go. All state is
read from the ``ActionJournal`` port (``journal_list``, ``last_action_at``,
``journal_by_key``), so a restarted daemon forgets nothing.

Budgets count rows that changed (or tried to change) the cluster: running, succeeded,
failed, reverted — by their ``created_at``. A dry-run plan is judged as if dry-run rows
were real too, so a dry run shows what switching on would do; a real plan counts real
rows only. Refusals are journalled once per plan and guardrail (their own idempotency
key), so a finding that stays open does not write a row every tick, and the plan can
still act once the guardrail lets it. Called by ``executor.PlaybookEngine`` and
``backtest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vigil.core import (
    MUTATING_ACTIONS,
    ActionJournal,
    ActionStatus,
    Finding,
    JournalEntry,
    Mode,
    NotFoundError,
    Plan,
    idempotency_key,
)
from vigil.playbooks.changes import Change, compute_change
from vigil.playbooks.cron import CronWindow, frozen_until
from vigil.playbooks.limits import Limits, effective_limits
from vigil.playbooks.matching import finding_is_live
from vigil.playbooks.schema import Playbook
from vigil.playbooks.settings import GuardrailSettings, ResourceBounds

if TYPE_CHECKING:
    from vigil.core import Cluster

__all__ = ["COUNTED", "COUNTED_WITH_DRY_RUN", "MANUAL", "Decision", "Guardrails"]

COUNTED = (
    ActionStatus.RUNNING,
    ActionStatus.SUCCEEDED,
    ActionStatus.FAILED,
    ActionStatus.REVERTED,
)
COUNTED_WITH_DRY_RUN = (*COUNTED, ActionStatus.DRY_RUN)
MANUAL = "manual"
HOUR = timedelta(hours=1)
_SCAN = 5000  # rows of one hour read at most; budgets are tens, this bounds a flood


@dataclass(frozen=True)
class Decision:
    """What the guardrails decided for one plan, and the journal row that records it.

    ``status`` is ``running`` when the plan may act now (its row is the claim), else
    ``dry-run``, ``refused`` or ``pending-approval``. ``duplicate`` means the plan's
    idempotency key was known: no new row, ``entry`` is the existing one.
    """

    plan: Plan
    status: ActionStatus
    reason: str
    guardrail: str = ""
    entry: JournalEntry | None = None
    change: Change | None = None
    duplicate: bool = False

    @property
    def go(self) -> bool:
        return self.status is ActionStatus.RUNNING and not self.duplicate


def _hhmm(when: datetime) -> str:
    return f"{when:%H:%M} UTC"


class Guardrails:
    """Decides plans against the journal; writes one row per decision."""

    def __init__(
        self,
        journal: ActionJournal,
        settings: GuardrailSettings,
        playbooks: Mapping[str, Playbook] | None = None,
        *,
        resources: ResourceBounds | None = None,
    ) -> None:
        self.journal = journal
        self.settings = settings
        self.playbooks = dict(playbooks or {})
        self.resources = resources or ResourceBounds()
        self._windows = [CronWindow.parse(w) for w in settings.freeze_windows]

    def limits(self, playbook: str) -> Limits:
        book = self.playbooks.get(playbook)
        return effective_limits(self.settings, book.guardrails if book else None)

    # -- journal writes -------------------------------------------------------------

    def _record(
        self,
        plan: Plan,
        status: ActionStatus,
        reason: str,
        guardrail: str,
        now: datetime,
        *,
        change: Change | None = None,
    ) -> Decision:
        row_plan = plan
        if status is ActionStatus.REFUSED:
            # One refusal row per plan and guardrail; the plan's own key stays free.
            key = idempotency_key(plan.idempotency_key, "refused", guardrail)
            row_plan = replace(plan, idempotency_key=key)
        entry = self.journal.journal_plan(row_plan, status, reason=reason, at=now)
        if entry is None:
            existing = self.journal.journal_by_key(row_plan.idempotency_key)
            return Decision(plan, status, reason, guardrail, existing, change, duplicate=True)
        return Decision(plan, status, reason, guardrail, entry, change)

    def _refuse(
        self, plan: Plan, guardrail: str, why: str, now: datetime, change: Change | None = None
    ) -> Decision:
        reason = f"{plan.target}: {plan.action} refused, {why}"
        return self._record(plan, ActionStatus.REFUSED, reason, guardrail, now, change=change)

    # -- individual checks ------------------------------------------------------------

    def _namespace(self, plan: Plan) -> str:
        ns = plan.target.namespace
        if ns is None:
            return ""
        if ns == "kube-system" or ns in self.settings.namespaces_deny:
            return f"namespace {ns} is denied (guardrails.namespaces_deny)"
        allow = self.settings.namespaces_allow
        if allow and ns not in allow:
            return f"namespace {ns} is not in guardrails.namespaces_allow ({', '.join(allow)})"
        return ""

    def _changes(
        self,
        now: datetime,
        statuses: tuple[ActionStatus, ...],
        *,
        namespace: str | None = None,
        playbook: str | None = None,
    ) -> list[JournalEntry]:
        """Mutating rows of the last hour. Notifications share the journal but spend no
        budget, and ``count_actions`` cannot tell them apart, hence the list."""
        rows = self.journal.journal_list(
            since=now - HOUR,
            statuses=statuses,
            namespace=namespace,
            playbook=playbook,
            limit=_SCAN,
        )
        return [r for r in rows if r.action in MUTATING_ACTIONS]

    def _next_slot(self, now: datetime, limit: int, rows: list[JournalEntry]) -> datetime:
        times = sorted(r.created_at for r in rows)
        over = len(times) - limit  # the (over)th oldest must age out first
        return (times[over] if 0 <= over < len(times) else now) + HOUR

    def _cooldown(
        self, plan: Plan, lim: Limits, counted: tuple[ActionStatus, ...], now: datetime
    ) -> str:
        if plan.step > 0 or plan.playbook == MANUAL:
            return ""  # escalation of the same incident, or a person acting by hand
        last = self.journal.last_action_at(
            playbook=plan.playbook, target=plan.target, statuses=counted
        )
        if last is None or now - last >= timedelta(seconds=lim.cooldown):
            return ""
        until = last + timedelta(seconds=lim.cooldown)
        return (
            f"cooldown of {lim.cooldown / 60:g} min for playbook {plan.playbook} on this "
            f"target (last action {_hhmm(last)}, next at {_hhmm(until)})"
        )

    def _rate(
        self, plan: Plan, lim: Limits, counted: tuple[ActionStatus, ...], now: datetime
    ) -> str:
        if plan.playbook == MANUAL:
            return ""
        done = len(self._changes(now, counted, playbook=plan.playbook))
        if done < lim.per_playbook_per_hour:
            return ""
        return (
            f"rate limit of {lim.per_playbook_per_hour} actions/hour for playbook "
            f"{plan.playbook} reached"
        )

    def _budget(
        self, plan: Plan, lim: Limits, counted: tuple[ActionStatus, ...], now: datetime
    ) -> tuple[str, str]:
        ns = plan.target.namespace
        if ns is not None:
            rows = self._changes(now, counted, namespace=ns)
            if len(rows) >= lim.per_namespace_per_hour:
                slot = self._next_slot(now, lim.per_namespace_per_hour, rows)
                return "budget-namespace", (
                    f"budget of {lim.per_namespace_per_hour} actions/hour in namespace {ns} "
                    f"spent (next slot {_hhmm(slot)})"
                )
        rows = self._changes(now, counted)
        if len(rows) >= lim.per_cluster_per_hour:
            slot = self._next_slot(now, lim.per_cluster_per_hour, rows)
            return "budget-cluster", (
                f"cluster-wide budget of {lim.per_cluster_per_hour} actions/hour spent "
                f"(next slot {_hhmm(slot)})"
            )
        return "", ""

    def _blast_radius(self, plan: Plan, change: Change, lim: Limits, cluster: Cluster) -> str:
        wl = change.workload
        if plan.target.kind == "Node" and plan.action == "cordon":
            nodes = cluster.list_nodes()
            usable = [n for n in nodes if n.ready and not n.unschedulable]
            others = [n for n in usable if n.name != plan.target.name]
            if len(others) < max(1, lim.min_available):
                return (
                    f"blast radius: it would leave {len(others)} schedulable ready node(s), "
                    f"need at least {max(1, lim.min_available)}"
                )
            cordoned = sum(1 for n in nodes if n.unschedulable) + 1
            if cordoned * 2 > len(nodes):
                return f"blast radius: {cordoned} of {len(nodes)} nodes would be cordoned"
            return ""
        if wl is None or change.ready_lost <= 0:
            return ""
        left = wl.ready_replicas - change.ready_lost
        if left < lim.min_available:
            return (
                f"blast radius: it would leave {left} ready replica(s) of {wl.ref}, below "
                f"min_available {lim.min_available}"
            )
        share = 100.0 * change.ready_lost / max(wl.replicas, 1)
        if share > lim.max_unavailable_percent:
            return (
                f"blast radius: it would take down {change.ready_lost} of {wl.replicas} "
                f"replicas ({share:.0f} %), more than {lim.max_unavailable_percent:g} %"
            )
        return ""

    def _storm(self, plan: Plan, cluster: Cluster) -> str:
        pct = self.settings.storm_unhealthy_percent
        least = self.settings.storm_min_unhealthy
        nodes = cluster.list_nodes()
        down = [n.name for n in nodes if not n.ready]
        if nodes and len(down) >= least and 100.0 * len(down) / len(nodes) >= pct:
            return f"storm: {len(down)} of {len(nodes)} nodes are NotReady; a person decides"
        ns = plan.target.namespace
        if ns is None:
            return ""
        workloads = cluster.list_workloads(ns)
        sick = [w for w in workloads if w.ready_replicas < w.replicas]
        if workloads and len(sick) >= least and 100.0 * len(sick) / len(workloads) >= pct:
            return (
                f"storm: {len(sick)} of {len(workloads)} workloads in namespace {ns} are "
                "unhealthy at once; a person decides"
            )
        return ""

    # -- the decision -------------------------------------------------------------------

    def decide(
        self,
        plan: Plan,
        *,
        now: datetime,
        cluster: Cluster | None = None,
        finding: Finding | None = None,
        approved: bool = False,
    ) -> Decision:
        """Run every guardrail on ``plan`` and journal the outcome (one row)."""
        existing = self.journal.journal_by_key(plan.idempotency_key)
        if existing is not None:
            return Decision(
                plan,
                existing.status,
                f"already journalled as #{existing.id} ({existing.status})",
                "idempotency",
                existing,
                duplicate=True,
            )
        if finding is not None:
            dead = finding_is_live(finding, now, self.settings.finding_max_age)
            if dead:
                return self._refuse(plan, "finding", dead, now)
        dry = self.settings.dry_run or plan.mode is Mode.DRY_RUN
        if dry and plan.mode is not Mode.DRY_RUN:
            plan = replace(plan, mode=Mode.DRY_RUN)
        if not plan.mutating:
            return self._record(plan, ActionStatus.RUNNING, plan.reason, "", now)
        why = self._namespace(plan)
        if why:
            return self._refuse(plan, "namespace", why, now)
        lim = self.limits(plan.playbook)
        counted = COUNTED_WITH_DRY_RUN if dry else COUNTED
        why = self._cooldown(plan, lim, counted, now)
        if why:
            return self._refuse(plan, "cooldown", why, now)
        why = self._rate(plan, lim, counted, now)
        if why:
            return self._refuse(plan, "rate-limit", why, now)
        name, why = self._budget(plan, lim, counted, now)
        if why:
            return self._refuse(plan, name, why, now)
        try:
            change = compute_change(plan, cluster, self.resources)
        except NotFoundError as exc:
            return self._refuse(plan, "target", f"target not found: {exc}", now)
        if change.noop:
            return self._refuse(plan, "noop", f"nothing to do: {change.noop}", now, change)
        if cluster is not None:
            why = self._blast_radius(plan, change, lim, cluster)
            if why:
                return self._refuse(plan, "blast-radius", why, now, change)
            why = self._storm(plan, cluster)
            if why:
                return self._refuse(plan, "storm", why, now, change)
        until = frozen_until(self._windows, now)
        if until is not None:
            windows = "; ".join(self.settings.freeze_windows)
            why = f"freeze window ({windows}) until {_hhmm(until)}"
            return self._refuse(plan, "freeze", why, now, change)
        if dry:
            approval = " (after approval)" if self._wants_approval(plan) else ""
            reason = f"dry-run: would have done{approval}: {change.summary}"
            return self._record(plan, ActionStatus.DRY_RUN, reason, "dry-run", now, change=change)
        if not approved and plan.mode is Mode.APPROVE:
            reason = f"awaiting approval: {change.summary}"
            return self._record(
                plan, ActionStatus.PENDING_APPROVAL, reason, "approval", now, change=change
            )
        reason = f"{plan.reason}: {change.summary}" if plan.reason else change.summary
        return self._record(plan, ActionStatus.RUNNING, reason, "", now, change=change)

    def _wants_approval(self, plan: Plan) -> bool:
        book = self.playbooks.get(plan.playbook)
        return book is not None and book.mode == "approve"
