"""vigil's shared language: domain values, the error tree and the ports.

Every other package imports from here and from nowhere else of ours. This package
imports no other vigil package (import-linter checks it).
"""

from vigil.core.actions import (
    MUTATING_ACTIONS,
    ActionKind,
    ActionResult,
    ActionStatus,
    Mode,
    Plan,
    Verification,
    idempotency_key,
)
from vigil.core.clock import Clock, ManualClock, SystemClock
from vigil.core.errors import (
    ConfigError,
    NotFoundError,
    PermanentError,
    QueryError,
    RetryableError,
    SourceUnavailable,
    TransitionConflict,
    VigilError,
    WarmingUp,
)
from vigil.core.findings import (
    Anomaly,
    Finding,
    FindingKind,
    Forecast,
    Severity,
    finding_id,
    format_quantity,
)
from vigil.core.notifications import Delivery, IncidentState, Notification
from vigil.core.objects import ContainerInfo, HpaInfo, NodeInfo, ObjectRef, PodInfo, WorkloadInfo
from vigil.core.ports import (
    ActionJournal,
    Cluster,
    FeedbackStore,
    FindingStore,
    ForecastStore,
    MetricSource,
    Notifier,
    Outbox,
    Store,
    TickLog,
)
from vigil.core.records import FeedbackLabel, JournalEntry, OutboxItem, TickRecord
from vigil.core.series import Sample, Series, series_id, to_datetime, to_timestamp

__all__ = [
    "MUTATING_ACTIONS",
    "ActionJournal",
    "ActionKind",
    "ActionResult",
    "ActionStatus",
    "Anomaly",
    "Clock",
    "Cluster",
    "ConfigError",
    "ContainerInfo",
    "Delivery",
    "FeedbackLabel",
    "FeedbackStore",
    "Finding",
    "FindingKind",
    "FindingStore",
    "Forecast",
    "ForecastStore",
    "HpaInfo",
    "IncidentState",
    "JournalEntry",
    "ManualClock",
    "MetricSource",
    "Mode",
    "NodeInfo",
    "NotFoundError",
    "Notification",
    "Notifier",
    "ObjectRef",
    "Outbox",
    "OutboxItem",
    "PermanentError",
    "Plan",
    "PodInfo",
    "QueryError",
    "RetryableError",
    "Sample",
    "Series",
    "Severity",
    "SourceUnavailable",
    "Store",
    "SystemClock",
    "TickLog",
    "TickRecord",
    "TransitionConflict",
    "Verification",
    "VigilError",
    "WarmingUp",
    "WorkloadInfo",
    "finding_id",
    "format_quantity",
    "idempotency_key",
    "series_id",
    "to_datetime",
    "to_timestamp",
]
