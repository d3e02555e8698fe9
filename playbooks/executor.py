"""Running plans: guardrails → act → verify → revert/escalate, and recovery after a crash.

``PlaybookEngine`` is what the agent's playbook stage drives each tick:
``submit(plan)`` for new plans, ``run_approved``/``expire_approvals`` for the approval
queue, ``verify_due`` for rows whose ``verify_at`` came, and ``reconcile`` once at start
for rows a killed process left ``running``. It journals every step and returns the
``Notification``s for the caller to queue (the outbox delivers them).

Crash safety: before calling the cluster, the row (already ``running``, claimed by its
idempotency key) gets the state read just before (``before["observed"]``). A process
killed after that and before ``succeeded`` leaves a ``running`` row; ``reconcile``
compares the cluster with that snapshot and the intended change, marks the row
``succeeded`` (and schedules its verification) or ``failed`` — and never repeats the
action.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vigil.core import (
    ActionKind,
    ActionResult,
    ActionStatus,
    Finding,
    IncidentState,
    JournalEntry,
    Mode,
    Notification,
    ObjectRef,
    PermanentError,
    Plan,
    RetryableError,
    Severity,
    TransitionConflict,
    Verification,
    VigilError,
    idempotency_key,
)
from vigil.playbooks.approvals import plan_from_entry
from vigil.playbooks.guardrails import Decision, Guardrails
from vigil.playbooks.matching import match_findings, plan_for_step
from vigil.playbooks.recovery import change_landed
from vigil.playbooks.schema import Playbook
from vigil.playbooks.verification import evaluate, revert_call

if TYPE_CHECKING:
    from vigil.core import Cluster, MetricSource

__all__ = ["STALE_RUNNING", "Outcome", "PlaybookEngine"]

# Seconds after which a row still `running` cannot be an action in flight: an API call
# with the adapter's retries and Retry-After waits ends well within it.
STALE_RUNNING = 300.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one step led to: the decision, the final row and messages for people."""

    entry: JournalEntry | None
    decision: Decision | None = None
    notifications: tuple[Notification, ...] = ()
    follow_up: tuple[Outcome, ...] = field(default_factory=tuple)

    def all_notifications(self) -> list[Notification]:
        """This outcome's messages and those of every escalation it led to."""
        out = list(self.notifications)
        for nxt in self.follow_up:
            out.extend(nxt.all_notifications())
        return out


