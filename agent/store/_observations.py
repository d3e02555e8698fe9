"""What the loop saw: ticks, findings, forecasts and people's feedback on findings (private).

The ``TickLog``, ``FindingStore``, ``ForecastStore`` and ``FeedbackStore`` parts of
``SqliteStore``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from vigil.agent.store._base import StoreBase
from vigil.agent.store._codec import (
    anomaly_from_json,
    anomaly_to_json,
    dump_json,
    forecast_arrays,
    forecast_from_row,
    forecast_summary,
    from_ts,
    load_json,
    opt_from_ts,
    ref_from_columns,
    ref_to_columns,
    to_ts,
)
from vigil.core.errors import NotFoundError
from vigil.core.findings import Finding, Forecast
from vigil.core.records import FeedbackLabel, TickRecord

__all__ = ["ObservationsMixin"]


def _tick(row: Mapping[str, Any]) -> TickRecord:
    ended = opt_from_ts(row["ended_at"])
    errors = tuple(load_json(row["errors"], []))
    return TickRecord(
        id=row["id"],
        started_at=from_ts(row["started_at"]),
        ended_at=ended,
        durations=load_json(row["durations"], {}),
        errors=errors,
        ok=None if ended is None else not errors,
    )


def _finding(row: Mapping[str, Any]) -> Finding:
    forecast = None
    if row["forecast"] is not None:
        forecast = forecast_from_row(json.loads(row["forecast"]))
    return Finding(
        id=row["id"],
        kind=row["kind"],
        subject=row["subject"],
        title=row["title"],
        severity=row["severity"],
        observed_at=from_ts(row["observed_at"]),
        started_at=from_ts(row["started_at"]),
        resolved_at=opt_from_ts(row["resolved_at"]),
        labels=load_json(row["labels"], {}),
        target=ref_from_columns(row["target_kind"], row["target_namespace"], row["target_name"]),
        anomaly=None if row["anomaly"] is None else anomaly_from_json(row["anomaly"]),
        forecast=forecast,
        details=load_json(row["details"], {}),
    )


def _finding_row(finding: Finding) -> dict[str, Any]:
    kind, namespace, name = ref_to_columns(finding.target)
    forecast = None
    if finding.forecast is not None:
        # The summary keys let SQL readers see model/peak/horizon without the arrays;
        # the arrays make the finding's forecast whole again on read.
        forecast = dump_json(
            {**forecast_summary(finding.forecast), **forecast_arrays(finding.forecast)},
            f"finding {finding.id} forecast",
        )
    series = None
    if finding.anomaly is not None:
        series = finding.anomaly.series
    elif finding.forecast is not None:
        series = finding.forecast.series
    return {
        "id": finding.id,
        "kind": finding.kind.value,
        "subject": finding.subject,
        "title": finding.title,
        "severity": finding.severity.value,
        "labels": dump_json(finding.labels, f"finding {finding.id} labels"),
        "target_kind": kind,
        "target_namespace": namespace,
        "target_name": name,
        "observed_at": to_ts(finding.observed_at, "observed_at"),
        "started_at": to_ts(finding.started_at, "started_at"),
        "resolved_at": None if finding.resolved_at is None else to_ts(finding.resolved_at),
        "anomaly": None if finding.anomaly is None else anomaly_to_json(finding.anomaly),
        "forecast": forecast,
        "details": dump_json(finding.details, f"finding {finding.id} details"),
        "series": series,
    }


class ObservationsMixin(StoreBase):
    # ------------------------------------------------------------------ ticks

    def start_tick(self, started_at: datetime) -> int:
        row = {"started_at": to_ts(started_at, "started_at")}
        with self._write() as db:
            return int(
                db.execute("INSERT INTO ticks (started_at) VALUES (:started_at)", row).lastrowid
                or 0
            )

    def finish_tick(
        self,
        tick_id: int,
        ended_at: datetime,
        durations: Mapping[str, float],
        errors: Sequence[str],
    ) -> None:
        clean: dict[str, float] = {}
        for stage, seconds in durations.items():
            value = float(seconds)
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"tick {tick_id}: duration of stage {stage!r} must be a finite number of "
                    f"seconds >= 0, got {seconds!r}"
                )
            clean[str(stage)] = value
        if isinstance(errors, str):
            raise TypeError(f"tick {tick_id}: errors must be a list of messages, not one string")
        params = {
            "id": tick_id,
            "ended_at": to_ts(ended_at, "ended_at"),
            "durations": dump_json(clean, "tick durations"),
            "errors": dump_json([str(e) for e in errors], "tick errors"),
        }
        with self._write() as db:
            cur = db.execute(
                "UPDATE ticks SET ended_at = :ended_at, durations = :durations, "
                "errors = :errors WHERE id = :id",
                params,
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no tick {tick_id} in store {self.path}")

    def recent_ticks(self, limit: int = 10) -> list[TickRecord]:
        with self._read():
            rows = self._rows(
                "SELECT * FROM ticks ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
            )
        return [_tick(r) for r in rows]

    # ------------------------------------------------------------------ findings

    def record_finding(self, finding: Finding) -> bool:
        row = _finding_row(finding)
        columns = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        # started_at and kind/subject make the id: a refresh changes everything else.
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c not in {"id", "started_at"})
        with self._write() as db:
            existed = self._scalar("SELECT 1 FROM findings WHERE id = ?", (finding.id,))
            db.execute(
                f"INSERT INTO findings ({columns}) VALUES ({values}) "  # noqa: S608 (fixed columns)
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                row,
            )
        return existed is None

    def resolve_finding(self, finding_id: str, at: datetime) -> None:
        with self._write() as db:
            # An earlier resolution time stands: resolving twice keeps the first.
            cur = db.execute(
                "UPDATE findings SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
                (to_ts(at, "resolved_at"), finding_id),
            )
            if cur.rowcount == 0 and not self._scalar(
                "SELECT 1 FROM findings WHERE id = ?", (finding_id,)
            ):
                raise NotFoundError(f"no finding {finding_id} in store {self.path}")

    def get_finding(self, finding_id: str) -> Finding:
        with self._read():
            rows = self._rows("SELECT * FROM findings WHERE id = ?", (finding_id,))
        if not rows:
            raise NotFoundError(f"no finding {finding_id} in store {self.path}")
        return _finding(rows[0])

    def latest_finding(self, subject: str, kind: str | None = None) -> Finding | None:
        """The most recently observed finding about ``subject`` (open or resolved)."""
        sql = "SELECT * FROM findings WHERE subject = ?"
        params: tuple[str, ...] = (subject,)
        if kind is not None:
            sql += " AND kind = ?"
            params += (str(kind),)
        with self._read():
            rows = self._rows(sql + " ORDER BY observed_at DESC, id DESC LIMIT 1", params)
        return _finding(rows[0]) if rows else None

    def open_findings(self, limit: int = 100) -> list[Finding]:
        with self._read():
            rows = self._rows(
                "SELECT * FROM findings WHERE resolved_at IS NULL "
                "ORDER BY observed_at DESC, id DESC LIMIT ?",
                (limit,),
            )
        return [_finding(r) for r in rows]

    def findings_between(self, start: datetime, end: datetime) -> list[Finding]:
        """Findings active at some time in [start, end] (an open one is active until now)."""
        if end < start:
            raise ValueError(f"findings_between: end {end} is before start {start}")
        with self._read():
            rows = self._rows(
                "SELECT * FROM findings WHERE started_at <= ? "
                "AND (resolved_at IS NULL OR resolved_at >= ?) ORDER BY started_at, id",
                (to_ts(end, "end"), to_ts(start, "start")),
            )
        return [_finding(r) for r in rows]

    # ------------------------------------------------------------------ forecasts

    def record_forecast(self, forecast: Forecast) -> None:
        row = {
            "series": forecast.series,
            "metric": forecast.metric,
            "labels": dump_json(forecast.labels, f"forecast {forecast.series} labels"),
            "model": forecast.model,
            "model_version": forecast.model_version,
            "unit": forecast.unit,
            "made_at": to_ts(forecast.made_at, "made_at"),
            **forecast_arrays(forecast),
        }
        columns = ", ".join(row)
        values = ", ".join(f":{c}" for c in row)
        with self._write() as db:
            db.execute(f"INSERT INTO forecasts ({columns}) VALUES ({values})", row)  # noqa: S608

    def latest_forecast(self, series: str) -> Forecast | None:
        with self._read():
            rows = self._rows(
                "SELECT * FROM forecasts WHERE series = ? ORDER BY made_at DESC, id DESC LIMIT 1",
                (series,),
            )
        return forecast_from_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ feedback

    def record_feedback(self, finding_id: str, label: FeedbackLabel, *, at: datetime) -> None:
        label = FeedbackLabel(label)
        when = to_ts(at, "at")
        with self._write() as db:
            # The series is copied so feedback outlives the finding (retention).
            series = self._scalar(
                "SELECT COALESCE(series, subject) FROM findings WHERE id = ?", (finding_id,)
            )
            if series is None:
                raise NotFoundError(
                    f"no finding {finding_id} in store {self.path}: feedback needs a known finding"
                )
            db.execute(
                "INSERT INTO feedback (finding_id, series, label, at) VALUES (?, ?, ?, ?)",
                (finding_id, series, label.value, when),
            )

    def feedback_for(self, series: str) -> list[FeedbackLabel]:
        with self._read():
            rows = self._rows(
                "SELECT label FROM feedback WHERE series = ? ORDER BY at, id", (series,)
            )
        return [FeedbackLabel(r["label"]) for r in rows]
