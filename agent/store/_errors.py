"""The store's errors, each a ``PermanentError`` or ``RetryableError`` (private module).

Raised by ``SqliteStore``; re-exported by ``vigil.agent.store``.
"""

from __future__ import annotations

from vigil.core.errors import PermanentError, RetryableError, TransitionConflict

__all__ = ["StoreBusy", "StoreError", "StoreReadOnly", "TransitionConflict"]


class StoreError(PermanentError):
    """The store file cannot be used as it is (missing, corrupt, from a newer vigil)."""


class StoreReadOnly(StoreError):
    """A write was attempted through a store opened with ``readonly=True``."""


class StoreBusy(RetryableError):
    """Another process held the write lock for longer than the busy timeout."""
