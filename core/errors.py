"""The error tree: one root, and the type (never the message) decides what happens next.

Adapters wrap library errors with ``raise ... from exc``; nothing above the adapters
catches library exceptions. The scheduler retries a ``RetryableError`` after its
``delay`` and records a ``PermanentError`` without retrying it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "NotFoundError",
    "PermanentError",
    "QueryError",
    "RetryableError",
    "SourceUnavailable",
    "TransitionConflict",
    "VigilError",
    "WarmingUp",
]


class VigilError(Exception):
    """Root of every error vigil raises on purpose."""


class RetryableError(VigilError):
    """Transient: the same call may succeed later. ``delay`` is the suggested wait in seconds."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        self.delay = float(delay)


class PermanentError(VigilError):
    """The same call will fail again until a person changes something (config, query, RBAC)."""


class ConfigError(PermanentError):
    """Configuration that cannot be used; the message names the key and what is allowed."""

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class SourceUnavailable(RetryableError):
    """A metric source (Prometheus) or API server could not be reached or answered 5xx."""


class QueryError(PermanentError):
    """A query was rejected (bad PromQL, 4xx); the message quotes the query and the reason."""

    def __init__(self, message: str, *, query: str = "") -> None:
        super().__init__(message)
        self.query = query


class NotFoundError(PermanentError):
    """A named object (workload, finding, action, playbook) does not exist."""


class WarmingUp(VigilError):
    """Too little data to decide yet: ``have`` of ``need`` points."""

    def __init__(self, subject: str, *, have: int, need: int) -> None:
        super().__init__(f"{subject}: warming up, {have} of {need} points")
        self.subject = subject
        self.have = have
        self.need = need


class TransitionConflict(PermanentError):
    """A compare-and-set on the action journal found the row in another status."""

    def __init__(self, action_id: int, current: str, expected: Sequence[str], wanted: str) -> None:
        exp = ", ".join(expected) or "(none)"
        super().__init__(
            f"action {action_id}: cannot move to {wanted}: it is {current}, "
            f"expected one of {exp} (another process or person changed it first)"
        )
        self.action_id = action_id
        self.current = current
        self.expected = tuple(expected)
        self.wanted = wanted
