"""Versioned schema migrations for the store (private; called by ``SqliteStore`` on open).

``MIGRATIONS`` is an ordered list of functions; migration *n* (1-based) brings a
file from schema version *n - 1* to *n*, and ``schema_migrations`` records each one
applied. Never edit a released migration: append a new one. Migrations run inside
the caller's ``BEGIN IMMEDIATE`` transaction, so two processes opening one new file
at once apply them exactly once and a failed migration leaves the file untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from vigil.agent.store._codec import to_ts
from vigil.agent.store._errors import StoreError

if TYPE_CHECKING:
    import sqlite3

    import sqlite_utils

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "apply_migrations", "schema_version"]

Migration = Callable[["sqlite_utils.Database"], None]


def _initial_schema(db: sqlite_utils.Database) -> None:
    """Version 1: ticks, findings, forecasts, the action journal, verifications,
    the notification outbox and feedback."""
    db.table("ticks").create(
        {"id": int, "started_at": str, "ended_at": str, "durations": str, "errors": str},
        pk="id",
        not_null={"started_at", "durations", "errors"},
        defaults={"durations": "{}", "errors": "[]"},
    )
    db.table("ticks").create_index(["started_at"])

    db.table("findings").create(
        {
            "id": str,
            "kind": str,
            "subject": str,
            "title": str,
            "severity": str,
            "labels": str,
            "target_kind": str,
            "target_namespace": str,
            "target_name": str,
            "observed_at": str,
            "started_at": str,
            "resolved_at": str,
            "anomaly": str,  # JSON, with detector name and version
            "forecast": str,  # JSON summary (model, peak, horizon) plus the arrays
            "details": str,
            "series": str,
        },
        pk="id",
        not_null={"kind", "subject", "title", "severity", "labels", "observed_at", "started_at"},
        defaults={"labels": "{}", "details": "{}"},
    )
    db.table("findings").create_index(["started_at"])
    db.table("findings").create_index(["series"])
    # `vigil status` and every tick ask for the open findings, newest first.
    db.execute("CREATE INDEX idx_findings_open ON findings(observed_at) WHERE resolved_at IS NULL")

    db.table("forecasts").create(
        {
            "id": int,
            "series": str,
            "metric": str,
            "labels": str,
            "model": str,
            "model_version": str,
            "unit": str,
            "made_at": str,
            "timestamps": str,
            "mean": str,
            "quantiles": str,
        },
        pk="id",
        not_null={"series", "metric", "model", "model_version", "made_at"},
    )
    db.table("forecasts").create_index(["series", "made_at"])
    db.table("forecasts").create_index(["made_at"])

    db.table("actions").create(
        {
            "id": int,
            "idempotency_key": str,
            "finding_id": str,
            "playbook": str,
            "step": int,
            "action": str,
            "target_kind": str,
            "target_namespace": str,
            "target_name": str,
            "params": str,
            "mode": str,
            "status": str,
            "reason": str,
            "before": str,
            "after": str,
            "message": str,
            "created_at": str,
            "updated_at": str,
            # When the action counts against budgets and cooldowns: the journaling
            # time, moved to the execution time when an approved action starts.
            "acted_at": str,
            "verify_at": str,
        },
        pk="id",
        not_null={
            "idempotency_key",
            "finding_id",
            "playbook",
            "step",
            "action",
            "target_kind",
            "target_name",
            "mode",
            "status",
            "created_at",
            "updated_at",
            "acted_at",
        },
        defaults={"params": "{}", "before": "{}", "after": "{}", "reason": "", "message": ""},
    )
    actions = db.table("actions")
    actions.create_index(["idempotency_key"], unique=True)
    # The guardrail queries: budgets by time, per namespace, per playbook; cooldowns
    # per playbook and target.
    actions.create_index(["acted_at"])
    actions.create_index(["target_namespace", "acted_at"])
    actions.create_index(["playbook", "acted_at"])
    actions.create_index(["playbook", "target_kind", "target_namespace", "target_name", "acted_at"])
    actions.create_index(["target_kind", "target_namespace", "target_name", "acted_at"])
    actions.create_index(["status", "acted_at"])
    actions.create_index(["finding_id"])
    db.execute("CREATE INDEX idx_actions_verify ON actions(verify_at) WHERE verify_at IS NOT NULL")

    db.table("verifications").create(
        {
            "id": int,
            "action_id": int,
            "ok": int,
            "checked_at": str,
            "condition": str,
            "observed": str,
            "message": str,
        },
        pk="id",
        not_null={"action_id", "ok", "checked_at", "condition"},
        foreign_keys=[("action_id", "actions", "id")],
        defaults={"observed": "", "message": ""},
    )
    db.table("verifications").create_index(["action_id", "checked_at"])

    db.table("notifications").create(
        {
            "id": int,
            "channel": str,
            "incident_key": str,
            "dedupe_key": str,
            "state": str,
            "severity": str,
            "namespace": str,
            "payload": str,
            "created_at": str,
            "enqueued_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "delivered_at": str,
            "message_ref": str,
            "last_error": str,
            "dead": int,
        },
        pk="id",
        not_null={
            "channel",
            "incident_key",
            "dedupe_key",
            "payload",
            "enqueued_at",
            "attempts",
            "next_attempt_at",
            "dead",
        },
        defaults={"attempts": 0, "dead": 0, "message_ref": "", "last_error": ""},
    )
    notes = db.table("notifications")
    notes.create_index(["channel", "dedupe_key"], unique=True)
    notes.create_index(["channel", "incident_key", "delivered_at"])
    # Only the messages still to deliver, in queue order: the notifier's every poll.
    db.execute(
        "CREATE INDEX idx_notifications_pending ON notifications(id) "
        "WHERE delivered_at IS NULL AND dead = 0"
    )

    db.table("feedback").create(
        {"id": int, "finding_id": str, "series": str, "label": str, "at": str},
        pk="id",
        not_null={"finding_id", "series", "label", "at"},
    )
    db.table("feedback").create_index(["series", "at"])


def _shadow_anomalies(db: sqlite_utils.Database) -> None:
    """Version 2: the anomalies of the active detector configuration (champion) and of
    the candidate run in shadow beside it (challenger), one row per incident, for
    ``vigil shadow report``."""
    db.table("shadow_anomalies").create(
        {
            "id": int,
            "role": str,  # champion | challenger
            "config": str,  # fingerprint of the detector settings that produced it
            "detector": str,
            "detector_version": str,
            "series": str,
            "started_at": str,
            "ended_at": str,
            "score": float,
            "severity": str,
            "finding_id": str,  # the champion's finding, when it opened one
            "anomaly": str,  # JSON, as in findings.anomaly
            "seen_at": str,  # the tick that last reported it
        },
        pk="id",
        not_null={
            "role",
            "config",
            "detector",
            "detector_version",
            "series",
            "started_at",
            "ended_at",
            "seen_at",
        },
    )
    table = db.table("shadow_anomalies")
    # An incident re-reported on later ticks updates its row (same run, series and start).
    table.create_index(["role", "config", "series", "started_at"], unique=True)
    table.create_index(["seen_at"])
    db.table("feedback").create_index(["finding_id"])


MIGRATIONS: list[Migration] = [_initial_schema, _shadow_anomalies]
SCHEMA_VERSION = len(MIGRATIONS)


def _table_names(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return [str(r[0]) for r in rows]


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version: 0 for an empty file."""
    if "schema_migrations" not in _table_names(conn):
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def apply_migrations(conn: sqlite3.Connection, *, path: str, now: datetime) -> list[int]:
    """Bring the file up to ``SCHEMA_VERSION``; returns the versions applied.

    The caller holds the write lock (``BEGIN IMMEDIATE``). Refuses a file written by a
    newer vigil: its tables may mean things this version does not know.
    """
    # sqlite-utils is imported here, not at module level: it imports pandas when that
    # is installed (~0.5 s), and CLI readers of an up-to-date store never migrate.
    import sqlite_utils

    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    names = _table_names(conn)
    if "schema_migrations" not in names:
        tables = [t for t in names if not t.startswith("sqlite_")]
        if tables:
            raise StoreError(
                f"{path} is an SQLite file but not a vigil store (it has tables "
                f"{', '.join(sorted(tables))} and no schema_migrations); point "
                "store.path at a new file"
            )
        db.table("schema_migrations").create(
            {"version": int, "name": str, "applied_at": str},
            pk="version",
            not_null={"name", "applied_at"},
        )
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema version {current}, newer than the {SCHEMA_VERSION} "
            "this vigil knows: it was written by a newer vigil; upgrade vigil or point "
            "store.path at another file"
        )
    applied = []
    for version in range(current + 1, SCHEMA_VERSION + 1):
        migration = MIGRATIONS[version - 1]
        migration(db)
        db.table("schema_migrations").insert(
            {"version": version, "name": migration.__name__.lstrip("_"), "applied_at": to_ts(now)}
        )
        applied.append(version)
    return applied
