"""Snapshots of the twin's objects as ``vigil.core`` values (``WorkloadInfo``, ``PodInfo``,
``NodeInfo``, ``HpaInfo``), as ``kubectl get`` would show them. Used by
``vigil.sim.cluster.SimCluster``'s reads.
"""

from __future__ import annotations

from vigil.core import (
    ContainerInfo,
    HpaInfo,
    NodeInfo,
    ObjectRef,
    PodInfo,
    WorkloadInfo,
    to_datetime,
)
from vigil.sim.state import (
    REASONS,
    WAITING,
    DeploymentState,
    HpaState,
    NodeState,
    PodState,
    PodTable,
)

__all__ = ["REVISION", "hpa_info", "node_info", "pod_info", "workload_info"]

REVISION = "deployment.kubernetes.io/revision"


def workload_info(dep: DeploymentState, table: PodTable) -> WorkloadInfo:
    pods = dep.pods()
    ready = sum(1 for p in pods if table.ready[p.slot])
    current = dep.current_rs()
    updated = len(current.pods) if current else 0
    last = dep.last_rollout_at
    return WorkloadInfo(
        ref=ObjectRef("Deployment", dep.namespace, dep.name),
        replicas=dep.replicas,
        ready_replicas=ready,
        available_replicas=ready,
        updated_replicas=updated,
        revision=dep.revision,
        selector={"app": dep.name},
        labels=dep.labels,
        annotations={REVISION: str(dep.revision), **dict(dep.template.annotations)},
        containers=tuple(
            ContainerInfo(
                c.name,
                c.image,
                c.cpu_request,
                c.cpu_limit or None,
                c.memory_request,
                c.memory_limit,
            )
            for c in dep.template.containers
        ),
        generation=dep.generation,
        observed_generation=dep.generation,
        progressing=updated < dep.replicas or len(pods) != dep.replicas,
        last_rollout_at=to_datetime(last) if last is not None else None,
        resource_version=str(dep.generation),
    )


def pod_info(pod: PodState, table: PodTable, now: float) -> PodInfo:
    s = pod.slot
    running = bool(table.running[s]) or table.restarts[s] > 0
    started = float(table.started_at[s])
    return PodInfo(
        ref=ObjectRef("Pod", pod.namespace, pod.name),
        phase="Running" if running else "Pending",
        ready=bool(table.ready[s]),
        node=pod.node,
        restarts=int(table.restarts[s]),
        waiting_reason=WAITING[int(table.waiting[s])] or None,
        last_termination_reason=REASONS[int(table.last_reason[s])] or None,
        last_exit_code=int(table.exit_code[s]) if table.last_reason[s] else None,
        owner=ObjectRef("ReplicaSet", pod.namespace, pod.rs.name),
        labels={"app": pod.deployment.name, "pod-template-hash": pod.rs.name.rsplit("-", 1)[1]},
        started_at=to_datetime(started) if started <= now else None,
    )


def node_info(n: NodeState) -> NodeInfo:
    return NodeInfo(
        name=n.name,
        ready=n.ready,
        unschedulable=n.unschedulable,
        conditions={
            "Ready": "True" if n.ready else "False",
            "MemoryPressure": "True" if n.memory_pressure else "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
        },
        cpu_allocatable=n.cpu,
        memory_allocatable=n.memory,
        labels=n.labels,
    )


def hpa_info(h: HpaState) -> HpaInfo:
    return HpaInfo(
        ref=ObjectRef("HorizontalPodAutoscaler", h.namespace, h.name),
        target=ObjectRef("Deployment", h.namespace, h.target),
        min_replicas=h.min_replicas,
        max_replicas=h.max_replicas,
        current_replicas=h.current_replicas,
        desired_replicas=h.desired_replicas,
    )
