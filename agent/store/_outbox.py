"""The notification outbox: queued messages per channel, retries, dead letters (private).

The ``Outbox`` part of ``SqliteStore``. A message is queued in the same store as the
action it reports, then delivered by the notifier loop; ``UNIQUE(channel,
dedupe_key)`` makes a re-run tick queue nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vigil.agent.store._base import StoreBase
from vigil.agent.store._codec import dump_json, from_ts, load_json, to_ts
from vigil.core.errors import NotFoundError
from vigil.core.notifications import Delivery, Notification
from vigil.core.records import OutboxItem

__all__ = ["OutboxMixin"]


def _item(row: Mapping[str, Any]) -> OutboxItem:
    payload = load_json(row["payload"], {})
    notification = Notification(
        incident_key=row["incident_key"],
        dedupe_key=row["dedupe_key"],
        state=row["state"],
        severity=row["severity"],
        title=payload["title"],
        text=payload["text"],
        created_at=from_ts(row["created_at"]),
        namespace=row["namespace"],
        fields=payload.get("fields", {}),
    )
    return OutboxItem(
        id=row["id"],
        channel=row["channel"],
        notification=notification,
        attempts=row["attempts"],
        next_attempt_at=from_ts(row["next_attempt_at"]),
        message_ref=row["message_ref"] or "",
        last_error=row["last_error"] or "",
    )


def _require_channel(channel: str) -> None:
    if not isinstance(channel, str) or not channel.strip():
        raise ValueError(f"channel must be a non-empty name (e.g. 'slack'), got {channel!r}")


class OutboxMixin(StoreBase):
    def enqueue(self, channel: str, notification: Notification, *, at: datetime) -> bool:
        _require_channel(channel)
        when = to_ts(at, "at")
        payload = {
            "title": notification.title,
            "text": notification.text,
            "fields": dict(notification.fields),
        }
        row = {
            "channel": channel,
            "incident_key": notification.incident_key,
            "dedupe_key": notification.dedupe_key,
            "state": notification.state.value,
            "severity": notification.severity.value,
            "namespace": notification.namespace,
            "payload": dump_json(payload, f"notification {notification.dedupe_key}"),
            "created_at": to_ts(notification.created_at, "created_at"),
            "enqueued_at": when,
            "next_attempt_at": when,
        }
        columns = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        with self._write() as db:
            cur = db.execute(
                f"INSERT OR IGNORE INTO notifications ({columns}) VALUES ({values})",  # noqa: S608
                row,
            )
            return cur.rowcount == 1

    def due_messages(self, now: datetime, limit: int = 50) -> list[OutboxItem]:
        """Undelivered, live messages whose next attempt has come, in queue order."""
        with self._read():
            rows = self._rows(
                "SELECT * FROM notifications WHERE delivered_at IS NULL AND dead = 0 "
                "AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (to_ts(now, "now"), limit),
            )
        return [_item(r) for r in rows]

    def _update_item(self, item_id: int, sql: str, params: dict[str, Any]) -> None:
        with self._write() as db:
            cur = db.execute(sql, {**params, "id": item_id})
            if cur.rowcount == 0:
                raise NotFoundError(f"no outbox message {item_id} in store {self.path}")

    def mark_delivered(self, item_id: int, delivery: Delivery, *, at: datetime) -> None:
        self._update_item(
            item_id,
            "UPDATE notifications SET delivered_at = :at, message_ref = :ref, "
            "attempts = attempts + 1, last_error = '' WHERE id = :id",
            {"at": to_ts(at, "at"), "ref": delivery.message_ref},
        )

    def mark_failed(self, item_id: int, error: str, *, retry_at: datetime | None) -> None:
        """One failed attempt; ``retry_at=None`` gives up (the message becomes a dead letter)."""
        if retry_at is None:
            sql = (
                "UPDATE notifications SET attempts = attempts + 1, last_error = :error, "
                "dead = 1 WHERE id = :id"
            )
            params: dict[str, Any] = {"error": error}
        else:
            sql = (
                "UPDATE notifications SET attempts = attempts + 1, last_error = :error, "
                "next_attempt_at = :retry WHERE id = :id"
            )
            params = {"error": error, "retry": to_ts(retry_at, "retry_at")}
        self._update_item(item_id, sql, params)

    def message_ref(self, channel: str, incident_key: str) -> str | None:
        """The ref of the incident's first delivered message on ``channel`` (to edit it)."""
        with self._read():
            value = self._scalar(
                "SELECT message_ref FROM notifications WHERE channel = ? AND incident_key = ? "
                "AND delivered_at IS NOT NULL AND message_ref != '' "
                "ORDER BY delivered_at, id LIMIT 1",
                (channel, incident_key),
            )
        return None if value is None else str(value)

    def outbox_depth(self) -> int:
        """Messages still to deliver (dead letters excluded)."""
        with self._read():
            return int(
                self._scalar(
                    "SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND dead = 0"
                )
            )

    def dead_letters(self, limit: int = 50) -> list[OutboxItem]:
        """Messages given up on, newest first (for `vigil status`)."""
        with self._read():
            rows = self._rows(
                "SELECT * FROM notifications WHERE dead = 1 ORDER BY id DESC LIMIT ?", (limit,)
            )
        return [_item(r) for r in rows]