class PlaybookEngine:
    """Drives plans through guardrails, the cluster, verification and revert."""

    def __init__(
        self,
        guardrails: Guardrails,
        *,
        cluster: Cluster | None,
        metrics: MetricSource | None = None,
        playbooks: Sequence[Playbook] = (),
    ) -> None:
        self.guardrails = guardrails
        self.journal = guardrails.journal
        self.cluster = cluster
        self.metrics = metrics
        self.playbooks: Mapping[str, Playbook] = {b.name: b for b in playbooks}
        if not guardrails.playbooks:
            guardrails.playbooks = dict(self.playbooks)

    # -- messages ------------------------------------------------------------------------

    def _note(
        self,
        entry: JournalEntry,
        state: IncidentState,
        text: str,
        now: datetime,
        severity: Severity = Severity.WARNING,
    ) -> Notification:
        return Notification(
            incident_key=entry.finding_id,
            dedupe_key=f"{entry.finding_id}:{state}:{entry.id}",
            state=state,
            severity=severity,
            title=f"{entry.playbook}: {entry.action} {entry.target}",
            text=text,
            created_at=now,
            namespace=entry.target.namespace,
            fields={"action_id": entry.id, "playbook": entry.playbook, "status": str(entry.status)},
        )

    def _verify_at(self, entry: JournalEntry, now: datetime) -> datetime | None:
        book = self.playbooks.get(entry.playbook)
        if book is None or book.verify is None:
            return None
        within = book.verify.within or self.guardrails.settings.verify_after
        return now + timedelta(seconds=within)

    # -- new plans -------------------------------------------------------------------------

    def submit(
        self,
        plan: Plan,
        *,
        now: datetime,
        finding: Finding | None = None,
        approved: bool = False,
    ) -> Outcome:
        """Decide ``plan`` and, when allowed, act on it."""
        decision = self.guardrails.decide(
            plan, now=now, cluster=self.cluster, finding=finding, approved=approved
        )
        if decision.duplicate or decision.entry is None:
            return Outcome(decision.entry, decision)
        entry = decision.entry
        if decision.status is ActionStatus.PENDING_APPROVAL:
            text = f"{decision.reason}. Approve with `vigil approve {entry.id}`."
            note = self._note(entry, IncidentState.AWAITING_APPROVAL, text, now)
            return Outcome(entry, decision, (note,))
        if decision.status is ActionStatus.DRY_RUN:
            return Outcome(self._server_dry_run(decision, now), decision)
        if decision.status is ActionStatus.REFUSED:
            return Outcome(entry, decision)
        return self._execute(decision, now)

    def _server_dry_run(self, decision: Decision, now: datetime) -> JournalEntry | None:
        """Validate a dry-run plan on the server (RBAC, admission) without changing anything."""
        entry, change = decision.entry, decision.change
        if entry is None or change is None or change.call is None or self.cluster is None:
            return entry
        try:
            result = change.call(True)
        except VigilError as exc:
            return self.journal.journal_transition(
                entry.id,
                ActionStatus.DRY_RUN,
                at=now,
                message=f"server-side dry run failed: {exc}",
            )
        return self.journal.journal_transition(
            entry.id,
            ActionStatus.DRY_RUN,
            at=now,
            result=result,
            message="server-side dry run accepted",
        )

    def _execute(self, decision: Decision, now: datetime) -> Outcome:
        entry = decision.entry
        assert entry is not None
        plan = decision.plan
        if plan.action is ActionKind.NOTIFY:
            text = str(plan.params.get("text") or plan.params.get("title") or plan.reason)
            severity = Severity(plan.params.get("severity") or Severity.WARNING)
            state = IncidentState.ESCALATED if plan.step > 0 else IncidentState.DETECTED
            done = self.journal.journal_transition(
                entry.id,
                ActionStatus.SUCCEEDED,
                at=now,
                expect=[ActionStatus.RUNNING],
                message="people notified",
            )
            return Outcome(done, decision, (self._note(done, state, text, now, severity),))
        change = decision.change
        if change is None or change.call is None or self.cluster is None:
            failed = self.journal.journal_transition(
                entry.id,
                ActionStatus.FAILED,
                at=now,
                expect=[ActionStatus.RUNNING],
                message="no cluster to act on",
            )
            return Outcome(failed, decision)
        # Persist the before-state first: a crash after this point is reconcilable.
        claim = ActionResult(
            action=plan.action,
            target=plan.target,
            status=ActionStatus.RUNNING,
            started_at=now,
            finished_at=now,
            dry_run=False,
            message=change.summary,
            before={"observed": dict(change.snapshot)},
        )
        self.journal.journal_transition(
            entry.id,
            ActionStatus.RUNNING,
            at=now,
            expect=[ActionStatus.RUNNING],
            result=claim,
            message=change.summary,
        )
        try:
            result = change.call(False)
        except (RetryableError, PermanentError) as exc:
            failed = self.journal.journal_transition(
                entry.id,
                ActionStatus.FAILED,
                at=now,
                expect=[ActionStatus.RUNNING],
                message=f"{change.summary} failed: {exc}",
                result=claim,
            )
            text = f"{change.summary} failed: {exc}. A person should look."
            note = self._note(failed, IncidentState.ESCALATED, text, now, Severity.CRITICAL)
            return Outcome(failed, decision, (note,))
        merged = replace(result, before={**result.before, "observed": dict(change.snapshot)})
        status = (
            ActionStatus.FAILED if result.status is ActionStatus.FAILED else ActionStatus.SUCCEEDED
        )
        done = self.journal.journal_transition(
            entry.id,
            status,
            at=now,
            expect=[ActionStatus.RUNNING],
            result=merged,
            message=result.message or change.summary,
            verify_at=self._verify_at(entry, now) if status is ActionStatus.SUCCEEDED else None,
        )
        state = (
            IncidentState.ACTING if status is ActionStatus.SUCCEEDED else IncidentState.ESCALATED
        )
        return Outcome(done, decision, (self._note(done, state, change.summary, now),))

    # -- approvals -------------------------------------------------------------------------

    def run_approved(self, now: datetime) -> list[Outcome]:
        """Act on approved rows (guardrails are checked again: the state may have moved).

        The run is its own row (key derived from the approval's), created now, so budgets
        count it when it acts; the approval row stays ``approved`` as the record of consent.
        """
        window = timedelta(seconds=self.guardrails.settings.approval_timeout)
        out = []
        for entry in self.journal.journal_list(
            statuses=[ActionStatus.APPROVED], since=now - window, limit=1000
        ):
            plan = plan_from_entry(
                entry,
                mode=Mode.AUTO,
                created_at=now,
                reason=f"approved #{entry.id}: {entry.reason}",
                idempotency_key=idempotency_key(entry.idempotency_key, "approved"),
            )
            outcome = self.submit(plan, now=now, approved=True)
            if outcome.decision is not None and not outcome.decision.duplicate:
                out.append(outcome)
        return out

    def expire_approvals(self, now: datetime) -> list[JournalEntry]:
        """Deny pending approvals older than ``approval_timeout``: consent is for now, not later."""
        limit = timedelta(seconds=self.guardrails.settings.approval_timeout)
        expired = []
        for entry in self.journal.journal_list(
            statuses=[ActionStatus.PENDING_APPROVAL], until=now - limit, limit=1000
        ):
            try:
                expired.append(
                    self.journal.journal_transition(
                        entry.id,
                        ActionStatus.DENIED,
                        at=now,
                        expect=[ActionStatus.PENDING_APPROVAL],
                        message=f"approval expired after {limit.total_seconds() / 60:g} min",
                    )
                )
            except TransitionConflict:
                continue  # approved or denied by a person meanwhile
        return expired

    # -- verification ----------------------------------------------------------------------

    def verify_due(self, now: datetime) -> list[Outcome]:
        """Check every row whose ``verify_at`` came; revert and escalate what did not help."""
        return [
            self._verify(entry, now)
            for entry in self.journal.due_verifications(now)
            if entry.status is ActionStatus.SUCCEEDED
        ]

    def _verify(self, entry: JournalEntry, now: datetime) -> Outcome:
        book = self.playbooks.get(entry.playbook)
        if book is None or book.verify is None:
            self.journal.record_verification(
                Verification(entry.id, True, now, "nothing to verify", message="no verify")
            )
            return Outcome(entry)
        check = evaluate(book.verify, entry, cluster=self.cluster, metrics=self.metrics, now=now)
        self.journal.record_verification(
            Verification(
                entry.id,
                check.ok,
                now,
                check.condition,
                check.observed,
                message="verified" if check.ok else "verification failed",
            )
        )
        if check.ok:
            text = f"verified: {check.condition} ({check.observed})"
            return Outcome(
                entry, notifications=(self._note(entry, IncidentState.VERIFIED, text, now),)
            )
        why = f"the action succeeded but fixed nothing: {check.observed}"
        notes: list[Notification] = []
        final = self._revert(entry, why, now) if "revert" in book.on_failure else None
        if final is None:
            final = self.journal.journal_transition(
                entry.id,
                ActionStatus.FAILED,
                at=now,
                expect=[ActionStatus.SUCCEEDED],
                message=why,
            )
        state = (
            IncidentState.REVERTED
            if final.status is ActionStatus.REVERTED
            else IncidentState.ESCALATED
        )
        notes.append(self._note(final, state, final.message, now, Severity.CRITICAL))
        follow: list[Outcome] = []
        if "escalate" in book.on_failure and entry.step + 1 < len(book.steps):
            follow.append(self._escalate(book, entry, now))
        elif "escalate" in book.on_failure or "notify" in book.on_failure:
            text = f"{why}. No further step: a person should look."
            notes.append(self._note(final, IncidentState.ESCALATED, text, now, Severity.CRITICAL))
        return Outcome(final, notifications=tuple(notes), follow_up=tuple(follow))

    def _revert(self, entry: JournalEntry, why: str, now: datetime) -> JournalEntry | None:
        """Undo the agent's own change; ``None`` when it cannot be undone."""
        if self.cluster is None:
            return None
        how = revert_call(entry, self.cluster)
        if how is None:
            return None
        action, summary, call = how
        plan = Plan(
            finding_id=entry.finding_id,
            playbook=entry.playbook,
            step=entry.step,
            action=action,
            target=entry.target,
            params={"revert_of": entry.id},
            mode=Mode.AUTO,
            created_at=now,
            reason=f"revert #{entry.id}: {why}",
            idempotency_key=idempotency_key(entry.idempotency_key, "revert"),
        )
        row = self.journal.journal_plan(plan, ActionStatus.RUNNING, reason=plan.reason, at=now)
        if row is None:
            return None  # reverted before (e.g. by a previous attempt)
        try:
            result = call()
        except VigilError as exc:
            self.journal.journal_transition(
                row.id, ActionStatus.FAILED, at=now, message=f"{summary} failed: {exc}"
            )
            return self.journal.journal_transition(
                entry.id,
                ActionStatus.FAILED,
                at=now,
                expect=[ActionStatus.SUCCEEDED],
                message=f"{why}; the revert failed: {exc}",
            )
        self.journal.journal_transition(
            row.id, ActionStatus.SUCCEEDED, at=now, result=result, message=summary
        )
        return self.journal.journal_transition(
            entry.id,
            ActionStatus.REVERTED,
            at=now,
            expect=[ActionStatus.SUCCEEDED],
            message=f"{why}; reverted ({summary}, #{row.id})",
        )

    def _escalate(self, book: Playbook, entry: JournalEntry, now: datetime) -> Outcome:
        workload = None
        if self.cluster is not None and entry.target.kind == "Pod":
            named = entry.params.get("workload")
            workload = ObjectRef.parse(named) if isinstance(named, str) and named else None
        elif entry.target.kind in ("Deployment", "StatefulSet"):
            workload = entry.target
        try:
            plan = plan_for_step(
                book,
                entry.step + 1,
                finding_id=entry.finding_id,
                target=entry.target,
                workload=workload,
                now=now,
                dry_run=entry.mode is Mode.DRY_RUN,
                reason=f"escalation of #{entry.id}: step {entry.step + 1} did not help",
            )
        except ValueError as exc:
            note = self._note(entry, IncidentState.ESCALATED, f"cannot escalate: {exc}", now)
            return Outcome(entry, notifications=(note,))
        return self.submit(plan, now=now)

    # -- one tick ---------------------------------------------------------------------------

    def tick(
        self, findings: Sequence[Finding], now: datetime, *, max_age: float | None = None
    ) -> list[Outcome]:
        """What the agent's playbook stage runs each tick, in this order: settle rows left
        running for 5 min (a crash without restart), expire stale approvals, run approved
        rows, verify what is due, then match and submit findings."""
        settings = self.guardrails.settings
        out = self.reconcile(now, older_than=STALE_RUNNING)
        out += [Outcome(e) for e in self.expire_approvals(now)]
        out += self.run_approved(now)
        out += self.verify_due(now)
        by_id = {f.id: f for f in findings}
        for match in match_findings(
            findings,
            list(self.playbooks.values()),
            now=now,
            cluster=self.cluster,
            dry_run=settings.dry_run,
            max_age=settings.finding_max_age if max_age is None else max_age,
        ):
            if match.plan is None:
                log.info("finding %s: %s", match.finding.id, match.note)
                continue
            out.append(self.submit(match.plan, now=now, finding=by_id[match.finding.id]))
        return out

    # -- crash recovery ----------------------------------------------------------------------

    def reconcile(self, now: datetime, *, older_than: float = 0.0) -> list[Outcome]:
        """Settle rows a killed process left ``running``, from the cluster's state; never re-act.

        At start every such row is stale. Each tick, only rows untouched for
        ``older_than`` seconds are: a ``vigil act`` in another process may be mid-call.
        """
        out = []
        stale = now - timedelta(seconds=older_than)
        for entry in self.journal.journal_list(statuses=[ActionStatus.RUNNING], limit=1000):
            if entry.updated_at > stale:
                continue
            applied, seen = change_landed(entry, self.cluster)
            if applied:
                done = self.journal.journal_transition(
                    entry.id,
                    ActionStatus.SUCCEEDED,
                    at=now,
                    expect=[ActionStatus.RUNNING],
                    message=f"interrupted; reconciled after restart: {seen} (not repeated)",
                    verify_at=self._verify_at(entry, now),
                )
                out.append(
                    Outcome(
                        done,
                        notifications=(self._note(done, IncidentState.ACTING, done.message, now),),
                    )
                )
            else:
                done = self.journal.journal_transition(
                    entry.id,
                    ActionStatus.FAILED,
                    at=now,
                    expect=[ActionStatus.RUNNING],
                    message=f"interrupted; {seen}; not repeated",
                )
                out.append(
                    Outcome(
                        done,
                        notifications=(
                            self._note(
                                done, IncidentState.ESCALATED, done.message, now, Severity.CRITICAL
                            ),
                        ),
                    )
                )
        return out
