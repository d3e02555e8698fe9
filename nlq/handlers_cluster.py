"""Answers about the cluster's state: ``pods_status``, ``capacity`` and ``health_summary``.

Pod states come from the Kubernetes read API when a ``ClusterReader`` is given, else from
kube-state-metrics through Prometheus; capacity from kube-state and kubelet metrics; the
health summary joins open anomalies and pending approvals (store) with pod states and
error ratios. Cluster data (labels, annotations) is shown as data, never followed.
Called by ``vigil.nlq.engine``'s dispatch table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vigil.nlq import promql
from vigil.nlq.answer import Answer, Query
from vigil.nlq.context import Ctx, fmt, sql_time, when
from vigil.nlq.timeparse import default_range

__all__ = ["capacity", "health_summary", "pod_states", "pods_status"]


@dataclass
class PodState:
    namespace: str
    pod: str
    status: str
    restarts: float | None = None
    last_termination: str = ""
    exit_code: int | None = None
    started: float | None = None

    @property
    def healthy(self) -> bool:
        return self.status in {"Running", "Succeeded"}


def _by_pod(ctx: Ctx, expr: str) -> dict[tuple[str, str], tuple[float, dict[str, str]]]:
    m = ctx.m
    out = {}
    for s in ctx.prom(expr):
        key = (s.labels.get(m.namespace_label, ""), s.labels.get(m.pod_label, ""))
        out[key] = (s.value, dict(s.labels))
    return out


def pod_states(ctx: Ctx) -> list[PodState]:
    """Every pod in scope (namespace/service/pod of the question) with its state."""
    e, m = ctx.ent, ctx.m
    if ctx.cluster is not None:
        states = []
        ctx.queries.append(_k8s_query(e.namespace))
        for p in ctx.cluster.list_pods(e.namespace):
            # a failed pod reads as its container's reason (Error, OOMKilled), as kubectl shows
            failed = p.last_termination_reason if p.phase == "Failed" else None
            status = p.waiting_reason or failed or p.phase
            states.append(
                PodState(
                    p.ref.namespace or "",
                    p.ref.name,
                    status,
                    p.restarts,
                    p.last_termination_reason or "",
                    p.last_exit_code,
                    p.started_at.timestamp() if p.started_at else None,
                )
            )
        return _scope(ctx, states)
    labels = {m.namespace_label: e.namespace, m.pod_label: e.pod}
    keys = f"{m.namespace_label}, {m.pod_label}"
    phase = _by_pod(ctx, f"max by ({keys}, phase) ({promql.selector(m.pod_phase, labels)} == 1)")
    waiting = _by_pod(
        ctx, f"max by ({keys}, reason) ({promql.selector(m.waiting_reason, labels)} == 1)"
    )
    terminated = _by_pod(
        ctx, f"max by ({keys}, reason) ({promql.selector(m.terminated_reason, labels)} == 1)"
    )
    last = _by_pod(
        ctx, f"max by ({keys}, reason) ({promql.selector(m.last_terminated_reason, labels)} == 1)"
    )
    codes = _by_pod(ctx, f"max by ({keys}) ({promql.selector(m.last_terminated_exitcode, labels)})")
    restarts = _by_pod(
        ctx, f"sum by ({keys}) (increase({promql.selector(m.restarts, labels)}[24h]))"
    )
    states = []
    for key, (_, lab) in sorted(phase.items()):
        status = lab.get("phase", "Unknown")
        if key in waiting:
            status = waiting[key][1].get("reason", status)
        elif key in terminated:
            status = terminated[key][1].get("reason", status)
        code = codes.get(key, (math.nan, {}))[0]
        states.append(
            PodState(
                key[0],
                key[1],
                status,
                restarts.get(key, (None, {}))[0],
                last.get(key, (0.0, {}))[1].get("reason", ""),
                int(code) if math.isfinite(code) else None,
            )
        )
    return _scope(ctx, states)


def _k8s_query(namespace: str | None) -> Query:
    return Query("k8s", "list pods", (namespace,) if namespace else ())


def _scope(ctx: Ctx, states: list[PodState]) -> list[PodState]:
    e = ctx.ent
    if e.pod:
        return [s for s in states if s.pod == e.pod]
    if e.service:
        pods = set(ctx.inv.pods_of(e.service))
        return [s for s in states if s.pod in pods or s.pod.startswith(e.service + "-")]
    return states


def pods_status(ctx: Ctx) -> Answer:
    e = ctx.ent
    states = pod_states(ctx)
    lower = ctx.question.lower()
    where = e.pod or e.service or (f"namespace {e.namespace}" if e.namespace else "the cluster")
    if not states:
        return ctx.answer("pods_status", headline=f"No pods found for {where}.")
    shown = states
    head = ""
    if re.search(r"pending", lower):
        shown = [s for s in states if s.status == "Pending"]
        head = (
            f"Nothing is Pending in {where}."
            if not shown
            else f"{len(shown)} pod(s) Pending in {where}."
        )
    elif re.search(r"crash|restart", lower):
        shown = [s for s in states if s.status == "CrashLoopBackOff" or (s.restarts or 0) >= 0.5]
    elif re.search(r"oom", lower):
        shown = [s for s in states if s.last_termination == "OOMKilled"]
    elif re.search(r"not running|broken|unhealthy|fail|error|stuck|wrong|down", lower):
        shown = [s for s in states if not s.healthy]
    bad = [s for s in states if not s.healthy]
    summary = f"{len(states) - len(bad)} of {len(states)} pods running in {where}"
    if bad:
        summary += "; not running: " + ", ".join(
            f"{s.pod} ({s.status}{f', exit code {s.exit_code}' if s.exit_code is not None else ''})"
            for s in bad
        )
    summary += "."
    if shown is not states and not shown and not head:
        head = f"No pods match in {where}."
    head = (head + " " + summary).strip()
    rows = [
        {
            "pod": s.pod,
            "namespace": s.namespace,
            "status": s.status,
            "restarts 24h": fmt(s.restarts, "") if s.restarts is not None else "-",
            "last termination": s.last_termination or "-",
            "exit code": s.exit_code if s.exit_code is not None else "-",
        }
        for s in (shown or states)
    ]
    cols = ["pod", "namespace", "status", "restarts 24h", "last termination", "exit code"]
    if e.service and ctx.metrics is not None and re.search(r"replica|how many", lower):
        head += _replicas(ctx)
    return ctx.answer("pods_status", headline=head, columns=cols, rows=rows)


def _replicas(ctx: Ctx) -> str:
    e, m = ctx.ent, ctx.m
    labels = {m.namespace_label: e.namespace, m.deployment_label: e.service}
    desired = [s.value for s in ctx.prom(promql.selector(m.deployment_desired, labels))]
    ready = [s.value for s in ctx.prom(promql.selector(m.deployment_available, labels))]
    if not desired:
        return ""
    avail = f"{int(ready[0])} available" if ready else "availability unknown"
    return f" Deployment {e.service}: {int(desired[0])} replicas desired, {avail}."


def capacity(ctx: Ctx) -> Answer:
    e, m = ctx.ent, ctx.m
    lower = ctx.question.lower()
    want_nodes = bool(
        re.search(
            r"node|cpu|memory|mem|ram|room|schedul|allocat|request|commit|headroom|capacity|capcity|pressure",
            lower,
        )
    )
    want_hpa = bool(re.search(r"hpa|autoscal|scale|replica|max", lower)) or e.service is not None
    want_pvc = bool(re.search(r"pvc|volume|disk|storage|space|fill|full", lower))
    if not (want_nodes or want_hpa or want_pvc) or re.search(r"headroom|capacity|capcity", lower):
        want_nodes = want_hpa = want_pvc = True
    rows: list[dict[str, object]] = []
    lines: list[str] = []
    everything = want_nodes and want_hpa and want_pvc
    if want_nodes and (everything or not (want_pvc and not re.search(r"node|cpu|mem", lower))):
        asked = [
            r
            for r in ("memory", "cpu")
            if re.search(r"cpu|core" if r == "cpu" else r"mem|ram", lower)
        ]
        for resource in asked or ["memory", "cpu"]:
            req = promql.selector(m.resource_requests, {}, f'resource="{resource}"')
            alloc = promql.selector(m.node_allocatable, {}, f'resource="{resource}"')
            expr = f"sum by ({m.node_label}) ({req}) / sum by ({m.node_label}) ({alloc})"
            for s in sorted(ctx.prom(expr), key=lambda s: str(s.labels.get(m.node_label, ""))):
                rows.append(
                    {
                        "kind": "node",
                        "name": s.labels.get(m.node_label),
                        "what": f"{resource} requested",
                        "value": fmt(s.value, "ratio"),
                        "headroom": fmt(1 - s.value, "ratio"),
                    }
                )
        if rows:
            fullest = max(rows, key=lambda r: float(str(r["value"]).split()[0]))
            lines.append(
                f"Fullest node: {fullest['name']} at {fullest['value']} {fullest['what']}."
            )
    if want_hpa:
        labels = {m.namespace_label: e.namespace if not e.service else None, m.hpa_label: e.service}
        mins = {
            s.labels.get(m.hpa_label): s.value for s in ctx.prom(promql.selector(m.hpa_min, labels))
        }
        maxs = {
            s.labels.get(m.hpa_label): s.value for s in ctx.prom(promql.selector(m.hpa_max, labels))
        }
        curs = {
            s.labels.get(m.hpa_label): s.value
            for s in ctx.prom(promql.selector(m.hpa_current, labels))
        }
        for name in sorted(maxs, key=str):
            cur, hi = curs.get(name, math.nan), maxs[name]
            rows.append(
                {
                    "kind": "hpa",
                    "name": name,
                    "what": f"replicas (min {int(mins.get(name, 0))})",
                    "value": f"{int(cur)} of max {int(hi)}" if math.isfinite(cur) else "?",
                    "headroom": f"{int(hi - cur)} replicas" if math.isfinite(cur) else "?",
                }
            )
            lines.append(
                f"HPA {name}: {int(cur)} replicas, bounds {int(mins.get(name, 0))}–{int(hi)}"
                + (" (at max)" if cur >= hi else f", room for {int(hi - cur)} more")
                + "."
            )
        if e.service and not maxs:
            lines.append(f"No HPA found for {e.service}.")
    if want_pvc:
        labels = {m.namespace_label: e.namespace}
        used = {
            s.labels.get(m.pvc_label): s.value
            for s in ctx.prom(promql.selector(m.pvc_used, labels))
        }
        cap = {
            s.labels.get(m.pvc_label): s.value
            for s in ctx.prom(promql.selector(m.pvc_capacity, labels))
        }
        for name in sorted(used, key=str):
            total = cap.get(name)
            share = used[name] / total if total else math.nan
            rows.append(
                {
                    "kind": "pvc",
                    "name": name,
                    "what": "used",
                    "value": f"{fmt(used[name], 'bytes')} of {fmt(total, 'bytes')}",
                    "headroom": fmt(1 - share, "ratio") if math.isfinite(share) else "?",
                }
            )
            if math.isfinite(share):
                lines.append(
                    f"PVC {name}: {fmt(used[name], 'bytes')} of {fmt(total, 'bytes')} used "
                    f"({fmt(share, 'ratio')})."
                )
    if not rows:
        return ctx.answer(
            "capacity",
            headline="No capacity data (node, HPA or volume metrics) found.",
            details=lines,
        )
    return ctx.answer(
        "capacity",
        headline=lines[0] if lines else "Capacity:",
        details=lines[1:],
        columns=["kind", "name", "what", "value", "headroom"],
        rows=rows,
    )


def _target_scope(ctx: Ctx) -> tuple[str, list[object]]:
    """`` AND …`` limiting actions to the question's namespace and service (or its pods)."""
    e = ctx.ent
    sql, params = "", list[object]()
    if e.namespace:
        sql += " AND target_namespace = ?"
        params.append(e.namespace)
    if e.service:
        names = [e.service, *ctx.inv.pods_of(e.service)]
        sql += f" AND target_name IN ({', '.join('?' for _ in names)})"
        params += names
    return sql, params


