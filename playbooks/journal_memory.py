"""An in-memory ``ActionJournal``: the throwaway journal a backtest decides against.

The agent's real journal is the SQLite store (``vigil.agent.store``); this one keeps
rows in a list so ``backtest`` stays a pure function of its inputs. Its semantics are
the port's: unique idempotency keys, compare-and-set transitions, budgets counted by
``created_at``, and ``due_verifications`` returning succeeded rows whose ``verify_at``
has come and that have no verification yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from vigil.core import (
    ActionResult,
    ActionStatus,
    JournalEntry,
    NotFoundError,
    ObjectRef,
    PermanentError,
    Plan,
    Verification,
)

__all__ = ["JournalConflict", "MemoryJournal"]


class JournalConflict(PermanentError):
    """A compare-and-set transition found the row in another status."""


class MemoryJournal:
    """Rows in a list, ids from 1, as the store would number them."""

    def __init__(self) -> None:
        self._rows: list[JournalEntry] = []
        self._keys: dict[str, int] = {}
        self.verifications: list[Verification] = []

    def journal_plan(
        self, plan: Plan, status: ActionStatus, *, reason: str = "", at: datetime
    ) -> JournalEntry | None:
        if plan.idempotency_key in self._keys:
            return None
        entry = JournalEntry(
            id=len(self._rows) + 1,
            idempotency_key=plan.idempotency_key,
            finding_id=plan.finding_id,
            playbook=plan.playbook,
            step=plan.step,
            action=plan.action,
            target=plan.target,
            params=dict(plan.params),
            mode=plan.mode,
            status=ActionStatus(status),
            created_at=at,
            updated_at=at,
            reason=reason or plan.reason,
        )
        self._rows.append(entry)
        self._keys[plan.idempotency_key] = entry.id
        return entry

    def journal_get(self, action_id: int) -> JournalEntry:
        if not 1 <= action_id <= len(self._rows):
            raise NotFoundError(f"no action #{action_id} in the journal")
        return self._rows[action_id - 1]

    def journal_by_key(self, key: str) -> JournalEntry | None:
        found = self._keys.get(key)
        return None if found is None else self._rows[found - 1]

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
        entry = self.journal_get(action_id)
        if expect is not None and entry.status not in expect:
            raise JournalConflict(
                f"action #{action_id} is {entry.status}, expected one of "
                f"{', '.join(str(s) for s in expect)}"
            )
        changed = replace(
            entry,
            status=ActionStatus(status),
            updated_at=at,
            message=message or entry.message,
            before=dict(result.before) if result is not None else dict(entry.before),
            after=dict(result.after) if result is not None else dict(entry.after),
            verify_at=verify_at if verify_at is not None else entry.verify_at,
        )
        self._rows[action_id - 1] = changed
        return changed

    def journal_list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[ActionStatus] | None = None,
        namespace: str | None = None,
        playbook: str | None = None,
        limit: int = 100,
    ) -> list[JournalEntry]:
        rows = [
            r
            for r in self._rows
            if (since is None or r.created_at >= since)
            and (until is None or r.created_at <= until)
            and (statuses is None or r.status in statuses)
            and (namespace is None or r.target.namespace == namespace)
            and (playbook is None or r.playbook == playbook)
        ]
        return sorted(rows, key=lambda r: r.id, reverse=True)[:limit]

    def count_actions(
        self,
        *,
        since: datetime,
        statuses: Sequence[ActionStatus],
        namespace: str | None = None,
        playbook: str | None = None,
        target: ObjectRef | None = None,
    ) -> int:
        return sum(
            1
            for r in self._rows
            if r.created_at >= since
            and r.status in statuses
            and (namespace is None or r.target.namespace == namespace)
            and (playbook is None or r.playbook == playbook)
            and (target is None or r.target == target)
        )

    def last_action_at(
        self, *, playbook: str, target: ObjectRef, statuses: Sequence[ActionStatus]
    ) -> datetime | None:
        times = [
            r.created_at
            for r in self._rows
            if r.playbook == playbook and r.target == target and r.status in statuses
        ]
        return max(times, default=None)

    def due_verifications(self, now: datetime) -> list[JournalEntry]:
        done = {v.action_id for v in self.verifications}
        return [
            r
            for r in self._rows
            if r.status is ActionStatus.SUCCEEDED
            and r.verify_at is not None
            and r.verify_at <= now
            and r.id not in done
        ]

    def record_verification(self, verification: Verification) -> None:
        self.verifications.append(verification)

    def all_rows(self) -> list[JournalEntry]:
        """Every row in insertion order (the backtest report reads them)."""
        return list(self._rows)
