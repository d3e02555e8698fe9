"""The NLQ test world's store: the fixture's anomalies, forecasts, actions and
notifications written with the real ``SqliteStore``, and ``SqlReader``, a read-only SQL
reader with the contract of ``SqliteStore.run_sql``. Used by ``tests/nlqworld.py``.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from nlqworld_metrics import GI, MI, clock_at, fixture_now

from vigil.core import (
    ActionKind,
    ActionStatus,
    Anomaly,
    Finding,
    FindingKind,
    Forecast,
    IncidentState,
    Mode,
    Notification,
    ObjectRef,
    Plan,
    Severity,
)

__all__ = ["SqlReader", "action_statuses", "build_store", "table_counts"]

_clock = clock_at

# ---------------------------------------------------------------- the store

_KINDS = {
    "notify_only": ActionKind.NOTIFY,
    "increase_memory_limit": ActionKind.PATCH_RESOURCES,
    "scale_deployment": ActionKind.SCALE,
    "restart_pod": ActionKind.DELETE_POD,
    "rollback": ActionKind.ROLLOUT_UNDO,
}
_STATUS = {"rejected": "denied", "pending_approval": "pending-approval"}


def _ts(now: datetime, text: Any) -> datetime:
    s = str(text)
    if "T" in s:
        s = s.replace("Z", "+00:00")
        if re.search(r"T\d\d:\d\d\+", s):
            s = s.replace("+", ":00+")
        return datetime.fromisoformat(s)
    return _clock(now, s)


def _ref(target: str, services: Sequence[str]) -> ObjectRef:
    ns, name = target.split("/")
    if name in services:
        return ObjectRef(
            "StatefulSet"
            if name.endswith(("-db", "-redis")) or name == "prometheus"
            else "Deployment",
            ns,
            name,
        )
    return ObjectRef("Pod", ns, name)


def build_store(fx: Mapping[str, Any], path: Path) -> None:
    """Write the fixture's anomalies, forecasts, actions and notifications with the real
    ``SqliteStore``; ids are then set to the fixture's so questions can name them."""
    from vigil.agent.store import SqliteStore

    now = fixture_now(fx)
    services = [s for group in fx["services"].values() for s in group]
    ns_of = {s: n for n, group in fx["services"].items() for s in group}
    with SqliteStore.open(path) as store:
        for a in fx.get("anomalies", []):
            at = _ts(now, a["detected_at"])
            labels = {"service": a["service"], "namespace": a["namespace"]}
            anomaly = Anomaly(
                metric=a["metric"],
                labels=labels,
                start=at,
                end=at,
                score=float(a["score"]),
                severity=Severity(a["severity"]),
                value=1.0,
                expected_low=0.0,
                expected_high=0.5,
                detector="fixture",
                detector_version="1",
            )
            store.record_finding(
                Finding(
                    kind=FindingKind.ANOMALY,
                    subject=anomaly.series,
                    title=f"{a['service']} {a['metric']}",
                    severity=Severity(a["severity"]),
                    observed_at=at,
                    started_at=at,
                    labels=labels,
                    target=_ref(f"{a['namespace']}/{a['service']}", services),
                    anomaly=anomaly,
                    resolved_at=at + timedelta(hours=1) if a["status"] == "resolved" else None,
                    id=str(a["id"]),
                )
            )
        for f in fx.get("forecasts", []):
            store.record_finding(_forecast_finding(f, now, ns_of, services))
        ids: list[tuple[int, int]] = []
        for a in fx.get("actions", []):
            at = _ts(now, a["created_at"])
            ref = _ref(a["target"], services)
            params: dict[str, Any] = {}
            if a.get("params"):
                old, new = str(a["params"]).split("->")
                params = {"from": old, "to": new}
            status = _STATUS.get(a["status"], a["status"])
            mode = (
                Mode.DRY_RUN
                if a.get("dry_run")
                else Mode.APPROVE
                if status == "pending-approval"
                else Mode.AUTO
            )
            plan = Plan(
                finding_id=str(a["anomaly_id"]),
                playbook=a["action"],
                step=0,
                action=_KINDS.get(a["action"], ActionKind.ROLLOUT_RESTART),
                target=ref,
                params=params,
                mode=mode,
                created_at=at,
                reason=a.get("reason", ""),
            )
            entry = store.journal_plan(
                plan, ActionStatus(status), reason=a.get("reason", ""), at=at
            )
            assert entry is not None
            ids.append((entry.id, int(a["id"])))
        for n in fx.get("notifications", []):
            at = _ts(now, n["sent_at"])
            note = Notification(
                incident_key=f"n{n['id']}",
                dedupe_key=f"n{n['id']}",
                state=IncidentState.DETECTED,
                severity=Severity.WARNING,
                title=str(n["about"]),
                text=str(n["about"]),
                created_at=at,
            )
            store.enqueue(n["channel"], note, at=at)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for a in fx.get("actions", []):
            msg = ""
            if a.get("approved_by"):
                msg = f"approved by {a['approved_by']} at {a.get('approved_at', '')}"
            if a.get("rejected_by"):
                msg = f"rejected by {a['rejected_by']}: {a.get('comment', '')}"
            db.execute(
                "UPDATE actions SET message = ? WHERE id = ?",
                (msg, next(i for i, f in ids if f == a["id"])),
            )
        # fixture ids, shifted through a free range so no two rows collide on the way
        for stored, wanted in ids:
            db.execute("UPDATE actions SET id = ? WHERE id = ?", (wanted + 1_000_000, stored))
        for _, wanted in ids:
            db.execute("UPDATE actions SET id = ? WHERE id = ?", (wanted, wanted + 1_000_000))
        db.execute("UPDATE notifications SET delivered_at = enqueued_at")


