"""The action journal: plans, their status transitions and verifications (private).

The ``ActionJournal`` part of ``SqliteStore``. Guardrails read budgets and cooldowns
from here. A row's ``acted_at`` is the time it counts at in those queries: when it was
journaled, moved to the moment it ran when it waited for an approval first (so an
action approved hours later spends the budget of the hour it ran in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from vigil.agent.store._base import StoreBase
from vigil.agent.store._codec import dump_json, from_ts, load_json, opt_from_ts, to_ts
from vigil.agent.store._errors import TransitionConflict
from vigil.core.actions import ActionKind, ActionResult, ActionStatus, Mode, Plan, Verification
from vigil.core.errors import NotFoundError
from vigil.core.objects import ObjectRef
from vigil.core.records import JournalEntry

__all__ = ["JournalMixin"]

_WAITING = (ActionStatus.PENDING_APPROVAL.value, ActionStatus.APPROVED.value)
_EXECUTING = (ActionStatus.RUNNING.value, ActionStatus.SUCCEEDED.value, ActionStatus.FAILED.value)
_UNFINISHED = (*_WAITING, ActionStatus.RUNNING.value)


def _entry(row: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        finding_id=row["finding_id"],
        playbook=row["playbook"],
        step=row["step"],
        action=ActionKind(row["action"]),
        target=ObjectRef(row["target_kind"], row["target_namespace"], row["target_name"]),
        params=load_json(row["params"], {}),
        mode=Mode(row["mode"]),
        status=ActionStatus(row["status"]),
        created_at=from_ts(row["created_at"]),
        updated_at=from_ts(row["updated_at"]),
        reason=row["reason"] or "",
        before=load_json(row["before"], {}),
        after=load_json(row["after"], {}),
        message=row["message"] or "",
        verify_at=opt_from_ts(row["verify_at"]),
    )


def _statuses(statuses: Sequence[ActionStatus]) -> list[str]:
    if isinstance(statuses, str):
        # A bare "running" would otherwise be read as seven one-letter statuses.
        raise TypeError(f"statuses must be a list of ActionStatus, got the string {statuses!r}")
    return [ActionStatus(s).value for s in statuses]


def _in(column: str, values: Sequence[str], params: dict[str, Any], prefix: str) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return f"{column} IN ({', '.join(names)})" if names else "0"


def _target_clause(target: ObjectRef, params: dict[str, Any]) -> str:
    params.update(t_kind=target.kind, t_ns=target.namespace, t_name=target.name)
    # IS, not =, so a node's NULL namespace matches.
    return "target_kind = :t_kind AND target_namespace IS :t_ns AND target_name = :t_name"


class JournalMixin(StoreBase):
    def journal_plan(
        self, plan: Plan, status: ActionStatus, *, reason: str = "", at: datetime
    ) -> JournalEntry | None:
        when = to_ts(at, "at")
        row = {
            "idempotency_key": plan.idempotency_key,
            "finding_id": plan.finding_id,
            "playbook": plan.playbook,
            "step": plan.step,
            "action": plan.action.value,
            "target_kind": plan.target.kind,
            "target_namespace": plan.target.namespace,
            "target_name": plan.target.name,
            "params": dump_json(plan.params, f"plan {plan.playbook} params"),
            "mode": plan.mode.value,
            "status": ActionStatus(status).value,
            "reason": reason or plan.reason,
            "created_at": when,
            "updated_at": when,
            "acted_at": when,
        }
        columns = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        with self._write():
            # OR IGNORE on the unique idempotency key: a retried tick or a second
            # replica inserts nothing and learns so from the empty RETURNING.
            rows = self._rows(
                f"INSERT OR IGNORE INTO actions ({columns}) VALUES ({values}) RETURNING *",  # noqa: S608
                row,
            )
        return _entry(rows[0]) if rows else None

    def journal_get(self, action_id: int) -> JournalEntry:
        with self._read():
            rows = self._rows("SELECT * FROM actions WHERE id = ?", (action_id,))
        if not rows:
            raise NotFoundError(f"no action {action_id} in the journal of store {self.path}")
        return _entry(rows[0])

    def journal_by_key(self, key: str) -> JournalEntry | None:
        with self._read():
            rows = self._rows("SELECT * FROM actions WHERE idempotency_key = ?", (key,))
        return _entry(rows[0]) if rows else None

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
        """Move a row to ``status``; with ``expect``, only from one of those (one atomic
        ``UPDATE … WHERE status IN …``), else ``TransitionConflict`` names what it is."""
        wanted = ActionStatus(status).value
        params: dict[str, Any] = {
            "id": action_id,
            "status": wanted,
            "at": to_ts(at, "at"),
            "executing": json.dumps(_EXECUTING),
            "waiting": json.dumps(_WAITING),
        }
        sets = [
            "status = :status",
            "updated_at = :at",
            "acted_at = CASE WHEN :status IN (SELECT value FROM json_each(:executing)) "
            "AND status IN (SELECT value FROM json_each(:waiting)) "
            "THEN :at ELSE acted_at END",
        ]
        text = message or (result.message if result is not None else "")
        if text:
            sets.append("message = :message")
            params["message"] = text
        if result is not None:
            sets += ["before = :before", "after = :after"]
            params["before"] = dump_json(result.before, f"action {action_id} before")
            params["after"] = dump_json(result.after, f"action {action_id} after")
        if verify_at is not None:
            sets.append("verify_at = :verify_at")
            params["verify_at"] = to_ts(verify_at, "verify_at")
        where = "id = :id"
        expected = None if expect is None else _statuses(expect)
        if expected is not None:
            where += " AND " + _in("status", expected, params, "e")
        sql = f"UPDATE actions SET {', '.join(sets)} WHERE {where} RETURNING *"  # noqa: S608
        with self._write():
            rows = self._rows(sql, params)
            if not rows:
                current = self._scalar("SELECT status FROM actions WHERE id = ?", (action_id,))
                if current is None:
                    raise NotFoundError(
                        f"no action {action_id} in the journal of store {self.path}"
                    )
                raise TransitionConflict(action_id, current, expected or (), wanted)
        return _entry(rows[0])

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
        """Newest first by ``acted_at``; ``since`` inclusive, ``until`` exclusive."""
        params: dict[str, Any] = {"limit": limit}
        clauses = ["1"]
        if since is not None:
            clauses.append("acted_at >= :since")
            params["since"] = to_ts(since, "since")
        if until is not None:
            clauses.append("acted_at < :until")
            params["until"] = to_ts(until, "until")
        if statuses is not None:
            clauses.append(_in("status", _statuses(statuses), params, "s"))
        if namespace is not None:
            clauses.append("target_namespace = :namespace")
            params["namespace"] = namespace
        if playbook is not None:
            clauses.append("playbook = :playbook")
            params["playbook"] = playbook
        sql = (
            f"SELECT * FROM actions WHERE {' AND '.join(clauses)} "  # noqa: S608
            "ORDER BY acted_at DESC, id DESC LIMIT :limit"
        )
        with self._read():
            rows = self._rows(sql, params)
        return [_entry(r) for r in rows]

    def count_actions(
        self,
        *,
        since: datetime,
        statuses: Sequence[ActionStatus],
        namespace: str | None = None,
        playbook: str | None = None,
        target: ObjectRef | None = None,
    ) -> int:
        """Rows in ``statuses`` whose ``acted_at`` is at or after ``since``."""
        params: dict[str, Any] = {"since": to_ts(since, "since")}
        clauses = ["acted_at >= :since", _in("status", _statuses(statuses), params, "s")]
        if namespace is not None:
            clauses.append("target_namespace = :namespace")
            params["namespace"] = namespace
        if playbook is not None:
            clauses.append("playbook = :playbook")
            params["playbook"] = playbook
        if target is not None:
            clauses.append(_target_clause(target, params))
        sql = f"SELECT COUNT(*) FROM actions WHERE {' AND '.join(clauses)}"  # noqa: S608
        with self._read():
            return int(self._scalar(sql, params))

    def last_action_at(
        self, *, playbook: str, target: ObjectRef, statuses: Sequence[ActionStatus]
    ) -> datetime | None:
        params: dict[str, Any] = {"playbook": playbook}
        clauses = [
            "playbook = :playbook",
            _target_clause(target, params),
            _in("status", _statuses(statuses), params, "s"),
        ]
        sql = f"SELECT MAX(acted_at) FROM actions WHERE {' AND '.join(clauses)}"  # noqa: S608
        with self._read():
            value = self._scalar(sql, params)
        return opt_from_ts(value)

    def due_verifications(self, now: datetime) -> list[JournalEntry]:
        """Finished rows whose ``verify_at`` has come and that have no verification
        checked since then (a later ``verify_at`` makes a row due again)."""
        params = {"now": to_ts(now, "now"), "unfinished": json.dumps(_UNFINISHED)}
        sql = (
            "SELECT a.* FROM actions a WHERE a.verify_at IS NOT NULL AND a.verify_at <= :now "
            "AND a.status NOT IN (SELECT value FROM json_each(:unfinished)) "
            "AND NOT EXISTS (SELECT 1 FROM verifications v "
            "WHERE v.action_id = a.id AND v.checked_at >= a.verify_at) "
            "ORDER BY a.verify_at, a.id"
        )
        with self._read():
            rows = self._rows(sql, params)
        return [_entry(r) for r in rows]

    def record_verification(self, verification: Verification) -> None:
        row = {
            "action_id": verification.action_id,
            "ok": int(verification.ok),
            "checked_at": to_ts(verification.checked_at, "checked_at"),
            "condition": verification.condition,
            "observed": verification.observed,
            "message": verification.message,
        }
        with self._write() as db:
            if not self._scalar("SELECT 1 FROM actions WHERE id = ?", (verification.action_id,)):
                raise NotFoundError(
                    f"verification of action {verification.action_id}: no such action in the "
                    f"journal of store {self.path}"
                )
            db.execute(
                "INSERT INTO verifications (action_id, ok, checked_at, condition, observed, "
                "message) VALUES (:action_id, :ok, :checked_at, :condition, :observed, :message)",
                row,
            )

    def verifications_for(self, action_id: int) -> list[Verification]:
        """Every verification of one action, oldest first (for `vigil status` and nlq)."""
        with self._read():
            rows = self._rows(
                "SELECT * FROM verifications WHERE action_id = ? ORDER BY checked_at, id",
                (action_id,),
            )
        return [
            Verification(
                action_id=r["action_id"],
                ok=bool(r["ok"]),
                checked_at=from_ts(r["checked_at"]),
                condition=r["condition"],
                observed=r["observed"] or "",
                message=r["message"] or "",
            )
            for r in rows
        ]
