"""The NLQ test world's metrics: series that, backfilled into a real Prometheus, give the
fixture's values at the fixture's "now" (cAdvisor, kube-state-metrics, HTTP/DB histograms).


Used by ``tests/nlqworld.py``; ``world_series`` is what gets backfilled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from promfixture import SeriesData

__all__ = ["GI", "MI", "clock_at", "fixture_now", "load_fixture", "service_of", "world_series"]

MI = 1024**2
GI = 1024**3
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


def load_fixture(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data.get("fixture", data)


def fixture_now(fx: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(fx["now"]).replace("Z", "+00:00"))


def _bytes(text: Any) -> float:
    m = re.fullmatch(r"([\d.]+)\s*(Mi|Gi|Ki)?", str(text))
    assert m, text
    return float(m.group(1)) * {"Mi": MI, "Gi": GI, "Ki": 1024, None: 1}[m.group(2)]


def _pct(text: Any) -> float:
    return float(str(text).rstrip("%")) / 100


def _secs(text: Any) -> float:
    s = str(text)
    return float(s[:-2]) / 1000 if s.endswith("ms") else float(s.rstrip("s"))


def clock_at(now: datetime, hhmm: str) -> datetime:
    """``hh:mm`` (UTC) on the day of ``now``."""
    h, m = hhmm.rstrip("Z").split(":")
    return now.replace(hour=int(h), minute=int(m), second=0, microsecond=0)


def service_of(pod: str, services: Sequence[str]) -> str:
    best = ""
    for svc in services:
        if pod.startswith(svc + "-") and len(svc) > len(best):
            best = svc
    return best or pod


# ---------------------------------------------------------------- metrics


def _grid(now: datetime) -> np.ndarray:
    # Five-minute samples over 30 hours, one-minute ones where instant queries look (the
    # last two hours, and around the same time yesterday): small enough to backfill fast.
    t = now.timestamp()
    coarse = np.arange(t - 30 * 3600, t + 1, 300.0)
    fine = np.concatenate([np.arange(t - 7200, t + 1, 60.0), np.arange(t - 87600, t - 85200, 60.0)])
    return np.unique(np.concatenate([coarse, fine]))


def _cumulative(ts: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """A counter whose per-second rate between samples is ``rate`` (left value)."""
    dt = np.diff(ts, prepend=ts[0])
    return np.cumsum(np.concatenate([[0.0], rate[:-1]]) * dt)


def _quantile_shape(q95: float, q99: float | None) -> dict[float, float]:
    """Cumulative shares per bucket bound so histogram_quantile gives q95 (and q99)."""

    def bucket(q: float) -> tuple[float, float]:
        lo = 0.0
        for b in BUCKETS:
            if q <= b:
                return lo, b
            lo = b
        raise ValueError(q)

    a1, b1 = bucket(q95)
    r1 = (q95 - a1) / (b1 - a1)
    m = 0.975
    f: dict[float, float] = {}
    if q99 is not None:
        a2, b2 = bucket(q99)
        assert a2 >= b1, (q95, q99)
        r2 = (q99 - a2) / (b2 - a2)
        m = min(0.9895, max(0.96, (0.99 - r2) / (1 - r2) + 0.0005 if r2 < 1 else 0.96))
        fb2 = m + (0.99 - m) / r2
    w1 = (m - 0.95) / (1 - r1)
    fa1 = m - w1
    assert fa1 >= 0
    for b in BUCKETS:
        if b <= a1:
            val = fa1
        elif b <= b1:
            val = m
        elif q99 is None:
            val = 1.0
        elif b < b2:
            val = m
        elif b == b2:
            val = fb2
        else:
            val = 1.0
        f[b] = val
    return f


def _segments_5xx(now: datetime, spec: Mapping[str, Any]) -> list[tuple[float, float, float]]:
    """(start, end, ratio) pieces giving the fixture's last_1h / today / last_24h ratios."""
    t = now.timestamp()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    h1, today, d1 = (_pct(spec[k]) for k in ("last_1h", "today", "last_24h"))
    today_s, day_s = t - midnight, 86400.0
    seg2 = (today * today_s - h1 * 3600) / (today_s - 3600)
    seg1 = (d1 * day_s - today * today_s) / (day_s - today_s)
    if "before_14_15Z" in spec:
        before = _pct(spec["before_14_15Z"])
        cut = clock_at(now, "14:15").timestamp()
        late = (h1 * 3600 - before * (cut - (t - 3600))) / (t - cut)
        calm = t - 2 * 3600
        early = (today * today_s - h1 * 3600 - before * (t - 3600 - calm)) / (calm - midnight)
        return [
            (0, midnight, seg1), (midnight, calm, early), (calm, cut, before), (cut, t + 1, late),
        ]  # fmt: skip
    return [(0, midnight, seg1), (midnight, t - 3600, seg2), (t - 3600, t + 1, h1)]