def health_summary(ctx: Ctx) -> Answer:
    e = ctx.ent
    scope = e.service or e.namespace or "the cluster"
    lines: list[str] = []
    ids: list[str] = []
    problems = 0
    if ctx.store is not None:
        sql = (
            "SELECT id, severity, target_namespace, target_name, "
            "json_extract(anomaly, '$.metric') AS metric FROM findings "
            "WHERE kind = 'anomaly' AND resolved_at IS NULL"
        )
        params: list[object] = []
        if e.namespace:
            sql += " AND target_namespace = ?"
            params.append(e.namespace)
        if e.service:
            sql += " AND target_name = ?"
            params.append(e.service)
        rows = ctx.sql(sql + " ORDER BY started_at DESC", params)
        problems += len(rows)
        if rows:
            lines.append(
                f"{len(rows)} open anomal{'y' if len(rows) == 1 else 'ies'}: "
                + "; ".join(
                    f"#{r['id']} {r['target_name']} {r['metric']} ({r['severity']})" for r in rows
                )
                + "."
            )
            ids += [str(r["id"]) for r in rows]
        else:
            lines.append("No open anomalies.")
        sql = "SELECT id, playbook, target_namespace, target_name FROM actions WHERE status = ?"
        params = ["pending-approval"]
        scope_sql, scope_params = _target_scope(ctx)
        sql += scope_sql
        params += scope_params
        pend = ctx.sql(sql + " ORDER BY created_at", params)
        if pend:
            lines.append(
                f"{len(pend)} action(s) waiting for approval: "
                + "; ".join(
                    f"#{r['id']} {r['playbook']} {r['target_namespace']}/{r['target_name']}"
                    for r in pend
                )
                + "."
            )
        sql = "SELECT COUNT(*) AS n FROM actions WHERE created_at >= ?" + scope_sql  # noqa: S608 (only "?" marks)
        params = [sql_time(default_range("last_24h", ctx.now).start), *scope_params]
        recent = ctx.sql(sql, params)
        if recent and recent[0]["n"]:
            lines.append(f"{recent[0]['n']} action(s) journaled in the last 24 hours.")
    if ctx.metrics is not None or ctx.cluster is not None:
        states = pod_states(ctx)
        bad = [s for s in states if not s.healthy]
        problems += len(bad)
        if states:
            lines.append(
                f"{len(states) - len(bad)} of {len(states)} pods running"
                + (
                    ": not running " + ", ".join(f"{s.pod} ({s.status})" for s in bad)
                    if bad
                    else ""
                )
                + "."
            )
    if ctx.metrics is not None:
        m = ctx.m
        expr = promql.http_error_ratio(m, seconds=3600, service=e.service, by_service=True)
        hot = [s for s in ctx.prom(expr) if math.isfinite(s.value) and s.value > 0.01]
        if e.namespace and not e.service:
            hot = [
                s
                for s in hot
                if ctx.inv.service_ns.get(s.labels.get(m.service_label, "")) == e.namespace
            ]
        problems += len(hot)
        if hot:
            lines.append(
                "5xx above 1 % (last hour): "
                + ", ".join(
                    f"{s.labels.get(m.service_label)} {fmt(s.value, 'ratio')}"
                    for s in sorted(hot, key=lambda s: -s.value)
                )
                + "."
            )
    verdict = "needs attention" if problems else "looks healthy"
    head = f"{scope[0].upper() + scope[1:]} {verdict} ({when(ctx.now)})."
    return ctx.answer("health_summary", headline=head, details=lines, ids=ids)
