"""The names questions may refer to, read from live sources: namespaces, services, pods,
nodes, volumes and database statements.

Built by ``vigil.nlq.engine`` from ``MetricSource`` series (kube-state-metrics' pod labels,
HTTP/DB metrics), the store (targets of findings and actions) and, when given, the
cluster's read API; cached for ``ttl`` seconds so a chat session asks once. Entity
resolution (``vigil.nlq.entities``) matches user words against these names only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from vigil.core import MetricSource, VigilError

if TYPE_CHECKING:
    from vigil.nlq.metrics_map import MetricMap
    from vigil.nlq.ports import ClusterReader, StoreReader

__all__ = ["Inventory", "load_inventory"]


@dataclass
class Inventory:
    """Known names. ``service_ns`` maps a service to its namespace; ``pod_ns`` and
    ``pod_service`` a pod to its namespace and service."""

    namespaces: set[str] = field(default_factory=set)
    service_ns: dict[str, str] = field(default_factory=dict)
    pod_ns: dict[str, str] = field(default_factory=dict)
    pod_service: dict[str, str] = field(default_factory=dict)
    nodes: set[str] = field(default_factory=set)
    pvcs: set[str] = field(default_factory=set)
    queries: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def services(self) -> set[str]:
        return set(self.service_ns)

    def add_pod(self, pod: str, namespace: str | None, service: str | None) -> None:
        if namespace:
            self.pod_ns.setdefault(pod, namespace)
            self.namespaces.add(namespace)
        if service:
            self.pod_service.setdefault(pod, service)
            if namespace:
                self.service_ns.setdefault(service, namespace)

    def add_service(self, service: str, namespace: str | None) -> None:
        if namespace:
            self.service_ns.setdefault(service, namespace)
            self.namespaces.add(namespace)
        else:
            self.service_ns.setdefault(service, "")

    def pods_of(self, service: str) -> list[str]:
        return sorted(p for p, s in self.pod_service.items() if s == service)


def _guess_service(pod: str, services: Iterable[str]) -> str | None:
    """The service a pod belongs to by name (``checkout-6f7c9-x1`` → ``checkout``)."""
    best = None
    for svc in services:
        if (pod.startswith(svc + "-") or pod == svc) and (best is None or len(svc) > len(best)):
            best = svc
    return best


def load_inventory(
    metrics: MetricSource | None,
    m: MetricMap,
    now: datetime,
    *,
    store: StoreReader | None = None,
    cluster: ClusterReader | None = None,
) -> Inventory:
    """Gather names from every source available; a source that fails is noted, not fatal."""
    inv = Inventory()
    start = now - timedelta(hours=24)
    if metrics is not None:
        try:
            for labels in metrics.series(m.pod_labels, start, now):
                pod = labels.get(m.pod_label)
                if pod:
                    inv.add_pod(pod, labels.get(m.namespace_label), labels.get(m.pod_service_label))
            for sel in (m.http_requests, m.db_duration_bucket):
                for labels in metrics.series(sel, start, now):
                    svc = labels.get(m.service_label)
                    if svc:
                        inv.add_service(svc, labels.get(m.namespace_label))
                    query = labels.get(m.query_label)
                    if query and sel == m.db_duration_bucket:
                        inv.queries.add(query)
            for labels in metrics.series(m.pod_phase, start, now):
                pod = labels.get(m.pod_label)
                if pod:
                    inv.add_pod(pod, labels.get(m.namespace_label), None)
            inv.nodes.update(metrics.label_values(m.node_label, m.node_allocatable))
            inv.pvcs.update(metrics.label_values(m.pvc_label, m.pvc_used))
            inv.namespaces.update(metrics.label_values(m.namespace_label, m.pod_phase))
        except VigilError as exc:
            inv.errors.append(f"Prometheus: {exc}")
    if store is not None:
        try:
            rows = store.run_sql(
                "SELECT DISTINCT target_kind, target_namespace, target_name FROM actions "
                "UNION SELECT DISTINCT target_kind, target_namespace, target_name FROM findings "
                "WHERE target_name IS NOT NULL"
            )
            for row in rows:
                kind, ns, name = row["target_kind"], row["target_namespace"], row["target_name"]
                if not name:
                    continue
                if kind == "Pod":
                    inv.add_pod(name, ns, _guess_service(name, inv.service_ns))
                elif kind in {"Deployment", "StatefulSet", "DaemonSet"}:
                    inv.add_service(name, ns)
                elif ns:
                    inv.namespaces.add(ns)
        except VigilError as exc:
            inv.errors.append(f"store: {exc}")
    if cluster is not None:
        try:
            inv.namespaces.update(cluster.list_namespaces())
            for w in cluster.list_workloads():
                inv.add_service(w.ref.name, w.ref.namespace)
            for p in cluster.list_pods():
                owner = p.owner.name if p.owner else _guess_service(p.ref.name, inv.service_ns)
                inv.add_pod(p.ref.name, p.ref.namespace, owner)
            inv.nodes.update(n.name for n in cluster.list_nodes())
        except VigilError as exc:
            inv.errors.append(f"Kubernetes: {exc}")
    for pod, ns in inv.pod_ns.items():
        if pod not in inv.pod_service:
            svc = _guess_service(pod, inv.service_ns)
            if svc:
                inv.pod_service[pod] = svc
                inv.service_ns.setdefault(svc, ns)
    return inv
