"""Kubernetes objects as the rest of vigil sees them, whatever ``Cluster`` serves them.

``ObjectRef`` names an object (``deployment/payments/api``); the ``*Info`` values are
read-only snapshots returned by ``Cluster`` implementations (``vigil.actions.kubernetes``
against a real API server, ``vigil.sim`` in the twin).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from vigil.core._validate import frozen_labels, require_aware, require_text

__all__ = [
    "ContainerInfo",
    "HpaInfo",
    "NodeInfo",
    "ObjectRef",
    "PodInfo",
    "WorkloadInfo",
]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_KINDS = {
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "replicaset": "ReplicaSet",
    "pod": "Pod",
    "node": "Node",
    "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "namespace": "Namespace",
}
_CLUSTER_SCOPED = {"Node", "Namespace"}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """A Kubernetes object by kind, namespace and name; ``namespace`` is ``None`` for nodes."""

    kind: str
    namespace: str | None
    name: str

    def __post_init__(self) -> None:
        kind = _KINDS.get(self.kind.lower())
        if kind is None:
            allowed = ", ".join(sorted(set(_KINDS.values())))
            raise ValueError(f"unknown object kind {self.kind!r}; allowed: {allowed}")
        object.__setattr__(self, "kind", kind)
        if kind in _CLUSTER_SCOPED:
            if self.namespace:
                raise ValueError(f"{kind} {self.name!r} is cluster-scoped and takes no namespace")
            object.__setattr__(self, "namespace", None)
        elif not self.namespace or not _DNS_LABEL.match(self.namespace):
            raise ValueError(
                f"{kind} {self.name!r}: namespace {self.namespace!r} is not a DNS-1123 label"
            )
        if not _DNS_SUBDOMAIN.match(self.name) or len(self.name) > 253:
            raise ValueError(f"{kind} name {self.name!r} is not a valid Kubernetes name")

    @classmethod
    def parse(cls, text: str) -> ObjectRef:
        """``deployment/payments/api`` or ``node/node-a`` → ``ObjectRef``."""
        parts = text.strip().split("/")
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        if len(parts) == 2 and _KINDS.get(parts[0].lower()) in _CLUSTER_SCOPED:
            return cls(parts[0], None, parts[1])
        raise ValueError(
            f"cannot read object {text!r}: write KIND/NAMESPACE/NAME "
            "(e.g. deployment/payments/api) or node/NAME"
        )

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{self.kind.lower()}/{self.name}"
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ContainerInfo:
    """A container spec's resources, in base units (cores, bytes); ``None`` when unset."""

    name: str
    image: str = ""
    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: float | None = None
    memory_limit: float | None = None


@dataclass(frozen=True)
class WorkloadInfo:
    """A Deployment/StatefulSet snapshot: desired and ready replicas, revision, selector."""

    ref: ObjectRef
    replicas: int
    ready_replicas: int
    available_replicas: int
    updated_replicas: int = 0
    revision: int = 0
    selector: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[ContainerInfo, ...] = ()
    generation: int = 0
    observed_generation: int = 0
    progressing: bool = True
    last_rollout_at: datetime | None = None
    resource_version: str = ""

    def __post_init__(self) -> None:
        if self.replicas < 0 or self.ready_replicas < 0 or self.available_replicas < 0:
            raise ValueError(f"{self.ref}: replica counts must be >= 0")
        require_aware("last_rollout_at", self.last_rollout_at)
        object.__setattr__(self, "selector", frozen_labels(self.selector))
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "annotations", frozen_labels(self.annotations))


@dataclass(frozen=True)
class PodInfo:
    """A pod snapshot: phase, readiness, restarts, last termination and its owner."""

    ref: ObjectRef
    phase: str
    ready: bool
    node: str | None = None
    restarts: int = 0
    waiting_reason: str | None = None
    last_termination_reason: str | None = None
    last_exit_code: int | None = None
    owner: ObjectRef | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        require_text("phase", self.phase)
        require_aware("started_at", self.started_at)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "annotations", frozen_labels(self.annotations))

    @property
    def crash_looping(self) -> bool:
        return self.waiting_reason == "CrashLoopBackOff"


@dataclass(frozen=True)
class NodeInfo:
    """A node snapshot: readiness, pressure conditions, schedulability and capacity."""

    name: str
    ready: bool
    unschedulable: bool = False
    conditions: Mapping[str, str] = field(default_factory=dict)
    cpu_allocatable: float = 0.0
    memory_allocatable: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_text("name", self.name)
        object.__setattr__(self, "conditions", frozen_labels(self.conditions))
        object.__setattr__(self, "labels", frozen_labels(self.labels))

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Node", None, self.name)

    @property
    def pressure(self) -> tuple[str, ...]:
        """Names of pressure conditions that are ``True`` (MemoryPressure, DiskPressure, …)."""
        return tuple(
            name
            for name, status in self.conditions.items()
            if name.endswith("Pressure") and status == "True"
        )


@dataclass(frozen=True)
class HpaInfo:
    """A HorizontalPodAutoscaler snapshot and the workload it scales."""

    ref: ObjectRef
    target: ObjectRef
    min_replicas: int
    max_replicas: int
    current_replicas: int = 0
    desired_replicas: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"{self.ref}: need 1 <= min_replicas ({self.min_replicas}) <= "
                f"max_replicas ({self.max_replicas})"
            )