def _forecast_finding(
    f: Mapping[str, Any], now: datetime, ns_of: Mapping[str, str], services: Sequence[str]
) -> Finding:
    made = _ts(now, f["created_at"])
    horizon = str(f["horizon"])
    seconds = int(horizon[:-1]) * {"h": 3600, "d": 86400}[horizon[-1]]
    step = 300 if seconds <= 6 * 3600 else 3600
    ts = np.arange(made.timestamp(), made.timestamp() + seconds + 1, step, dtype=float)
    if "peak_at" in f:
        ts = np.unique(np.append(ts, _clock(now, f["peak_at"]).timestamp()))
    if "crosses_95pct_of_limit_at" in f:
        ts = np.unique(np.append(ts, _clock(now, f["crosses_95pct_of_limit_at"]).timestamp()))
    details: dict[str, Any] = {}
    if "peak_p50" in f:
        unit = "cores"
        peak_t = _clock(now, f["peak_at"]).timestamp()
        mean = float(f["peak_p50"]) - 0.6 * np.abs(ts - peak_t) / 3600
        spread = (float(f["peak_p90"]) - float(f["peak_p50"])) * (mean / float(f["peak_p50"]))
        details = {"limit": float(f["limit"])}
        bands = {0.1: mean - spread, 0.5: mean, 0.9: mean + spread}
    elif "crosses_95pct_of_limit_at" in f:
        unit = "bytes"
        limit = 512 * MI
        hit = _clock(now, f["crosses_95pct_of_limit_at"]).timestamp()
        start = 440 * MI
        mean = start + (0.95 * limit - start) * (ts - ts[0]) / (hit - ts[0])
        details = {"limit": limit, "threshold_ratio": 0.95}
        bands = {0.1: mean * 0.97, 0.5: mean, 0.9: mean * 1.03}
    else:
        unit = "bytes"
        full = datetime.fromisoformat(str(f["full_at"])).replace(tzinfo=UTC).timestamp()
        mean = 81 * GI + (100 * GI - 81 * GI) * (ts - ts[0]) / (full - ts[0])
        details = {"limit": 100 * GI}
        bands = {0.1: mean * 0.98, 0.5: mean, 0.9: mean * 1.02}
    svc = f["service"]
    labels = {"service": svc, "namespace": ns_of.get(svc, "default")}
    forecast = Forecast(
        metric=f["metric"],
        labels=labels,
        made_at=made,
        timestamps=ts,
        mean=mean,
        quantiles=bands,
        model="fixture",
        model_version="1",
        unit=unit,
    )
    return Finding(
        kind=FindingKind.FORECAST,
        subject=forecast.series,
        title=f"{svc} {f['metric']} forecast",
        severity=Severity.INFO,
        observed_at=made,
        started_at=made,
        labels=labels,
        target=_ref(f"{labels['namespace']}/{svc}", services),
        forecast=forecast,
        details=details,
        id=str(f["id"]),
    )


class SqlReader:
    """Read-only SQL on a store file: ``mode=ro``, ``query_only``, and an authorizer that
    denies every statement but reads (the contract of ``SqliteStore.run_sql``)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        self._db.execute("PRAGMA query_only = ON")
        allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
        self._db.set_authorizer(
            lambda action, *_: sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY
        )
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def run_sql(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        from vigil.core import QueryError

        self.statements.append((sql, tuple(params)))
        try:
            cur = self._db.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise QueryError(f"store query refused: {exc}", query=sql) from exc
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def close(self) -> None:
        self._db.close()


def table_counts(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("actions", "findings", "notifications", "verifications")
        }


def action_statuses(path: Path) -> dict[int, str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT id, status FROM actions").fetchall())
