"""Rows the ``Store`` port returns: ticks, journal entries, outbox items, feedback.

Plain frozen values; the SQLite schema behind them lives in ``vigil.agent.store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core._validate import frozen_mapping
from vigil.core.actions import ActionKind, ActionStatus, Mode
from vigil.core.notifications import Notification
from vigil.core.objects import ObjectRef

__all__ = ["FeedbackLabel", "JournalEntry", "OutboxItem", "TickRecord"]


@dataclass(frozen=True)
class TickRecord:
    """One run of the loop: when, how long each stage took (seconds), what failed."""

    id: int
    started_at: datetime
    ended_at: datetime | None
    durations: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    ok: bool | None = None


@dataclass(frozen=True)
class JournalEntry:
    """One row of the action journal (one intended action and everything that befell it)."""

    id: int
    idempotency_key: str
    finding_id: str
    playbook: str
    step: int
    action: ActionKind
    target: ObjectRef
    params: Mapping[str, Any]
    mode: Mode
    status: ActionStatus
    created_at: datetime
    updated_at: datetime
    reason: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    verify_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", frozen_mapping(self.params))
        object.__setattr__(self, "before", frozen_mapping(self.before))
        object.__setattr__(self, "after", frozen_mapping(self.after))

    @property
    def namespace(self) -> str | None:
        return self.target.namespace


@dataclass(frozen=True)
class OutboxItem:
    """A queued notification for one channel, with its delivery attempts so far."""

    id: int
    channel: str
    notification: Notification
    attempts: int
    next_attempt_at: datetime
    message_ref: str = ""
    last_error: str = ""


class FeedbackLabel(StrEnum):
    TRUE_POSITIVE = "true-positive"
    FALSE_POSITIVE = "false-positive"
