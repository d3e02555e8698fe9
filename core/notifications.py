"""Messages to people: ``Notification`` (one state of one incident) and ``Delivery``.

Built by the agent and playbooks, queued in the store's outbox, delivered by a
``Notifier`` (Slack, webhook, a local file in the demo).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core._validate import frozen_mapping, require_aware, require_text
from vigil.core.findings import Severity

__all__ = ["Delivery", "IncidentState", "Notification"]


class IncidentState(StrEnum):
    """Where an incident is; one message per incident is updated as it moves."""

    DETECTED = "detected"
    ACTING = "acting"
    AWAITING_APPROVAL = "awaiting-approval"
    VERIFIED = "verified"
    REVERTED = "reverted"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Notification:
    """One state of one incident. ``dedupe_key`` is unique per (incident, state, revision)."""

    incident_key: str
    dedupe_key: str
    state: IncidentState
    severity: Severity
    title: str
    text: str
    created_at: datetime
    namespace: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_text("incident_key", self.incident_key)
        require_text("dedupe_key", self.dedupe_key)
        require_text("title", self.title)
        require_aware("created_at", self.created_at)
        object.__setattr__(self, "state", IncidentState(self.state))
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "fields", frozen_mapping(self.fields))


@dataclass(frozen=True)
class Delivery:
    """A successful delivery: the channel and the channel's id of the message (to update it)."""

    channel: str
    message_ref: str = ""
