"""PromQL templates with escaped label values: the only way questions become PromQL.

Every builder takes names that ``vigil.nlq.entities`` resolved against live label values
(never raw user text) and puts them in ``label="value"`` matchers, escaped; regex matchers
appear only with constants of ours (``code=~"5.."``). Metric names come from the
``MetricMap``, which validates them. Called by the answer handlers.
"""

from __future__ import annotations

from collections.abc import Mapping

from vigil.nlq.metrics_map import MetricMap

__all__ = [
    "by_pod",
    "escape_value",
    "histogram_quantile",
    "http_error_ratio",
    "http_rate",
    "pod_metric",
    "selector",
    "service_join",
    "window",
]

# Matchers only we write: never built from user text.
_NON_EMPTY_CONTAINER = 'container!=""'
_CONSTANT_MATCHERS = {
    'container!=""',
    'container!="POD"',
    'code=~"5.."',
    'resource="memory"',
    'resource="cpu"',
}


def escape_value(value: str) -> str:
    """A label value as PromQL string text: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def selector(metric: str, labels: Mapping[str, str | None], *constant: str) -> str:
    """``metric{k="v",…}`` with escaped ``=`` values (``None`` values are left out)."""
    for matcher in constant:
        if matcher not in _CONSTANT_MATCHERS:
            raise ValueError(f"matcher {matcher!r} is not one of vigil's constant matchers")
    parts = [*constant]
    parts += [f'{k}="{escape_value(v)}"' for k, v in labels.items() if v is not None]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def window(seconds: int) -> str:
    """A range selector duration in whole seconds (``[3600s]``), at least one minute."""
    return f"{max(60, int(seconds))}s"


def service_join(m: MetricMap, namespace: str | None, service: str | None) -> str:
    """``* on (namespace, pod) group_left (label_app) max by (…) (kube_pod_labels{…})``:
    restricts pod series to one service (and names the service on each series)."""
    sel = selector(m.pod_labels, {m.namespace_label: namespace, m.pod_service_label: service})
    keys = f"{m.namespace_label}, {m.pod_label}"
    return (
        f" * on ({keys}) group_left ({m.pod_service_label}) "
        f"max by ({keys}, {m.pod_service_label}) ({sel})"
    )


def pod_metric(
    m: MetricMap,
    metric: str,
    *,
    seconds: int,
    namespace: str | None = None,
    service: str | None = None,
    pod: str | None = None,
) -> str:
    """Per-pod value of ``cpu``, ``memory`` or ``restarts`` over a window ending at the
    query time: CPU as the mean rate (cores), memory as the mean working set (bytes),
    restarts as the increase (count)."""
    labels = {m.namespace_label: namespace, m.pod_label: pod}
    rng = window(seconds)
    if metric == "cpu":
        inner = f"rate({selector(m.cpu_usage, labels, _NON_EMPTY_CONTAINER)}[{rng}])"
    elif metric == "memory":
        sel = selector(m.memory_working_set, labels, _NON_EMPTY_CONTAINER)
        inner = f"avg_over_time({sel}[{rng}])"
    elif metric == "restarts":
        inner = f"increase({selector(m.restarts, labels)}[{rng}])"
    else:
        raise ValueError(f"no per-pod template for metric {metric!r}")
    keys = f"{m.namespace_label}, {m.pod_label}"
    summed = f"sum by ({keys}) ({inner})"
    if service is not None:
        join = service_join(m, namespace, service)
        return f"sum by ({keys}, {m.pod_service_label}) ({summed}{join})"
    return summed


def by_pod(m: MetricMap, expr: str, *, top: int | None = None) -> str:
    """``topk(n, expr)`` when a limit is given."""
    return f"topk({int(top)}, {expr})" if top else expr


def http_rate(m: MetricMap, *, seconds: int, service: str | None, by_service: bool) -> str:
    """Requests per second over the window, for one service or per service."""
    sel = selector(m.http_requests, {m.service_label: service})
    group = f" by ({m.service_label})" if by_service else ""
    return f"sum{group} (rate({sel}[{window(seconds)}]))"


def http_error_ratio(m: MetricMap, *, seconds: int, service: str | None, by_service: bool) -> str:
    """Share of 5xx responses over the window (0..1), for one service or per service."""
    rng = window(seconds)
    errors = selector(m.http_requests, {m.service_label: service}, 'code=~"5.."')
    total = selector(m.http_requests, {m.service_label: service})
    group = f" by ({m.service_label})" if by_service else ""
    return f"sum{group} (increase({errors}[{rng}])) / sum{group} (increase({total}[{rng}]))"


def histogram_quantile(
    bucket_metric: str,
    q: float,
    labels: Mapping[str, str | None],
    by: tuple[str, ...],
    seconds: int,
) -> str:
    """``histogram_quantile(q, sum by (…, le) (rate(bucket{…}[window])))``."""
    keys = ", ".join((*by, "le"))
    sel = selector(bucket_metric, labels)
    return f"histogram_quantile({q:g}, sum by ({keys}) (rate({sel}[{window(seconds)}])))"