def world_series(fx: Mapping[str, Any]) -> list[SeriesData]:
    now = fixture_now(fx)
    ts = _grid(now)
    out: list[SeriesData] = []
    services = [s for group in fx["services"].values() for s in group]
    nodes = list(fx.get("nodes", {}))

    def add(name: str, labels: Mapping[str, str], values: np.ndarray, start: float = 0.0) -> None:
        keep = ts >= start
        out.append(
            SeriesData(
                name, dict(labels), list(zip(ts[keep].tolist(), values[keep].tolist(), strict=True))
            )
        )

    const = lambda v: np.full(ts.shape, float(v))  # noqa: E731
    api_knots = fx.get("metrics", {}).get("api_cpu_total_cores", {})
    pod_index = 0
    for ns, pods in fx["pods"].items():
        for pod, spec in pods.items():
            svc = service_of(pod, services)
            base = {"namespace": ns, "pod": pod}
            started = clock_at(now, spec["started"]).timestamp() if spec.get("started") else 0.0
            node = nodes[pod_index % len(nodes)] if nodes else "node-a"
            pod_index += 1
            add("kube_pod_labels", {**base, "label_app": svc}, const(1), started)
            add("kube_pod_info", {**base, "node": node}, const(1), started)
            status = spec["status"]
            phase = {"CrashLoopBackOff": "Running", "Error": "Failed"}.get(status, status)
            add("kube_pod_status_phase", {**base, "phase": phase}, const(1), started)
            cont = {**base, "container": svc}
            if status == "CrashLoopBackOff":
                add(
                    "kube_pod_container_status_waiting_reason", {**cont, "reason": status}, const(1)
                )
            if status == "Error":
                add(
                    "kube_pod_container_status_terminated_reason",
                    {**cont, "reason": "Error"},
                    const(1),
                )
            if "exit_code" in spec:
                add(
                    "kube_pod_container_status_last_terminated_exitcode",
                    cont,
                    const(spec["exit_code"]),
                )
            if spec.get("last_termination"):
                add(
                    "kube_pod_container_status_last_terminated_reason",
                    {**cont, "reason": spec["last_termination"]},
                    const(1),
                )
            elif status == "CrashLoopBackOff":
                add(
                    "kube_pod_container_status_last_terminated_reason",
                    {**cont, "reason": "Error"},
                    const(1),
                )
            for key, value in (spec.get("annotations") or {}).items():
                add("kube_pod_annotations", {**base, f"annotation_{key}": str(value)}, const(1))
            # restarts: at the listed OOMKill times, or spread over the last hour
            restarts = int(spec.get("restarts_24h", 0))
            times = [clock_at(now, t).timestamp() for t in spec.get("oomkills_at", [])]
            if restarts and not times:
                times = [now.timestamp() - 3240 + k * 420 for k in range(restarts)]
            counter = np.array([sum(1 for t in times if t <= x) for x in ts], dtype=float)
            add("kube_pod_container_status_restarts_total", cont, counter, started)
            if status == "Error":
                continue
            cpu = float(spec.get("cpu", 0))
            rate = np.full(ts.shape, cpu)
            if svc == "api" and api_knots:
                total_now = sum(
                    float(p.get("cpu", 0))
                    for n, p in fx["pods"]["platform"].items()
                    if n.startswith("api-")
                )
                kt = [clock_at(now, k).timestamp() for k in api_knots]
                kv = [float(v) for v in api_knots.values()]
                # the last knot is "now": reach it 75 minutes early so the last hour is flat
                kt[-1] = now.timestamp() - 4500
                rate = cpu * np.interp(ts, kt, kv) / total_now
            add("container_cpu_usage_seconds_total", cont, _cumulative(ts, rate), started)
            mem = _bytes(spec.get("mem", "0Mi"))
            memv = np.full(ts.shape, mem)
            if times and spec.get("mem_limit"):
                limit = _bytes(spec["mem_limit"])
                knots_t = [ts[0], times[0] - 7200]
                knots_v = [0.55 * limit, 0.6 * limit]
                for t in times:
                    knots_t += [t - 1, t]
                    knots_v += [limit * 0.999, 0.4 * limit]
                knots_t += [times[-1] + 6 * 3600, ts[-1]]
                knots_v += [mem, mem]
                memv = np.interp(ts, knots_t, knots_v)
            add("container_memory_working_set_bytes", cont, memv, started)
            if spec.get("mem_limit"):
                add(
                    "kube_pod_container_resource_limits",
                    {**cont, "resource": "memory"},
                    const(_bytes(spec["mem_limit"])),
                    started,
                )
    # node requests: split each node's requested share over synthetic per-node requests
    for node, spec in fx.get("nodes", {}).items():
        for resource, alloc, key in (
            ("memory", 16 * GI, "mem_requested"),
            ("cpu", 8.0, "cpu_requested"),
        ):
            add("kube_node_status_allocatable", {"node": node, "resource": resource}, const(alloc))
            add(
                "kube_pod_container_resource_requests",
                {
                    "node": node,
                    "resource": resource,
                    "namespace": "kube-system",
                    "pod": f"requests-{node}",
                },
                const(_pct(spec[key]) * alloc),
            )
    for name, spec in fx.get("hpa", {}).items():
        ns = next(n for n, svcs in fx["services"].items() if name in svcs)
        lab = {"namespace": ns, "horizontalpodautoscaler": name}
        add("kube_horizontalpodautoscaler_spec_min_replicas", lab, const(spec["min"]))
        add("kube_horizontalpodautoscaler_spec_max_replicas", lab, const(spec["max"]))
        add("kube_horizontalpodautoscaler_status_current_replicas", lab, const(spec["current"]))
    for ns, svcs in fx["services"].items():
        for svc in svcs:
            pods = [p for p in fx["pods"].get(ns, {}) if service_of(p, services) == svc]
            starts = [
                clock_at(now, fx["pods"][ns][p]["started"]).timestamp()
                if fx["pods"][ns][p].get("started")
                else 0
                for p in pods
            ]
            replicas = np.array([sum(1 for s in starts if s <= x) for x in ts], dtype=float)
            lab = {"namespace": ns, "deployment": svc}
            add("kube_deployment_spec_replicas", lab, replicas)
            add("kube_deployment_status_replicas", lab, replicas)
            add("kube_deployment_status_replicas_available", lab, replicas)
    for key, spec in fx.get("pvcs", {}).items():
        ns, name = key.split("/")
        lab = {"namespace": ns, "persistentvolumeclaim": name}
        add("kubelet_volume_stats_used_bytes", lab, const(_bytes(spec["used"])))
        add("kubelet_volume_stats_capacity_bytes", lab, const(_bytes(spec["capacity"])))
    out += _http_series(fx, ts, now, services)
    return out


