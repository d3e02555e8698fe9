"""Kubernetes client objects → vigil's read-only snapshots (``vigil.core.objects``).

Pure functions over the typed models the ``kubernetes`` client returns; no I/O.
``KubernetesCluster`` calls them on every read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from vigil.core import ContainerInfo, HpaInfo, NodeInfo, ObjectRef, PodInfo, WorkloadInfo

__all__ = [
    "REVISION",
    "controller_ref",
    "hpa_info",
    "node_info",
    "pod_info",
    "quantity",
    "revision_of",
    "workload_info",
]

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
_REF_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Node"}


def quantity(value: str | None) -> float | None:
    """A resource quantity ("500m", "128Mi") in base units (cores, bytes); ``None`` if unset."""
    if value is None:
        return None
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(value))  # type: ignore[no-untyped-call]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _labels(value: Mapping[str, str] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def revision_of(obj: Any) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation as a number (0 when absent)."""
    raw = _labels(obj.metadata.annotations).get(REVISION, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def controller_ref(obj: Any, namespace: str | None) -> ObjectRef | None:
    """The controlling owner (``controller: true``) as an ``ObjectRef``, if vigil knows its kind."""
    for owner in obj.metadata.owner_references or ():
        if owner.controller and owner.kind in _REF_KINDS:
            return ObjectRef(owner.kind, namespace, owner.name)
    return None


def _containers(template: Any) -> tuple[ContainerInfo, ...]:
    out = []
    for c in template.spec.containers or ():
        res = c.resources
        requests = _labels(res.requests if res else None)
        limits = _labels(res.limits if res else None)
        out.append(
            ContainerInfo(
                name=c.name,
                image=c.image or "",
                cpu_request=quantity(requests.get("cpu")),
                cpu_limit=quantity(limits.get("cpu")),
                memory_request=quantity(requests.get("memory")),
                memory_limit=quantity(limits.get("memory")),
            )
        )
    return tuple(out)


def _progressing(conditions: Iterable[Any] | None) -> bool:
    # A rollout "stopped progressing" when the controller marks Progressing=False
    # (reason ProgressDeadlineExceeded); no condition yet means it is still going.
    return all(not (c.type == "Progressing" and c.status == "False") for c in conditions or ())


def workload_info(obj: Any, kind: str, last_rollout_at: datetime | None = None) -> WorkloadInfo:
    """A Deployment or StatefulSet (typed model) as a ``WorkloadInfo``."""
    meta, spec, status = obj.metadata, obj.spec, obj.status
    selector = spec.selector.match_labels if spec.selector else None
    return WorkloadInfo(
        ref=ObjectRef(kind, meta.namespace, meta.name),
        replicas=spec.replicas if spec.replicas is not None else 1,
        ready_replicas=(status.ready_replicas or 0) if status else 0,
        available_replicas=(getattr(status, "available_replicas", 0) or 0) if status else 0,
        updated_replicas=(status.updated_replicas or 0) if status else 0,
        revision=revision_of(obj) if kind == "Deployment" else 0,
        selector=_labels(selector),
        labels=_labels(meta.labels),
        annotations=_labels(meta.annotations),
        containers=_containers(spec.template),
        generation=meta.generation or 0,
        observed_generation=(status.observed_generation or 0) if status else 0,
        progressing=_progressing(status.conditions if status else None),
        last_rollout_at=_aware(last_rollout_at),
        resource_version=meta.resource_version or "",
    )


def pod_info(obj: Any) -> PodInfo:
    """A Pod as a ``PodInfo``: readiness, restarts, why it waits, how it last ended."""
    meta, status = obj.metadata, obj.status
    statuses = list((status.container_statuses if status else None) or ())
    ready = any(
        c.type == "Ready" and c.status == "True"
        for c in (status.conditions if status else ()) or ()
    )
    waiting = [c.state.waiting.reason for c in statuses if c.state and c.state.waiting]
    # CrashLoopBackOff matters most to playbooks; report it when any container has it.
    waiting_reason = next((r for r in waiting if r == "CrashLoopBackOff"), None) or next(
        (r for r in waiting if r), None
    )
    terminated = [
        c.last_state.terminated
        for c in sorted(statuses, key=lambda c: c.restart_count or 0, reverse=True)
        if c.last_state and c.last_state.terminated
    ]
    last = terminated[0] if terminated else None
    return PodInfo(
        ref=ObjectRef("Pod", meta.namespace, meta.name),
        phase=(status.phase if status else None) or "Unknown",
        ready=ready,
        node=obj.spec.node_name if obj.spec else None,
        restarts=sum(c.restart_count or 0 for c in statuses),
        waiting_reason=waiting_reason,
        last_termination_reason=last.reason if last else None,
        last_exit_code=last.exit_code if last else None,
        owner=controller_ref(obj, meta.namespace),
        labels=_labels(meta.labels),
        annotations=_labels(meta.annotations),
        started_at=_aware(status.start_time if status else None),
    )


def node_info(obj: Any) -> NodeInfo:
    """A Node as a ``NodeInfo``: Ready, pressure conditions, cordon state, allocatable."""
    status = obj.status
    conditions = {c.type: c.status for c in (status.conditions if status else None) or ()}
    allocatable = _labels(status.allocatable if status else None)
    return NodeInfo(
        name=obj.metadata.name,
        ready=conditions.get("Ready") == "True",
        unschedulable=bool(obj.spec.unschedulable) if obj.spec else False,
        conditions=conditions,
        cpu_allocatable=quantity(allocatable.get("cpu")) or 0.0,
        memory_allocatable=quantity(allocatable.get("memory")) or 0.0,
        labels=_labels(obj.metadata.labels),
    )


def hpa_info(obj: Any) -> HpaInfo | None:
    """An HPA (autoscaling/v1 or v2 model) as an ``HpaInfo``; ``None`` when it scales a kind
    vigil does not act on (a custom resource) or has ``minReplicas`` 0."""
    meta, spec, status = obj.metadata, obj.spec, obj.status
    target = spec.scale_target_ref
    if target.kind not in _REF_KINDS:
        log.debug("hpa %s/%s scales a %s; skipped", meta.namespace, meta.name, target.kind)
        return None
    min_replicas = spec.min_replicas if spec.min_replicas is not None else 1
    if min_replicas < 1:
        return None
    return HpaInfo(
        ref=ObjectRef("HorizontalPodAutoscaler", meta.namespace, meta.name),
        target=ObjectRef(target.kind, meta.namespace, target.name),
        min_replicas=min_replicas,
        max_replicas=spec.max_replicas,
        current_replicas=(status.current_replicas or 0) if status else 0,
        desired_replicas=(status.desired_replicas or 0) if status else 0,
    )
