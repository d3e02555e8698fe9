"""Shadow-mode anomalies and feedback read back for tuning (private).

The ``ShadowMixin`` part of ``SqliteStore``: the tick's shadow stage records the
anomalies of the active detector configuration (champion) and of the candidate run in
shadow (challenger), one row per incident; ``vigil shadow report`` reads them with the
feedback labels. ``feedback_since`` lets the agent apply sensitivities from feedback
incrementally each tick, and from the whole table after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from vigil.agent.store._base import StoreBase
from vigil.agent.store._codec import anomaly_from_json, anomaly_to_json, from_ts, to_ts
from vigil.core.findings import Anomaly
from vigil.core.records import FeedbackLabel

__all__ = ["FeedbackRow", "ShadowMixin", "ShadowRow"]

ROLES = ("champion", "challenger")


class FeedbackRow(NamedTuple):
    """One label a person gave a finding (``vigil feedback``)."""

    id: int
    finding_id: str
    series: str
    label: FeedbackLabel
    at: datetime


class ShadowRow(NamedTuple):
    """One incident of one run: its latest report, and the champion's finding id."""

    role: str
    config: str
    anomaly: Anomaly
    finding_id: str | None
    seen_at: datetime


class ShadowMixin(StoreBase):
    def record_shadow(
        self,
        role: str,
        config: str,
        anomalies: Sequence[tuple[Anomaly, str | None]],
        *,
        at: datetime,
    ) -> None:
        """Store one tick's anomalies of ``role``; a re-reported incident updates its row
        (end, score, severity, finding) instead of adding one."""
        if role not in ROLES:
            raise ValueError(f"shadow role must be one of {', '.join(ROLES)}, got {role!r}")
        if not anomalies:
            return
        seen = to_ts(at, "at")
        rows = [
            {
                "role": role,
                "config": config,
                "detector": a.detector,
                "detector_version": a.detector_version,
                "series": a.series,
                "started_at": to_ts(a.start, "start"),
                "ended_at": to_ts(a.end, "end"),
                "score": a.score,
                "severity": a.severity.value,
                "finding_id": finding,
                "anomaly": anomaly_to_json(a),
                "seen_at": seen,
            }
            for a, finding in anomalies
        ]
        columns = ", ".join(rows[0])
        values = ", ".join(f":{c}" for c in rows[0])
        with self._write() as db:
            db.executemany(
                f"INSERT INTO shadow_anomalies ({columns}) VALUES ({values}) "  # noqa: S608
                "ON CONFLICT(role, config, series, started_at) DO UPDATE SET "
                "ended_at = MAX(ended_at, excluded.ended_at), score = excluded.score, "
                "severity = excluded.severity, anomaly = excluded.anomaly, "
                "seen_at = excluded.seen_at, "
                "finding_id = COALESCE(excluded.finding_id, finding_id)",
                rows,
            )

    def shadow_anomalies(self, *, since: datetime | None = None) -> list[ShadowRow]:
        """Every stored incident of both runs last seen at or after ``since``, oldest first."""
        cutoff = "" if since is None else to_ts(since, "since")
        with self._read():
            rows = self._rows(
                "SELECT role, config, anomaly, finding_id, seen_at FROM shadow_anomalies "
                "WHERE seen_at >= ? ORDER BY started_at, id",
                (cutoff,),
            )
        return [
            ShadowRow(
                r["role"],
                r["config"],
                anomaly_from_json(r["anomaly"]),
                r["finding_id"],
                from_ts(r["seen_at"]),
            )
            for r in rows
        ]

    def feedback_since(self, after_id: int = 0) -> list[FeedbackRow]:
        """Feedback rows with an id above ``after_id``, in the order they were given."""
        with self._read():
            rows = self._rows(
                "SELECT id, finding_id, series, label, at FROM feedback WHERE id > ? ORDER BY id",
                (after_id,),
            )
        return [
            FeedbackRow(
                int(r["id"]),
                r["finding_id"],
                r["series"],
                FeedbackLabel(r["label"]),
                from_ts(r["at"]),
            )
            for r in rows
        ]
