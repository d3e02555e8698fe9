"""The SQLite store: the ``vigil.core.ports.Store`` port on one file in WAL mode.

The agent opens it at start (``SqliteStore.open(path)``) and passes it down; CLI
readers open it with ``readonly=True`` while the daemon writes. Schema, concurrency
and retention are described in docs/store.md.
"""

from vigil.agent.store._errors import StoreBusy, StoreError, StoreReadOnly, TransitionConflict
from vigil.agent.store._migrations import SCHEMA_VERSION
from vigil.agent.store._shadow import FeedbackRow, ShadowRow
from vigil.agent.store._sqlite import TABLES, SqliteStore

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "FeedbackRow",
    "ShadowRow",
    "SqliteStore",
    "StoreBusy",
    "StoreError",
    "StoreReadOnly",
    "TransitionConflict",
]
