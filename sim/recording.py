"""Writes one row of metrics per twin step, named and labelled as real exporters do.

cAdvisor (``container_*``), kube-state-metrics (``kube_*``) and an HTTP service
library (``http_requests_total``, ``http_request_duration_seconds`` histogram) — the
names in ``FAMILIES``. Per-pod series live in a block of columns indexed by pod slot
(``vigil.sim.state.PodTable``); a new pod in a freed slot opens new series. Called by
``vigil.sim.twin`` after each step; reads ``ClusterState`` and the step's ``Traffic``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vigil.sim.history import SeriesStore
from vigil.sim.workload import BUCKETS

if TYPE_CHECKING:
    from vigil.sim.state import ClusterState
    from vigil.sim.workload import Traffic, WorkloadSpec

__all__ = ["FAMILIES", "Recorder"]

FAMILIES: dict[str, tuple[str, str]] = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in seconds."),
    "container_memory_working_set_bytes": ("gauge", "Current working set in bytes."),
    "kube_pod_container_status_restarts_total": (
        "counter",
        "The number of container restarts per container.",
    ),
    "kube_pod_status_phase": ("gauge", "The pods current phase."),
    "kube_pod_status_ready": ("gauge", "Describes whether the pod is ready to serve requests."),
    "kube_pod_container_status_ready": ("gauge", "Describes whether the container is ready."),
    "kube_pod_container_resource_limits": ("gauge", "The number of requested limit resource."),
    "kube_pod_container_resource_requests": ("gauge", "The number of requested resource."),
    "kube_pod_container_status_last_terminated_reason": (
        "gauge",
        "Describes the last reason the container was in terminated state.",
    ),
    "kube_pod_container_status_waiting_reason": (
        "gauge",
        "Describes the reason the container is currently in waiting state.",
    ),
    "kube_pod_info": ("gauge", "Information about pod."),
    "kube_pod_owner": ("gauge", "Information about the Pod's owner."),
    "kube_deployment_spec_replicas": ("gauge", "Number of desired pods for a deployment."),
    "kube_deployment_status_replicas": ("gauge", "The number of replicas per deployment."),
    "kube_deployment_status_replicas_available": (
        "gauge",
        "The number of available replicas per deployment.",
    ),
    "kube_deployment_status_replicas_unavailable": (
        "gauge",
        "The number of unavailable replicas per deployment.",
    ),
    "kube_deployment_status_replicas_updated": (
        "gauge",
        "The number of updated replicas per deployment.",
    ),
    "kube_deployment_metadata_generation": ("gauge", "Sequence number of the desired state."),
    "kube_deployment_status_observed_generation": (
        "gauge",
        "The generation observed by the deployment controller.",
    ),
    "kube_node_status_condition": ("gauge", "The condition of a cluster node."),
    "kube_node_spec_unschedulable": ("gauge", "Whether a node can schedule new pods."),
    "kube_node_status_allocatable": ("gauge", "The allocatable for different resources."),
    "kube_horizontalpodautoscaler_spec_min_replicas": ("gauge", "Lower limit for the HPA."),
    "kube_horizontalpodautoscaler_spec_max_replicas": ("gauge", "Upper limit for the HPA."),
    "kube_horizontalpodautoscaler_status_current_replicas": ("gauge", "Current replicas."),
    "kube_horizontalpodautoscaler_status_desired_replicas": ("gauge", "Desired replicas."),
    "http_requests_total": ("counter", "Total HTTP requests by status code."),
    "http_request_duration_seconds": ("histogram", "HTTP request latency in seconds."),
}

_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_CODES = ("200", "500", "503")
# Per-pod series, in column order within a slot; NODE_BOUND ones carry the node label.
_POD_SERIES: tuple[tuple[str, dict[str, str], bool, bool], ...] = (
    # (metric, extra labels, has container label, node-bound)
    ("container_cpu_usage_seconds_total", {}, True, False),
    ("container_memory_working_set_bytes", {}, True, False),
    ("kube_pod_container_status_restarts_total", {}, True, False),
    *(("kube_pod_status_phase", {"phase": p}, False, False) for p in _PHASES),
    *(("kube_pod_status_ready", {"condition": c}, False, False) for c in ("true", "false")),
    ("kube_pod_container_status_ready", {}, True, False),
    ("kube_pod_container_resource_limits", {"resource": "cpu", "unit": "core"}, True, True),
    ("kube_pod_container_resource_limits", {"resource": "memory", "unit": "byte"}, True, True),
    ("kube_pod_container_resource_requests", {"resource": "cpu", "unit": "core"}, True, True),
    ("kube_pod_container_resource_requests", {"resource": "memory", "unit": "byte"}, True, True),
    *(
        ("kube_pod_container_status_last_terminated_reason", {"reason": r}, True, False)
        for r in ("OOMKilled", "Error", "Completed")
    ),
    *(
        ("kube_pod_container_status_waiting_reason", {"reason": r}, True, False)
        for r in ("ContainerCreating", "CrashLoopBackOff")
    ),
    ("kube_pod_info", {"created_by_kind": "ReplicaSet"}, False, True),
    ("kube_pod_owner", {"owner_kind": "ReplicaSet", "owner_is_controller": "true"}, False, False),
)
_K = len(_POD_SERIES)


class Recorder:
    """Owns the column layout of a ``SeriesStore`` and fills one row per step."""

    def __init__(self, store: SeriesStore, state: ClusterState, specs: list[WorkloadSpec]):
        self.store = store
        self.state = state
        self.specs = specs
        for name, (kind, text) in FAMILIES.items():
            store.declare(name, kind, text)
        w = len(specs)
        self._http = np.array([s.http for s in specs])
        self._requests = np.zeros((w, len(_CODES)))
        self._buckets = np.zeros((w, len(BUCKETS) + 1))
        self._latency_sum = np.zeros(w)
        self._layout_static()
        self._slot_base = store.allocate(state.table.capacity * _K)
        self._slot_capacity = state.table.capacity
        self._slot_owner: list[tuple[str, str] | None] = [None] * self._slot_capacity
        self._slot_series: list[list[int]] = [[] for _ in range(self._slot_capacity)]

    def _add(self, labels: dict[str, str]) -> int:
        col = self.store.allocate(1)
        self.store.open(labels, col)
        return col

    def _layout_static(self) -> None:
        deps = self.state.workloads()
        dep_metrics = (
            "kube_deployment_spec_replicas",
            "kube_deployment_status_replicas",
            "kube_deployment_status_replicas_available",
            "kube_deployment_status_replicas_unavailable",
            "kube_deployment_status_replicas_updated",
            "kube_deployment_metadata_generation",
            "kube_deployment_status_observed_generation",
        )
        self._dep_cols = np.array(
            [
                [
                    self._add({"__name__": m, "namespace": d.namespace, "deployment": d.name})
                    for m in dep_metrics
                ]
                for d in deps
            ]
        )
        http_cols: list[int] = []
        for spec in self.specs:
            if not spec.http:
                continue
            base = {"namespace": spec.namespace, "service": spec.name, "method": spec.method}
            for code in _CODES:
                http_cols.append(
                    self._add({"__name__": "http_requests_total", **base, "code": code})
                )
            for le in [*(f"{b:g}" for b in BUCKETS), "+Inf"]:
                name = "http_request_duration_seconds_bucket"
                http_cols.append(self._add({"__name__": name, **base, "le": le}))
            http_cols.append(self._add({"__name__": "http_request_duration_seconds_sum", **base}))
            http_cols.append(self._add({"__name__": "http_request_duration_seconds_count", **base}))
        self._http_cols = np.array(http_cols, dtype=np.int64)
        node_cols = []
        for node in self.state.node_list():
            row = [
                self._add(
                    {
                        "__name__": "kube_node_status_condition",
                        "node": node.name,
                        "condition": c,
                        "status": s,
                    }
                )
                for c in _CONDITIONS
                for s in ("true", "false", "unknown")
            ]
            row.append(self._add({"__name__": "kube_node_spec_unschedulable", "node": node.name}))
            for res, unit in (("cpu", "core"), ("memory", "byte")):
                labels = {"node": node.name, "resource": res, "unit": unit}
                row.append(self._add({"__name__": "kube_node_status_allocatable", **labels}))
            node_cols.append(row)
        self._node_cols = np.array(node_cols)
        hpa_metrics = (
            "kube_horizontalpodautoscaler_spec_min_replicas",
            "kube_horizontalpodautoscaler_spec_max_replicas",
            "kube_horizontalpodautoscaler_status_current_replicas",
            "kube_horizontalpodautoscaler_status_desired_replicas",
        )
        self._hpa_keys = sorted(self.state.hpas)
        self._hpa_cols = np.array(
            [
                [
                    self._add({"__name__": m, "namespace": ns, "horizontalpodautoscaler": name})
                    for m in hpa_metrics
                ]
                for ns, name in self._hpa_keys
            ],
            dtype=np.int64,
        ).reshape(len(self._hpa_keys), len(hpa_metrics))

    # ------------------------------------------------------------------ pod slots
    def _grow_slots(self) -> None:
        capacity = self.state.table.capacity
        extra = capacity - self._slot_capacity
        first = self.store.allocate(extra * _K)
        if first != self._slot_base + self._slot_capacity * _K:
            raise RuntimeError("pod slot columns must stay contiguous")
        self._slot_owner.extend([None] * extra)
        self._slot_series.extend([] for _ in range(extra))
        self._slot_capacity = capacity

    def _register_pods(self) -> None:
        """Open series for pods new in their slot (or newly bound to a node), close old ones."""
        if self.state.table.capacity > self._slot_capacity:
            self._grow_slots()
        live: dict[int, tuple[str, str, str, str]] = {}
        for pod in self.state.pods.values():
            live[pod.slot] = (pod.namespace, pod.name, pod.node or "", pod.rs.name)
        for slot in range(self._slot_capacity):
            owner = live.get(slot)
            key = (owner[1], owner[2]) if owner else None
            if key == self._slot_owner[slot]:
                continue
            old = self._slot_owner[slot]
            same_pod = owner is not None and old is not None and old[0] == owner[1]
            series = self._slot_series[slot]
            for k, index in enumerate(series):
                if not same_pod or _POD_SERIES[k][3]:
                    self.store.close(index)
            if owner is None:
                self._slot_series[slot] = []
            else:
                self._slot_series[slot] = self._open_pod(slot, owner, series if same_pod else None)
            self._slot_owner[slot] = key

    def _open_pod(
        self, slot: int, owner: tuple[str, str, str, str], keep: list[int] | None
    ) -> list[int]:
        namespace, pod, node, rs = owner
        spec = self.specs[int(self.state.table.workload[slot])]
        out = []
        for k, (metric, extra, container, node_bound) in enumerate(_POD_SERIES):
            if keep is not None and not node_bound:
                out.append(keep[k])
                continue
            labels = {"__name__": metric, "namespace": namespace, "pod": pod, **extra}
            if container:
                labels["container"] = spec.name
            if node_bound:
                labels["node"] = node
            if metric == "kube_pod_info":
                labels["created_by_name"] = rs
            if metric == "kube_pod_owner":
                labels["owner_name"] = rs
            out.append(self.store.open(labels, self._slot_base + slot * _K + k))
        return out

    # ------------------------------------------------------------------ one row
    def record(self, t: float, traffic: Traffic | None, dt: float) -> None:
        self._register_pods()
        row = self.store.next_row()
        table = self.state.table
        cap = self._slot_capacity
        values = np.full((cap, _K), np.nan)
        alive = table.alive[:cap]
        ever = alive & ((table.started_at[:cap] <= t) | (table.restarts[:cap] > 0))
        values[:, 0] = np.where(ever, table.cpu_seconds[:cap], np.nan)
        values[:, 1] = np.where(ever, table.memory[:cap], np.nan)
        values[:, 2] = table.restarts[:cap]
        phase = np.where(ever, 1, 0)
        for i in range(len(_PHASES)):
            values[:, 3 + i] = (phase == i).astype(float)
        ready = table.ready[:cap].astype(float)
        values[:, 8] = ready
        values[:, 9] = 1.0 - ready
        values[:, 10] = ready
        values[:, 11] = table.cpu_limit[:cap]
        values[:, 12] = table.memory_limit[:cap]
        values[:, 13] = table.cpu_request[:cap]
        values[:, 14] = table.memory_request[:cap]
        for i in range(3):
            values[:, 15 + i] = np.where(table.last_reason[:cap] == i + 1, 1.0, np.nan)
        for i in range(2):
            values[:, 18 + i] = np.where(table.waiting[:cap] == i + 1, 1.0, np.nan)
        values[:, 20] = 1.0
        values[:, 21] = 1.0
        values[~alive] = np.nan
        row[self._slot_base : self._slot_base + cap * _K] = values.reshape(-1)
        self._record_workloads(row, t)
        if traffic is not None:
            self._record_http(row, traffic)
        self.store.commit()

    def _record_workloads(self, row: np.ndarray, t: float) -> None:
        table = self.state.table
        n = len(self.specs)
        w = table.workload[table.alive]
        pods = np.bincount(w, minlength=n)
        ready = np.bincount(table.workload[table.alive & table.ready], minlength=n)
        for d in self.state.workloads():
            current = d.current_rs()
            updated = len(current.pods) if current else 0
            i = d.index
            row[self._dep_cols[i]] = (
                d.replicas,
                pods[i],
                ready[i],
                max(0, d.replicas - ready[i]),
                updated,
                d.generation,
                d.generation,
            )
        for i, node in enumerate(self.state.node_list()):
            conds = (
                node.ready,
                node.memory_pressure,
                False,
                False,
            )
            vals: list[float] = []
            for c in conds:
                vals.extend((float(c), float(not c), 0.0))
            vals.extend((float(node.unschedulable), node.cpu, node.memory))
            row[self._node_cols[i]] = vals
        for i, key in enumerate(self._hpa_keys):
            hpa = self.state.hpas[key]
            row[self._hpa_cols[i]] = (
                hpa.min_replicas,
                hpa.max_replicas,
                hpa.current_replicas,
                hpa.desired_replicas,
            )

    def _record_http(self, row: np.ndarray, traffic: Traffic) -> None:
        self._requests[:, 0] += traffic.ok
        self._requests[:, 1] += traffic.server_errors
        self._requests[:, 2] += traffic.rejected
        total = traffic.ok + traffic.server_errors + traffic.rejected
        self._buckets[:, :-1] += traffic.buckets
        self._buckets[:, -1] += total
        self._latency_sum += traffic.latency_sum
        # Counters of whole requests, as a client library exposes them.
        block = np.concatenate(
            (
                np.floor(self._requests),
                np.floor(self._buckets),
                self._latency_sum[:, None],
                np.floor(self._requests).sum(axis=1, keepdims=True),
            ),
            axis=1,
        )[self._http]
        first, inf = len(_CODES), len(_CODES) + len(BUCKETS)
        block[:, inf] = block[:, -1]  # the +Inf bucket is the _count
        block[:, first:inf] = np.minimum(block[:, first:inf], block[:, -1:])
        row[self._http_cols] = block.reshape(-1)
