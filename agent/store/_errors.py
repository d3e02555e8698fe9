"""The store's errors, each a ``PermanentError`` or ``RetryableError`` (private module).

Raised by ``SqliteStore``; re-exported by ``vigil.agent.store``.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigil.core.errors import PermanentError, RetryableError

__all__ = ["StoreBusy", "StoreError", "StoreReadOnly", "TransitionConflict"]


class StoreError(PermanentError):
    """The store file cannot be used as it is (missing, corrupt, from a newer vigil)."""


class StoreReadOnly(StoreError):
    """A write was attempted through a store opened with ``readonly=True``."""


class StoreBusy(RetryableError):
    """Another process held the write lock for longer than the busy timeout."""


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
