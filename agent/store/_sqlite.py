"""``SqliteStore``: the ``Store`` port on one SQLite file (private; import from the package).

Built by the agent's composition root (``SqliteStore.open(settings.path)`` for the
daemon and ``vigil demo``, ``readonly=True`` for CLI readers such as ``vigil status``
and ``vigil ask``). Retention (``prune``) and ``stats`` live here; each part of the
port lives in its own mixin module.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vigil.agent.store._codec import to_ts
from vigil.agent.store._journal import JournalMixin
from vigil.agent.store._migrations import SCHEMA_VERSION, schema_version
from vigil.agent.store._observations import ObservationsMixin
from vigil.agent.store._outbox import OutboxMixin
from vigil.agent.store._shadow import ShadowMixin
from vigil.core.actions import ActionStatus
from vigil.core.errors import QueryError

if TYPE_CHECKING:
    from vigil.core.ports import Store

__all__ = ["TABLES", "SqliteStore"]

TABLES = (
    "ticks",
    "findings",
    "forecasts",
    "actions",
    "verifications",
    "notifications",
    "feedback",
    "shadow_anomalies",
)

_FINAL = json.dumps([s.value for s in ActionStatus if s.final])
_UNFINISHED = json.dumps([s.value for s in ActionStatus if not s.final])

# Each statement deletes one kind of old row; order matters (verifications go with
# their actions). What they never delete: pending approvals, approved or running
# actions, messages still to deliver, open findings, findings an unfinished action
# refers to, and feedback (small, and what detectors calibrate on).
_PRUNE = (
    (
        "ticks",
        "DELETE FROM ticks WHERE COALESCE(ended_at, started_at) < :cutoff",
    ),
    (
        "findings",
        "DELETE FROM findings WHERE resolved_at IS NOT NULL AND resolved_at < :cutoff "
        "AND id NOT IN (SELECT finding_id FROM actions "
        "WHERE status IN (SELECT value FROM json_each(:unfinished)))",
    ),
    ("forecasts", "DELETE FROM forecasts WHERE made_at < :cutoff"),
    ("shadow_anomalies", "DELETE FROM shadow_anomalies WHERE seen_at < :cutoff"),
    (
        "verifications",
        "DELETE FROM verifications WHERE action_id IN (SELECT id FROM actions "
        "WHERE status IN (SELECT value FROM json_each(:final)) AND updated_at < :cutoff "
        "AND (verify_at IS NULL OR verify_at < :cutoff))",
    ),
    (
        "actions",
        "DELETE FROM actions WHERE status IN (SELECT value FROM json_each(:final)) "
        "AND updated_at < :cutoff "
        "AND (verify_at IS NULL OR verify_at < :cutoff)",
    ),
    (
        "notifications",
        "DELETE FROM notifications WHERE (delivered_at IS NOT NULL AND delivered_at < :cutoff) "
        "OR (dead = 1 AND enqueued_at < :cutoff)",
    ),
)


class SqliteStore(ObservationsMixin, JournalMixin, OutboxMixin, ShadowMixin):
    """Everything the agent keeps, in one SQLite file in WAL mode.

    ``SqliteStore.open(path)`` creates the file (and its parent directories) and
    migrates it; ``readonly=True`` opens an existing store for reading only, while the
    daemon writes. Times go in and come out as timezone-aware UTC datetimes.
    """

    def run_sql(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        """Rows of one read-only statement with ``?`` parameters (``vigil.nlq``'s reader).

        An SQLite authorizer allows only reads and functions, so a statement that would
        write, attach or change a pragma is refused by SQLite itself, whatever its text.
        """
        allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}

        def authorize(action: int, *_: object) -> int:
            return sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY

        with self._read():
            self._conn.set_authorizer(authorize)
            try:
                return list(self._rows(sql, tuple(params)))
            except sqlite3.Error as exc:
                raise QueryError(f"store query refused or failed: {exc}", query=sql) from exc
            finally:
                self._conn.set_authorizer(None)

    def prune(self, older_than: datetime) -> Mapping[str, int]:
        """Delete finished history older than ``older_than``; rows deleted per table."""
        params = {
            "cutoff": to_ts(older_than, "older_than"),
            "final": _FINAL,
            "unfinished": _UNFINISHED,
        }
        counts: dict[str, int] = {}
        with self._write() as db:
            for table, sql in _PRUNE:
                used = {k: v for k, v in params.items() if f":{k}" in sql}
                counts[table] = db.execute(sql, used).rowcount
        with self._lock, self._guard():
            # Refresh the planner's statistics now and then (cheap; only where stale), so
            # the guardrail queries pick the narrowest index as the journal grows.
            self._conn.execute("PRAGMA optimize")
        return counts

    def stats(self) -> Mapping[str, Any]:
        """Row counts per table, schema version and file sizes (bytes, with the WAL)."""
        with self._read():
            counts = {t: int(self._scalar(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}  # noqa: S608
            version = schema_version(self._conn)
            open_findings = int(
                self._scalar("SELECT COUNT(*) FROM findings WHERE resolved_at IS NULL")
            )
            pending = int(
                self._scalar(
                    "SELECT COUNT(*) FROM actions WHERE status = ?",
                    (ActionStatus.PENDING_APPROVAL.value,),
                )
            )
            outbox = int(
                self._scalar(
                    "SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND dead = 0"
                )
            )
        wal = self.path.with_name(self.path.name + "-wal")
        size = self.path.stat().st_size if self.path.exists() else 0
        wal_size = wal.stat().st_size if wal.exists() else 0
        return {
            "path": str(self.path),
            "schema_version": version,
            "schema_version_supported": SCHEMA_VERSION,
            "readonly": self.readonly,
            "tables": counts,
            "open_findings": open_findings,
            "pending_approvals": pending,
            "outbox_depth": outbox,
            "file_bytes": size,
            "wal_bytes": wal_size,
            "size_bytes": size + wal_size,
        }


if TYPE_CHECKING:

    def _implements_store(store: SqliteStore) -> Store:
        """mypy checks here that ``SqliteStore`` satisfies the ``Store`` port exactly."""
        return store
