"""Answers from the store: ``anomalies_list``, ``actions_list``, ``action_explain`` and
``forecast``.

SQL text here is constant; user-derived values (names, times, ids, statuses) go only in
``?`` parameters. Tables and columns are the agent store's (docs/store.md): ``findings``
(anomalies and forecasts), ``actions`` (the journal), ``verifications``, ``notifications``.
Called by ``vigil.nlq.engine``'s dispatch table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from vigil.core import RetryableError
from vigil.nlq.answer import Answer
from vigil.nlq.context import Ctx, fmt, sql_time, when
from vigil.nlq.timeparse import Horizon, default_range

__all__ = ["action_explain", "actions_list", "anomalies_list", "forecast"]

_FINDING_COLS = (
    "SELECT id, started_at, resolved_at, severity, title, target_namespace, target_name, "
    "labels, json_extract(anomaly, '$.metric') AS metric, "
    "json_extract(anomaly, '$.score') AS score FROM findings WHERE kind = 'anomaly'"
)
_ACTION_COLS = (
    "SELECT a.id, a.created_at, a.playbook, a.action, a.target_kind, a.target_namespace, "
    "a.target_name, a.params, a.mode, a.status, a.reason, a.message, a.finding_id, "
    "(SELECT v.ok FROM verifications v WHERE v.action_id = a.id "
    "ORDER BY v.checked_at DESC LIMIT 1) AS verified_ok, "
    "(SELECT v.message FROM verifications v WHERE v.action_id = a.id "
    "ORDER BY v.checked_at DESC LIMIT 1) AS verify_message, "
    "(SELECT f.resolved_at FROM findings f WHERE f.id = a.finding_id) AS finding_resolved_at "
    "FROM actions a WHERE 1 = 1"
)


# Journal statuses in people's words (the store's are ``pending-approval``, ``denied``…).
_STATUS_WORDS = {
    "pending-approval": "pending approval",
    "denied": "rejected (denied)",
    "dry-run": "dry run (would have acted)",
    "refused": "refused by a guardrail",
}


def _service_of(row: Mapping[str, Any]) -> str:
    labels = json.loads(row.get("labels") or "{}")
    return str(labels.get("service") or row.get("target_name") or "?")


def _anomaly_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"#{row['id']}",
        "detected": when(row["started_at"]),
        "service": _service_of(row),
        "namespace": row.get("target_namespace") or "",
        "metric": row.get("metric") or row.get("title"),
        "score": None if row.get("score") is None else round(float(row["score"]), 2),
        "severity": row["severity"],
        "status": "resolved" if row.get("resolved_at") else "open",
    }


def _target_filter(ctx: Ctx, alias: str = "") -> tuple[str, list[Any]]:
    e = ctx.ent
    sql, params = "", list[Any]()
    if e.pod:
        sql += f" AND {alias}target_name = ?"
        params.append(e.pod)
    elif e.service:
        pods = ctx.inv.pods_of(e.service)
        marks = ", ".join("?" for _ in pods)
        sql += f" AND ({alias}target_name = ?" + (
            f" OR {alias}target_name IN ({marks}))" if pods else ")"
        )
        params += [e.service, *pods]
    if e.namespace:
        sql += f" AND {alias}target_namespace = ?"
        params.append(e.namespace)
    return sql, params


def anomalies_list(ctx: Ctx) -> Answer:
    e = ctx.ent
    sql, params = _FINDING_COLS, list[Any]()
    if e.anomaly_id is not None or e.record_id is not None:
        sql += " AND id = ?"
        params.append(str(e.anomaly_id if e.anomaly_id is not None else e.record_id))
    else:
        explicit = e.time_range is not None
        if e.time_range is None or e.time_range.instant:
            e.time_range = default_range("last_24h", ctx.now)
        if explicit or e.status != "open":
            sql += " AND started_at >= ? AND started_at <= ?"
            params += [sql_time(e.time_range.start), sql_time(e.time_range.end)]
        if e.severity:
            sql += " AND severity = ?"
            params.append(e.severity)
        if e.status == "open":
            sql += " AND resolved_at IS NULL"
        elif e.status == "resolved":
            sql += " AND resolved_at IS NOT NULL"
        extra, more = _target_filter(ctx)
        sql += extra
        params += more
    sql += " ORDER BY started_at DESC LIMIT ?"
    params.append(e.limit or ctx.settings.max_limit)
    rows = [_anomaly_row(r) for r in ctx.sql(sql, params)]
    span = f" ({e.time_range.describe()})" if e.time_range else ""
    if not rows:
        return ctx.answer("anomalies_list", headline=f"No anomalies match{span}.")
    crit = sum(1 for r in rows if r["severity"] == "critical")
    head = (
        f"{len(rows)} anomal{'y' if len(rows) == 1 else 'ies'}{span}"
        + (f", {crit} critical" if crit else "")
        + ": "
        + "; ".join(
            f"{r['id']} {r['service']} {r['metric']} ({r['severity']}, {r['status']})"
            for r in rows[:5]
        )
        + "."
    )
    cols = ["id", "detected", "service", "namespace", "metric", "score", "severity", "status"]
    return ctx.answer(
        "anomalies_list", headline=head, columns=cols, rows=rows, ids=[r["id"][1:] for r in rows]
    )


def _params_text(raw: str | None) -> str:
    params = json.loads(raw or "{}")
    if "from" in params and "to" in params:
        return f"{params['from']}→{params['to']}"
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != "dry_run")


def _outcome(row: Mapping[str, Any]) -> str:
    if row.get("verified_ok") is not None:
        ok = bool(row["verified_ok"])
        msg = row.get("verify_message") or ""
        return ("verified: helped" if ok else "verified: did not help") + (
            f" ({msg})" if msg else ""
        )
    if row["status"] != "succeeded":
        return "-"
    if row.get("finding_resolved_at"):
        return f"anomaly #{row['finding_id']} resolved"
    return f"not verified yet; anomaly #{row['finding_id']} still open"


def _action_row(row: Mapping[str, Any]) -> dict[str, Any]:
    target = (
        f"{row['target_namespace']}/{row['target_name']}"
        if row.get("target_namespace")
        else row["target_name"]
    )
    return {
        "id": f"#{row['id']}",
        "when": when(row["created_at"]),
        "action": row["playbook"]
        if row["playbook"] == row["action"]
        else f"{row['playbook']} ({row['action']})",
        "target": target,
        "params": _params_text(row.get("params")),
        "status": _STATUS_WORDS.get(row["status"], row["status"]),
        "dry-run": "yes" if row["mode"] == "dry-run" or row["status"] == "dry-run" else "no",
        "outcome": _outcome(row),
        "note": row.get("message") or row.get("reason") or "",
    }


def actions_list(ctx: Ctx) -> Answer:
    e = ctx.ent
    sql, params = _ACTION_COLS, list[Any]()
    if e.action_id is not None or e.record_id is not None:
        sql += " AND a.id = ?"
        params.append(e.action_id if e.action_id is not None else e.record_id)
    else:
        explicit = e.time_range is not None and not e.time_range.instant
        if not explicit:
            e.time_range = default_range("last_24h", ctx.now)
        assert e.time_range is not None
        if explicit or e.status not in {"pending-approval", "approved"}:
            sql += " AND a.created_at >= ? AND a.created_at <= ?"
            params += [sql_time(e.time_range.start), sql_time(e.time_range.end)]
        if e.status == "denied":
            sql += " AND a.status IN (?, ?)"
            params += ["denied", "refused"]
        elif e.status in {"pending-approval", "succeeded", "failed", "approved", "reverted"}:
            sql += " AND a.status = ?"
            params.append(e.status)
        if e.dry_run:
            sql += " AND (a.mode = ? OR a.status = ?)"
            params += ["dry-run", "dry-run"]
        extra, more = _target_filter(ctx, "a.")
        sql += extra
        params += more
    sql += " ORDER BY a.created_at DESC LIMIT ?"
    params.append(e.limit or ctx.settings.max_limit)
    rows = [_action_row(r) for r in ctx.sql(sql, params)]
    span = f" ({e.time_range.describe()})" if e.time_range else ""
    notes: list[str] = []
    if any(w in ctx.question.lower() for w in ("notif", "slack", "tell", "told", "message")):
        notes = _notifications(ctx)
    if not rows:
        what = _STATUS_WORDS.get(e.status or "", e.status or "")
        what = f"{what} " if what and what != "open" else ""
        return ctx.answer("actions_list", headline=f"No {what}actions{span}.", notes=notes)
    head = (
        f"{len(rows)} action{'s' if len(rows) != 1 else ''}{span}: "
        + "; ".join(f"{r['id']} {r['action']} {r['target']} {r['status']}" for r in rows[:6])
        + "."
    )
    cols = ["id", "when", "action", "target", "params", "status", "dry-run", "outcome", "note"]
    return ctx.answer(
        "actions_list",
        headline=head,
        columns=cols,
        rows=rows,
        ids=[r["id"][1:] for r in rows],
        notes=notes,
    )


def _notifications(ctx: Ctx) -> list[str]:
    rng = ctx.ent.time_range or default_range("last_24h", ctx.now)
    rows = ctx.sql(
        "SELECT id, channel, state, created_at, json_extract(payload, '$.title') AS title "
        "FROM notifications WHERE created_at >= ? AND created_at <= ? ORDER BY created_at",
        [sql_time(rng.start), sql_time(rng.end)],
    )
    if not rows:
        return ["No notifications sent in that window."]
    return [
        f"Notification {r['id']} via {r['channel']} at {when(r['created_at'])}: {r['title']}"
        for r in rows
    ]


def _chain_for_action(ctx: Ctx, row: Mapping[str, Any]) -> list[str]:
    r = _action_row(row)
    line = f"Action {r['id']} {r['action']} on {r['target']}"
    line += f" ({r['params']})" if r["params"] else ""
    line += f" is {_STATUS_WORDS.get(row['status'], row['status'])}"
    line += " as a dry run" if r["dry-run"] == "yes" else ""
    line += f", proposed {r['when']}"
    if row.get("reason"):
        line += f"; reason: {row['reason']}"
    if row.get("message"):
        line += f"; {row['message']}"
    out = [line + "."]
    if r["outcome"] != "-":
        out.append(f"Outcome: {r['outcome']}.")
    return out


def action_explain(ctx: Ctx) -> Answer:
    e = ctx.ent
    lines: list[str] = []
    ids: list[str] = []
    findings: list[Mapping[str, Any]] = []
    actions: list[Mapping[str, Any]] = []
    rid = e.action_id if e.action_id is not None else e.record_id
    if rid is not None and e.anomaly_id is None:
        actions = list(ctx.sql(_ACTION_COLS + " AND a.id = ?", [rid]))
        if actions:
            findings = list(ctx.sql(_FINDING_COLS + " AND id = ?", [str(actions[0]["finding_id"])]))
    if e.anomaly_id is not None or (rid is not None and not actions):
        fid = str(e.anomaly_id if e.anomaly_id is not None else rid)
        findings = list(ctx.sql(_FINDING_COLS + " AND id = ?", [fid]))
    if not findings and not actions and (e.service or e.pod or e.namespace):
        if e.time_range is None or e.time_range.instant:
            e.time_range = default_range("last_24h", ctx.now)
        extra, more = _target_filter(ctx)
        findings = list(
            ctx.sql(
                _FINDING_COLS
                + " AND started_at <= ? AND (resolved_at IS NULL OR resolved_at >= ?)"
                + extra
                + " ORDER BY started_at",
                [sql_time(e.time_range.end), sql_time(e.time_range.start), *more],
            )
        )
    if findings and not actions:
        fids = [str(f["id"]) for f in findings]
        marks = ", ".join("?" for _ in fids)
        actions = list(
            ctx.sql(_ACTION_COLS + f" AND a.finding_id IN ({marks}) ORDER BY a.created_at", fids)
        )
    if not findings and not actions and (e.status or e.dry_run):
        extra = " AND a.status IN (?, ?)" if e.status == "denied" else " AND a.status = ?"
        params: list[Any] = (
            ["denied", "refused"] if e.status == "denied" else [e.status or "dry-run"]
        )
        actions = list(
            ctx.sql(_ACTION_COLS + extra + " ORDER BY a.created_at DESC LIMIT 3", params)
        )
        fids = [str(a["finding_id"]) for a in actions]
        if fids:
            marks = ", ".join("?" for _ in fids)
            findings = list(ctx.sql(_FINDING_COLS + f" AND id IN ({marks})", fids))
    for f in findings:
        row = _anomaly_row(f)
        ids.append(str(f["id"]))
        lines.append(
            f"Anomaly {row['id']}: {row['service']} {row['metric']} ({row['severity']}, score "
            f"{row['score']}) detected {row['detected']}, {row['status']}."
        )
    for a in actions:
        ids.append(str(a["id"]))
        lines.extend(_chain_for_action(ctx, a))
    evidence = _pod_evidence(ctx)
    if not lines and not evidence:
        who = e.pod or e.service or e.namespace or "that"
        return ctx.answer(
            "action_explain",
            headline=f"I found no anomaly or action about {who} to explain"
            + (f" ({e.time_range.describe()})." if e.time_range else "."),
        )
    head = lines[0] if lines else evidence[0]
    rest = [*lines[1:], *evidence] if lines else evidence[1:]
    return ctx.answer("action_explain", headline=head, details=rest, ids=ids)


def _pod_evidence(ctx: Ctx) -> list[str]:
    """What the pods in question show: state, exit code, last termination, restarts."""
    e, m = ctx.ent, ctx.m
    if (ctx.metrics is None and ctx.cluster is None) or not (e.pod or e.service):
        return []
    from vigil.nlq import promql
    from vigil.nlq.handlers_cluster import pod_states

    rng = e.time_range or default_range("last_24h", ctx.now)
    restarts: dict[str | None, float] = {}
    try:
        if ctx.metrics is not None:
            labels = {m.namespace_label: e.namespace, m.pod_label: e.pod}
            window = promql.window(rng.seconds)
            restarts = {
                s.labels.get(m.pod_label): s.value
                for s in ctx.prom(
                    f"sum by ({m.namespace_label}, {m.pod_label}) "
                    f"(increase({promql.selector(m.restarts, labels)}[{window}]))",
                    at=rng.end,
                )
            }
        states = pod_states(ctx)
    except RetryableError as exc:
        # the store's records still answer; say plainly what could not be added
        return [f"Pod state not shown: {exc}."]
    out = []
    for s in states:
        count = restarts.get(s.pod)
        parts = [f"status {s.status}"]
        if s.exit_code is not None:
            parts.append(f"exit code {s.exit_code}")
        if count and count >= 0.5:
            parts.append(f"{round(count)} restarts ({rng.describe()})")
        if s.last_termination:
            parts.append(f"last termination {s.last_termination}")
        if len(parts) > 1 or not s.healthy:
            out.append(f"Pod {s.pod}: " + ", ".join(parts) + ".")
    return out


def forecast(ctx: Ctx) -> Answer:
    e = ctx.ent
    if e.horizon is None:
        e.horizon = Horizon("next_1h", 3600)
    elif e.horizon.name == "tonight":  # until midnight, in whole hours
        local = ctx.now.astimezone(ZoneInfo(ctx.settings.timezone))
        left = 24 * 3600 - (local.hour * 3600 + local.minute * 60)
        e.horizon = Horizon(f"next_{max(1, round(left / 3600))}h", left)
    sql = (
        "SELECT id, target_namespace, target_name, labels, observed_at, details, forecast "
        "FROM findings WHERE kind = 'forecast'"
    )
    extra, params = _target_filter(ctx)
    sql += extra + " ORDER BY observed_at DESC LIMIT ?"
    params.append(e.limit or ctx.settings.max_limit)
    rows = ctx.sql(sql, params)
    who = e.pod or e.service or e.namespace
    if e.metric and rows:
        wanted = {"cpu": "cpu", "memory": "memory", "pvc_usage": "pvc"}.get(e.metric)
        if wanted:
            picked = [
                r for r in rows if wanted in json.loads(r["forecast"] or "{}").get("metric", "")
            ]
            rows = picked or rows
    if not rows:
        return ctx.answer(
            "forecast",
            headline=f"No stored forecast{' for ' + who if who else ''}: the forecaster has not "
            "produced one, so there is nothing to report.",
        )
    out_rows = [_forecast_row(r) for r in rows]
    head = "; ".join(r["summary"] for r in out_rows[:3])
    cols = ["id", "service", "metric", "made", "peak p50", "peak p90", "peak at", "crosses"]
    return ctx.answer(
        "forecast", headline=head, columns=cols, rows=out_rows, ids=[str(r["id"]) for r in rows]
    )


def _forecast_row(row: Mapping[str, Any]) -> dict[str, Any]:
    fc = json.loads(row["forecast"] or "{}")
    details = json.loads(row["details"] or "{}")
    unit = fc.get("unit", "")
    ts: Any = fc.get("timestamps", [])
    mean = (
        [math.nan if v is None else v for v in fc.get("mean", [])]
        if isinstance(fc.get("mean"), list)
        else []
    )
    bands = fc.get("quantiles", {})
    if isinstance(bands, str):
        bands = json.loads(bands)
    if isinstance(ts, str):
        ts = json.loads(ts)
    if isinstance(fc.get("mean"), str):
        mean = [math.nan if v is None else v for v in json.loads(fc["mean"])]
    p90 = next((b for q, b in bands.items() if abs(float(q) - 0.9) < 1e-6), None)
    peak_i = (
        max(range(len(mean)), key=lambda i: mean[i] if math.isfinite(mean[i]) else -math.inf)
        if mean
        else None
    )
    peak = mean[peak_i] if peak_i is not None else None
    peak90 = max((v for v in (p90 or []) if v is not None), default=None)
    peak_at = _ts(ts[peak_i]) if peak_i is not None else None
    limit = details.get("limit")
    ratio = float(details.get("threshold_ratio", 1.0))
    crosses = None
    if limit is not None:
        level = float(limit) * ratio
        hit = next(
            (t for t, v in zip(ts, mean, strict=False) if math.isfinite(v) and v >= level), None
        )
        if hit is not None:
            crosses = _ts(hit)
    service = _service_of(row)
    metric = fc.get("metric", "?")
    summary = f"{service} {metric}: peak {fmt(peak, unit)} (p50)"
    if peak90 is not None:
        summary += f", {fmt(peak90, unit)} (p90)"
    summary += f" at {when(peak_at)}" if peak_at else ""
    if limit is not None:
        what = (
            f"{ratio:.0%} of the limit {fmt(float(limit), unit)}"
            if ratio != 1.0
            else f"the limit {fmt(float(limit), unit)}"
        )
        summary += f"; reaches {what} at {when(crosses)}" if crosses else f"; stays below {what}"
    summary += f" (forecast made {when(fc.get('made_at') or row['observed_at'])})"
    return {
        "id": row["id"],
        "service": service,
        "metric": metric,
        "made": when(fc.get("made_at") or row["observed_at"]),
        "peak p50": fmt(peak, unit),
        "peak p90": fmt(peak90, unit) if peak90 is not None else "-",
        "peak at": when(peak_at),
        "crosses": when(crosses) if crosses else "-",
        "summary": summary,
    }


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
