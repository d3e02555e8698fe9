"""Approvals: ``vigil approve ID`` / ``vigil deny ID`` on pending rows of the journal.

An approved row is run by ``PlaybookEngine.run_approved`` on the next tick (through the
guardrails again); ``plan_from_entry`` rebuilds the plan a row records.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vigil.core import ActionStatus, JournalEntry, PermanentError, Plan

if TYPE_CHECKING:
    from vigil.core import ActionJournal

__all__ = ["approve", "deny", "plan_from_entry"]


def plan_from_entry(entry: JournalEntry, **changes: Any) -> Plan:
    """The plan a journal row records (optionally changed), e.g. to run it once approved."""
    plan = Plan(
        finding_id=entry.finding_id,
        playbook=entry.playbook,
        step=entry.step,
        action=entry.action,
        target=entry.target,
        params=dict(entry.params),
        mode=entry.mode,
        created_at=entry.created_at,
        reason=entry.reason,
        idempotency_key=entry.idempotency_key,
    )
    return replace(plan, **changes) if changes else plan


def _answer(
    journal: ActionJournal, action_id: int, status: ActionStatus, *, at: datetime, message: str
) -> JournalEntry:
    entry = journal.journal_get(action_id)
    if entry.status is not ActionStatus.PENDING_APPROVAL:
        verb = "approve" if status is ActionStatus.APPROVED else "deny"
        raise PermanentError(
            f"action #{action_id} is {entry.status}, not pending-approval; nothing to {verb}"
        )
    return journal.journal_transition(
        action_id, status, at=at, expect=[ActionStatus.PENDING_APPROVAL], message=message
    )


def approve(journal: ActionJournal, action_id: int, *, at: datetime, by: str = "") -> JournalEntry:
    """``vigil approve ID``: a pending row becomes approved; the engine runs it next tick
    (through the guardrails again)."""
    who = f" by {by}" if by else ""
    return _answer(journal, action_id, ActionStatus.APPROVED, at=at, message=f"approved{who}")


def deny(
    journal: ActionJournal, action_id: int, *, at: datetime, by: str = "", reason: str = ""
) -> JournalEntry:
    """``vigil deny ID``: a pending row is denied and never acts."""
    who = f" by {by}" if by else ""
    why = f": {reason}" if reason else ""
    return _answer(journal, action_id, ActionStatus.DENIED, at=at, message=f"denied{who}{why}")
