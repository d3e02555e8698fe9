"""What the agent decided and did: ``Plan``, ``ActionResult``, ``Verification``.

``vigil.playbooks`` turns findings into plans and decides guardrails; ``vigil.actions``
executes plans against a ``Cluster``; the agent journals every step in the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core._validate import frozen_mapping, require_aware, require_text
from vigil.core.objects import ObjectRef

__all__ = [
    "MUTATING_ACTIONS",
    "ActionKind",
    "ActionResult",
    "ActionStatus",
    "Mode",
    "Plan",
    "Verification",
    "idempotency_key",
]


class Mode(StrEnum):
    """How far a playbook may go: record only, ask a human, or act."""

    DRY_RUN = "dry-run"
    APPROVE = "approve"
    AUTO = "auto"


class ActionKind(StrEnum):
    """The action catalogue. Every action is typed; none is a shell string."""

    SCALE = "scale"
    ROLLOUT_RESTART = "rollout-restart"
    ROLLOUT_UNDO = "rollout-undo"
    DELETE_POD = "delete-pod"
    EVICT_POD = "evict-pod"
    CORDON = "cordon"
    UNCORDON = "uncordon"
    PATCH_HPA = "patch-hpa"
    PATCH_RESOURCES = "patch-resources"
    NOTIFY = "notify"


MUTATING_ACTIONS = frozenset(ActionKind) - {ActionKind.NOTIFY}


class ActionStatus(StrEnum):
    """Journal states. ``dry-run`` means "would have acted"; ``refused`` carries a reason."""

    DRY_RUN = "dry-run"
    REFUSED = "refused"
    PENDING_APPROVAL = "pending-approval"
    APPROVED = "approved"
    DENIED = "denied"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVERTED = "reverted"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = {
    ActionStatus.DRY_RUN,
    ActionStatus.REFUSED,
    ActionStatus.DENIED,
    ActionStatus.SUCCEEDED,
    ActionStatus.FAILED,
    ActionStatus.REVERTED,
}


def idempotency_key(*parts: object) -> str:
    """A key that is the same for the same intended action (finding, playbook, step, target)."""
    raw = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Plan:
    """One intended action: which playbook step, on what, with which parameters, in what mode."""

    finding_id: str
    playbook: str
    step: int
    action: ActionKind
    target: ObjectRef
    params: Mapping[str, Any]
    mode: Mode
    created_at: datetime
    reason: str = ""
    idempotency_key: str = ""

    def __post_init__(self) -> None:
        require_text("finding_id", self.finding_id)
        require_text("playbook", self.playbook)
        object.__setattr__(self, "action", ActionKind(self.action))
        object.__setattr__(self, "mode", Mode(self.mode))
        require_aware("created_at", self.created_at)
        if self.step < 0:
            raise ValueError(f"plan {self.playbook}: step must be >= 0, got {self.step}")
        object.__setattr__(self, "params", frozen_mapping(self.params))
        if not self.idempotency_key:
            key = idempotency_key(
                self.finding_id,
                self.playbook,
                self.step,
                self.action,
                self.target,
                sorted(self.params.items()),
            )
            object.__setattr__(self, "idempotency_key", key)

    @property
    def mutating(self) -> bool:
        return self.action in MUTATING_ACTIONS


@dataclass(frozen=True)
class ActionResult:
    """What executing (or simulating) one action did, with the state before and after."""

    action: ActionKind
    target: ObjectRef
    status: ActionStatus
    started_at: datetime
    finished_at: datetime
    dry_run: bool
    message: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", ActionKind(self.action))
        object.__setattr__(self, "status", ActionStatus(self.status))
        require_aware("started_at", self.started_at)
        require_aware("finished_at", self.finished_at)
        if self.finished_at < self.started_at:
            raise ValueError(f"{self.action} on {self.target}: finished before it started")
        object.__setattr__(self, "before", frozen_mapping(self.before))
        object.__setattr__(self, "after", frozen_mapping(self.after))


@dataclass(frozen=True)
class Verification:
    """Whether an action's ``verify`` condition held after ``verify_after``."""

    action_id: int
    ok: bool
    checked_at: datetime
    condition: str
    observed: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        require_aware("checked_at", self.checked_at)
        require_text("condition", self.condition)