def _http_series(
    fx: Mapping[str, Any], ts: np.ndarray, now: datetime, services: list[str]
) -> list[SeriesData]:
    metrics = fx.get("metrics", {})
    ratios = metrics.get("http_5xx_ratio", {})
    lat = metrics.get("http_latency_last_1h", {})
    rps_spec = metrics.get("http_rps", {})
    default_rps = {
        "search": 80.0,
        "cart": 40.0,
        "api": 200.0,
        "auth": 150.0,
        "payments-api": 30.0,
        "checkout": 100.0,
    }
    ns_of = {s: n for n, group in fx["services"].items() for s in group}
    out: list[SeriesData] = []
    t = now.timestamp()
    for svc in sorted(set(ratios) | set(lat) | set(rps_spec)):
        if svc in rps_spec:
            spec = rps_spec[svc]
            rate = np.interp(
                ts,
                [t - 86400 + 600, t - 7200],
                [float(spec["same_time_yesterday"]), float(spec["now"])],
            )
        else:
            rate = np.full(ts.shape, default_rps.get(svc, 50.0))
        frac = np.zeros(ts.shape)
        for a, b, r in _segments_5xx(now, ratios[svc]) if svc in ratios else []:
            frac[(ts >= a) & (ts < b)] = r
        base = {"namespace": ns_of.get(svc, "default"), "service": svc}
        errors = _cumulative(ts, rate * frac)
        total = _cumulative(ts, rate)
        out.append(
            SeriesData(
                "http_requests_total",
                {**base, "code": "500"},
                list(zip(ts.tolist(), errors.tolist(), strict=True)),
            )
        )
        out.append(
            SeriesData(
                "http_requests_total",
                {**base, "code": "200"},
                list(zip(ts.tolist(), (total - errors).tolist(), strict=True)),
            )
        )
        if svc in lat:
            shape = _quantile_shape(_secs(lat[svc]["p95"]), _secs(lat[svc]["p99"]))
            for le, share in [*shape.items(), (float("inf"), 1.0)]:
                out.append(
                    SeriesData(
                        "http_request_duration_seconds_bucket",
                        {**base, "le": "+Inf" if le == float("inf") else repr(le)},
                        list(zip(ts.tolist(), (total * share).tolist(), strict=True)),
                    )
                )
    for query, p95 in metrics.get("db_query_p95_last_1h", {}).items():
        shape = _quantile_shape(_secs(p95), None)
        total = _cumulative(ts, np.full(ts.shape, 10.0))
        base = {"namespace": ns_of.get("orders-db", "data"), "service": "orders-db", "query": query}
        for le, share in [*shape.items(), (float("inf"), 1.0)]:
            out.append(
                SeriesData(
                    "db_query_duration_seconds_bucket",
                    {**base, "le": "+Inf" if le == float("inf") else repr(le)},
                    list(zip(ts.tolist(), (total * share).tolist(), strict=True)),
                )
            )
    return out
