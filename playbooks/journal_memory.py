"""An in-memory ``ActionJournal``: the throwaway journal a backtest decides against.

The agent's real journal is the SQLite store (``vigil.agent.store``); this one keeps
rows in a list so ``backtest`` stays a pure function of its inputs. Its semantics are
the SQLite store's: unique idempotency keys, compare-and-set transitions, times counted
at ``acted_at`` (when a row was journalled, moved to when it ran if it waited for an
approval first), ``until`` exclusive, and ``due_verifications`` returning finished rows
whose ``verify_at`` has come with no verification checked since.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from vigil.core import (
    ActionResult,
    ActionStatus,
    JournalEntry,
    NotFoundError,
    ObjectRef,
    Plan,
    TransitionConflict,
    Verification,
)

__all__ = ["MemoryJournal"]

_WAITING = (ActionStatus.PENDING_APPROVAL, ActionStatus.APPROVED)
_EXECUTING = (ActionStatus.RUNNING, ActionStatus.SUCCEEDED, ActionStatus.FAILED)
_UNFINISHED = (*_WAITING, ActionStatus.RUNNING)


class MemoryJournal:
    """Rows in a list, ids from 1, as the store would number them.

    Indexed by ``acted_at`` (a sorted list) and by (playbook, target), so a backtest of
    many findings costs O(rows in the window) per decision, not O(all rows).
    """

    def __init__(self) -> None:
        self._rows: list[JournalEntry] = []
        self._keys: dict[str, int] = {}
        self._acted: dict[int, datetime] = {}
        self._by_time: list[tuple[datetime, int]] = []
        self._by_target: dict[tuple[str, ObjectRef], list[int]] = {}
        self.verifications: list[Verification] = []

    def _set_acted(self, action_id: int, at: datetime) -> None:
        old = self._acted.get(action_id)
        if old is not None:
            self._by_time.pop(bisect.bisect_left(self._by_time, (old, action_id)))
        self._acted[action_id] = at
        bisect.insort(self._by_time, (at, action_id))

    def _window(self, since: datetime | None, until: datetime | None = None) -> list[JournalEntry]:
        lo = 0 if since is None else bisect.bisect_left(self._by_time, (since, 0))
        hi = len(self._by_time) if until is None else bisect.bisect_left(self._by_time, (until, 0))
        return [self._rows[i - 1] for _, i in self._by_time[lo:hi]]

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
        self._set_acted(entry.id, at)
        self._by_target.setdefault((plan.playbook, plan.target), []).append(entry.id)
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
            raise TransitionConflict(
                action_id, entry.status.value, [ActionStatus(s).value for s in expect], str(status)
            )
        if entry.status in _WAITING and ActionStatus(status) in _EXECUTING:
            self._set_acted(action_id, at)
        changed = replace(
            entry,
            status=ActionStatus(status),
            updated_at=at,
            message=message or (result.message if result is not None else "") or entry.message,
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
            for r in self._window(since, until)
            if (statuses is None or r.status in statuses)
            and (namespace is None or r.target.namespace == namespace)
            and (playbook is None or r.playbook == playbook)
        ]
        return sorted(rows, key=lambda r: (self._acted[r.id], r.id), reverse=True)[:limit]

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
            for r in self._window(since)
            if r.status in statuses
            and (namespace is None or r.target.namespace == namespace)
            and (playbook is None or r.playbook == playbook)
            and (target is None or r.target == target)
        )

    def last_action_at(
        self, *, playbook: str, target: ObjectRef, statuses: Sequence[ActionStatus]
    ) -> datetime | None:
        ids = self._by_target.get((playbook, target), [])
        times = [self._acted[i] for i in ids if self._rows[i - 1].status in statuses]
        return max(times, default=None)

    def due_verifications(self, now: datetime) -> list[JournalEntry]:
        return [
            r
            for r in sorted(self._rows, key=lambda r: (r.verify_at or now, r.id))
            if r.verify_at is not None
            and r.verify_at <= now
            and r.status not in _UNFINISHED
            and not any(
                v.action_id == r.id and v.checked_at >= r.verify_at for v in self.verifications
            )
        ]

    def record_verification(self, verification: Verification) -> None:
        self.verifications.append(verification)

    def all_rows(self) -> list[JournalEntry]:
        """Every row in insertion order (the backtest report reads them)."""
        return list(self._rows)
