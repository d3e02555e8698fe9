"""Answers from Prometheus: ``metric_top``, ``metric_value``, ``metric_trend``, ``latency``
and ``error_rate``.

Each handler builds PromQL through ``vigil.nlq.promql`` from resolved names only, runs it
through the recording ``Ctx`` and answers with a one-line explanation, a table and (for
trends) a sparkline. Called by ``vigil.nlq.engine``'s dispatch table.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import numpy as np

from vigil.nlq import promql
from vigil.nlq.answer import Answer, sparkline
from vigil.nlq.context import UNITS, WORDS, Ctx, fmt, when
from vigil.nlq.timeparse import TimeRange, default_range

__all__ = ["error_rate", "latency", "metric_top", "metric_trend", "metric_value"]

_POD_METRICS = {"cpu", "memory", "restarts"}


def _range(ctx: Ctx, default: str) -> TimeRange:
    if ctx.ent.time_range is None:
        ctx.ent.time_range = default_range(default, ctx.now)
    return ctx.ent.time_range


def _target(ctx: Ctx) -> str:
    e = ctx.ent
    if e.pod:
        return f"pod {e.namespace}/{e.pod}" if e.namespace else f"pod {e.pod}"
    if e.service:
        return e.service
    if e.namespace:
        return f"namespace {e.namespace}"
    return "the cluster"


def _service_metric_expr(ctx: Ctx, metric: str, seconds: int, *, by_service: bool) -> str:
    e, m = ctx.ent, ctx.m
    if metric == "request_rate":
        return promql.http_rate(m, seconds=seconds, service=e.service, by_service=by_service)
    if metric == "http_5xx_ratio":
        return promql.http_error_ratio(m, seconds=seconds, service=e.service, by_service=by_service)
    q = 0.99 if metric == "http_latency_p99" else 0.95
    by = (m.service_label,) if by_service else ()
    return promql.histogram_quantile(
        m.http_duration_bucket, q, {m.service_label: e.service}, by, seconds
    )


def metric_top(ctx: Ctx) -> Answer:
    e, m = ctx.ent, ctx.m
    metric = e.metric or "cpu"
    if metric in {"db_query_duration", "http_latency_p95", "http_latency_p99"} and (
        metric == "db_query_duration" or re.search(r"quer|sql|statement", ctx.question.lower())
    ):
        return latency(ctx)
    if metric in {"node_memory_requested", "pvc_usage"}:
        metric = "memory"
    e.metric = metric
    rng = _range(ctx, "last_1h")
    # "right now" ranks by the last five minutes (a day for restarts), not a single sample
    window = rng.seconds if not rng.instant else (86400 if metric == "restarts" else 300)
    limit = e.limit or ctx.settings.default_limit
    e.limit = limit
    unit = UNITS[metric]
    per_service = bool(re.search(r"\b(services|service|deployments|apps)\b", ctx.question.lower()))
    per_ns = bool(re.search(r"\bnamespaces\b", ctx.question.lower())) and not e.namespace
    if metric in _POD_METRICS:
        expr = promql.pod_metric(
            m, metric, seconds=window, namespace=e.namespace, service=e.service, pod=e.pod
        )
        if per_ns:
            expr = f"sum by ({m.namespace_label}) ({expr})"
            per_service = False
        elif per_service and not e.service:
            keys = f"{m.namespace_label}, {m.pod_service_label}"
            expr = f"sum by ({keys}) ({expr}{promql.service_join(m, e.namespace, None)})"
        samples = ctx.prom(promql.by_pod(m, expr, top=limit), at=rng.end)
        label, key = m.pod_label, "pod"
        if per_ns:
            label, key = m.namespace_label, "namespace"
        elif per_service and not e.service:
            label, key = m.pod_service_label, "service"
        name_of = lambda s: s.labels.get(label, "?")  # noqa: E731
    else:
        expr = _service_metric_expr(ctx, metric, window, by_service=True)
        samples = ctx.prom(f"topk({limit}, {expr})", at=rng.end)
        name_of = lambda s: s.labels.get(m.service_label, "?")  # noqa: E731
        key = "service"
    samples = [s for s in samples if math.isfinite(s.value)]
    samples.sort(key=lambda s: -s.value)
    scope = f" in {e.namespace}" if e.namespace and not e.service else ""
    scope += f" of {e.service}" if e.service else ""
    if not samples:
        return ctx.answer(
            "metric_top",
            headline=f"No {WORDS[metric]} data{scope} for {rng.describe()}: nothing to rank.",
        )
    rows = [
        {
            "rank": i + 1,
            key: name_of(s),
            "namespace": s.labels.get(m.namespace_label, ""),
            WORDS[metric]: fmt(s.value, unit),
        }
        for i, s in enumerate(samples[:limit])
    ]
    first = rows[0]
    head = (
        f"Top {len(rows)} {key}s by {WORDS[metric]}{scope} ({rng.describe()}): "
        f"{first[key]} leads with {first[WORDS[metric]]}."
    )
    cols = (
        ["rank", key, WORDS[metric]]
        if key == "namespace"
        else ["rank", key, "namespace", WORDS[metric]]
    )
    return ctx.answer("metric_top", headline=head, columns=cols, rows=rows)


def _value_expr(ctx: Ctx, metric: str, seconds: int) -> str:
    e, m = ctx.ent, ctx.m
    if metric in _POD_METRICS:
        return promql.pod_metric(
            m, metric, seconds=seconds, namespace=e.namespace, service=e.service, pod=e.pod
        )
    return _service_metric_expr(ctx, metric, seconds, by_service=False)


def metric_value(ctx: Ctx) -> Answer:
    e, m = ctx.ent, ctx.m
    metric = e.metric or "memory"
    if metric in {"http_latency_p95", "http_latency_p99", "db_query_duration"}:
        return latency(ctx)
    if metric == "http_5xx_ratio":
        return error_rate(ctx)
    if metric in {"node_memory_requested", "pvc_usage"}:
        metric = "memory"
    e.metric = metric
    rng = _range(ctx, "now")
    if not rng.instant and metric != "restarts" and (rng.name == "range" or rng.seconds > 3600):
        return metric_trend(ctx)  # a value over hours is a trend: show its shape
    seconds = rng.seconds if not rng.instant else (86400 if metric == "restarts" else 300)
    if metric not in _POD_METRICS and e.pod and not e.service:
        return ctx.answer(
            "metric_value",
            headline=f"{WORDS[metric]} is measured per service; pod {e.pod} has no service label.",
        )
    samples = [
        s for s in ctx.prom(_value_expr(ctx, metric, seconds), at=rng.end) if math.isfinite(s.value)
    ]
    unit = UNITS[metric]
    span = "now" if rng.instant else rng.describe()
    if metric == "restarts" and rng.instant:
        span = "in the last 24 hours"
    if not samples:
        return ctx.answer(
            "metric_value", headline=f"No {WORDS[metric]} data for {_target(ctx)} ({span})."
        )
    total = float(sum(s.value for s in samples))
    rows = [
        {"pod": s.labels.get(m.pod_label, e.service or ""), WORDS[metric]: fmt(s.value, unit)}
        for s in sorted(samples, key=lambda s: -s.value)
    ]
    many = f" across {len(samples)} pods" if len(samples) > 1 else ""
    head = f"{_target(ctx)}: {WORDS[metric]} {fmt(total, unit)}{many} ({span})."
    cols = ["pod", WORDS[metric]] if metric in _POD_METRICS and len(rows) > 1 else []
    return ctx.answer("metric_value", headline=head, columns=cols, rows=rows if cols else [])


def metric_trend(ctx: Ctx) -> Answer:
    e = ctx.ent
    metric = e.metric or "cpu"
    if metric in {"node_memory_requested", "pvc_usage"}:
        metric = "memory"
    e.metric = metric
    rng = _range(ctx, "last_6h")
    if rng.instant:
        rng = default_range("last_6h", ctx.now)
        e.time_range = rng
    unit = UNITS[metric]
    # ten-minute windows: at least two samples each at common scrape intervals
    seconds = 600
    if metric in {"http_latency_p95", "http_latency_p99"}:
        seconds = 900
    expr = _value_expr(ctx, metric, 3600 if metric == "restarts" else seconds)
    if metric in _POD_METRICS:
        expr = f"sum ({expr})"
    series = ctx.prom_range(expr, rng.start, rng.end)
    values = np.concatenate([s.values for s in series]) if series else np.array([])
    finite = values[np.isfinite(values)] if values.size else values
    if not series or finite.size == 0:
        return ctx.answer(
            "metric_trend",
            headline=f"No {WORDS[metric]} data for {_target(ctx)} ({rng.describe()}).",
        )
    vals = series[0].values
    ok = vals[np.isfinite(vals)]
    first, last = float(ok[0]), float(ok[-1])
    scale = max(abs(first), abs(float(ok.max())), 1e-12)
    change = (last - first) / abs(first) * 100 if first else (last - first) / scale * 100
    direction = "up" if change > 5 else "down" if change < -5 else "about flat"
    head = (
        f"{_target(ctx)} {WORDS[metric]} over {rng.describe()}: {fmt(first, unit)} → "
        f"{fmt(last, unit)} ({direction}, {change:+.0f} %); min {fmt(float(ok.min()), unit)}, "
        f"max {fmt(float(ok.max()), unit)}."
    )
    lower = ctx.question.lower()
    if re.search(r"drop|fall|fell|down|decreas|declin|lower", lower):
        head = ("Yes: " if change < -5 else "No: ") + head
    elif re.search(r"ris|up\b|increas|grow|climb|spik|higher|leak|busier", lower):
        head = ("Yes: " if change > 5 else "No: ") + head
    notes: list[str] = []
    if e.compare_to:
        back = timedelta(days=7 if e.compare_to == "last_week" else 1)
        earlier = [s for s in ctx.prom(expr, at=rng.end - back) if math.isfinite(s.value)]
        if earlier:
            then = float(earlier[0].value)
            diff = (last - then) / abs(then) * 100 if then else 0.0
            word = "yesterday" if e.compare_to == "yesterday" else "a week earlier"
            head = (
                f"{_target(ctx)} {WORDS[metric]}: {fmt(last, unit)} now vs {fmt(then, unit)} at "
                f"the same time {word} ({diff:+.0f} %, {'higher' if diff > 0 else 'lower'})."
            )
        else:
            notes.append(f"No data at the same time {e.compare_to.replace('_', ' ')}.")
    spark = f"{when(rng.start)} {sparkline(list(vals))} {when(rng.end)}"
    return ctx.answer("metric_trend", headline=head, spark=spark, notes=notes)


def latency(ctx: Ctx) -> Answer:
    e, m = ctx.ent, ctx.m
    rng = _range(ctx, "last_1h")
    lower = ctx.question.lower()
    db = e.metric == "db_query_duration" or bool(
        re.search(r"quer|sql|statement|\bdb\b|database", lower)
    )
    if rng.instant:
        rng = default_range("last_1h", ctx.now)
        e.time_range = rng
    if db:
        e.metric = "db_query_duration"
        threshold = e.threshold_ms or ctx.settings.slow_query_threshold_ms
        e.threshold_ms = threshold
        labels = {m.service_label: e.service} if e.service else {}
        expr = promql.histogram_quantile(
            m.db_duration_bucket,
            e.quantile or 0.95,
            labels,
            (m.service_label, m.query_label),
            rng.seconds,
        )
        samples = [s for s in ctx.prom(expr, at=rng.end) if math.isfinite(s.value)]
        samples.sort(key=lambda s: -s.value)
        slow = [s for s in samples if s.value * 1000 > threshold]
        q = f"p{int((e.quantile or 0.95) * 100)}"
        if not samples:
            return ctx.answer(
                "latency", headline=f"No database query timings for {rng.describe()}."
            )
        rows = [
            {
                "query": s.labels.get(m.query_label, "?"),
                "service": s.labels.get(m.service_label, ""),
                q: fmt(s.value, "seconds"),
            }
            for s in slow
        ]
        head = (
            f"{len(slow)} of {len(samples)} database queries have {q} above "
            f"{fmt(threshold / 1000, 'seconds')} ({rng.describe()})"
            + (f"; slowest: {rows[0]['query']} at {rows[0][q]}." if rows else ".")
        )
        return ctx.answer("latency", headline=head, columns=["query", "service", q], rows=rows)
    if e.metric not in {"http_latency_p95", "http_latency_p99"}:
        e.metric = "http_latency_p99" if e.quantile == 0.99 else "http_latency_p95"
    if e.service:
        results: dict[float, float | None] = {}
        for quant in (0.95, 0.99):
            expr = promql.histogram_quantile(
                m.http_duration_bucket, quant, {m.service_label: e.service}, (), rng.seconds
            )
            got = [s.value for s in ctx.prom(expr, at=rng.end) if math.isfinite(s.value)]
            results[quant] = got[0] if got else None
        if results[0.95] is None:
            return ctx.answer(
                "latency", headline=f"No request latency data for {e.service} ({rng.describe()})."
            )
        head = (
            f"{e.service} latency ({rng.describe()}): p95 {fmt(results[0.95], 'seconds')}, "
            f"p99 {fmt(results[0.99], 'seconds')}."
        )
        return ctx.answer("latency", headline=head)
    quant = 0.99 if e.metric == "http_latency_p99" else 0.95
    labels = {m.namespace_label: e.namespace} if e.namespace else {}
    by_q: dict[float, dict[str, float]] = {}
    for level in (0.95, 0.99):
        expr = promql.histogram_quantile(
            m.http_duration_bucket, level, labels, (m.service_label,), rng.seconds
        )
        by_q[level] = {
            s.labels.get(m.service_label, "?"): s.value
            for s in ctx.prom(expr, at=rng.end)
            if math.isfinite(s.value)
        }
    ranked = sorted(by_q[quant].items(), key=lambda kv: -kv[1])
    limit = e.limit or ctx.settings.default_limit
    if not ranked:
        return ctx.answer("latency", headline=f"No request latency data ({rng.describe()}).")
    col = f"p{int(quant * 100)}"
    rows = [
        {
            "service": svc,
            "p95": fmt(by_q[0.95].get(svc), "seconds"),
            "p99": fmt(by_q[0.99].get(svc), "seconds"),
        }
        for svc, _ in ranked[:limit]
    ]
    head = f"Slowest services by {col} ({rng.describe()}): {rows[0]['service']} at {rows[0][col]}."
    return ctx.answer("latency", headline=head, columns=["service", "p95", "p99"], rows=rows)


def error_rate(ctx: Ctx) -> Answer:
    e, m = ctx.ent, ctx.m
    rng = _range(ctx, "last_1h")
    if rng.instant:
        rng = default_range("last_1h", ctx.now)
        e.time_range = rng
    e.metric = "http_5xx_ratio"
    if e.service:
        expr = promql.http_error_ratio(m, seconds=rng.seconds, service=e.service, by_service=False)
        got = [s.value for s in ctx.prom(expr, at=rng.end) if math.isfinite(s.value)]
        if not got:
            return ctx.answer(
                "error_rate", headline=f"No HTTP request data for {e.service} ({rng.describe()})."
            )
        return ctx.answer(
            "error_rate",
            headline=f"{e.service} 5xx ratio ({rng.describe()}): {fmt(got[0], 'ratio')} "
            "of requests.",
        )
    expr = promql.http_error_ratio(m, seconds=rng.seconds, service=None, by_service=True)
    samples = sorted(
        (s for s in ctx.prom(expr, at=rng.end) if math.isfinite(s.value)), key=lambda s: -s.value
    )
    if e.namespace:  # services of that namespace, as the inventory knows them
        samples = [
            s
            for s in samples
            if ctx.inv.service_ns.get(s.labels.get(m.service_label, "")) == e.namespace
        ]
    if not samples:
        return ctx.answer("error_rate", headline=f"No HTTP request data ({rng.describe()}).")
    rows = [
        {"service": s.labels.get(m.service_label, "?"), "5xx ratio": fmt(s.value, "ratio")}
        for s in samples[: e.limit or ctx.settings.max_limit]
    ]
    top = rows[0]
    head = (
        f"5xx ratio by service ({rng.describe()}): highest {top['service']} at {top['5xx ratio']}."
    )
    return ctx.answer("error_rate", headline=head, columns=["service", "5xx ratio"], rows=rows)
