"""The twin's Kubernetes objects: nodes, Deployments, ReplicaSets, pods, HPAs.

Identity and spec live in small Python objects; the per-pod numbers that change every
step (readiness times, memory, CPU counter, restarts) live in ``PodTable``, a
struct-of-arrays indexed by a pod's *slot*, so the twin's step is vectorised.
Written by ``vigil.sim.controllers`` and ``vigil.sim.twin``; read by
``vigil.sim.cluster`` (the ``Cluster`` API) and ``vigil.sim.recording`` (metrics).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

__all__ = [
    "REASONS",
    "WAITING",
    "ClusterState",
    "ContainerSpec",
    "DeploymentState",
    "HpaState",
    "NodeState",
    "PodState",
    "PodTable",
    "ReplicaSetState",
    "Template",
]

# Codes stored in PodTable.last_reason / .waiting (0 = none).
REASONS = ("", "OOMKilled", "Error", "Completed")
WAITING = ("", "ContainerCreating", "CrashLoopBackOff")
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a pod template, resources in cores and bytes."""

    name: str
    image: str
    cpu_request: float
    cpu_limit: float
    memory_request: float
    memory_limit: float


@dataclass(frozen=True)
class Template:
    """A pod template: what a ReplicaSet revision runs. Equal templates → same RS."""

    containers: tuple[ContainerSpec, ...]
    annotations: tuple[tuple[str, str], ...] = ()

    @cached_property
    def template_hash(self) -> str:
        """Stable 10-character hash, spelled like Kubernetes' ``pod-template-hash``."""
        digest = hashlib.sha256(repr(self).encode()).digest()
        return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])

    def with_annotation(self, key: str, value: str) -> Template:
        notes = dict(self.annotations)
        notes[key] = value
        return replace(self, annotations=tuple(sorted(notes.items())))

    def with_container(self, spec: ContainerSpec) -> Template:
        return replace(
            self, containers=tuple(spec if c.name == spec.name else c for c in self.containers)
        )

    @property
    def main(self) -> ContainerSpec:
        return self.containers[0]


@dataclass
class ReplicaSetState:
    name: str
    revision: int
    template: Template
    replicas: int
    created_at: float
    pods: list[PodState] = field(default_factory=list)


@dataclass
class DeploymentState:
    """A Deployment; ``index`` is its workload index in the twin's per-workload arrays."""

    namespace: str
    name: str
    index: int
    replicas: int
    template: Template
    labels: dict[str, str]
    replica_sets: list[ReplicaSetState] = field(default_factory=list)
    generation: int = 1
    last_rollout_at: float | None = None
    revision_history_limit: int = 10

    def current_rs(self) -> ReplicaSetState | None:
        want = self.template.template_hash
        for rs in self.replica_sets:
            if rs.name.endswith(want):
                return rs
        return None

    @property
    def revision(self) -> int:
        rs = self.current_rs()
        return rs.revision if rs else 0

    def pods(self) -> list[PodState]:
        return [p for rs in self.replica_sets for p in rs.pods]


@dataclass
class PodState:
    name: str
    namespace: str
    deployment: DeploymentState
    rs: ReplicaSetState
    slot: int
    created_at: float
    node: str | None = None

    @property
    def uid(self) -> str:
        """A stable UUID-shaped id (a pod recreated under the same name gets another)."""
        digest = hashlib.sha256(f"{self.namespace}/{self.name}@{self.created_at}".encode())
        h = digest.hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass
class NodeState:
    name: str
    index: int
    cpu: float
    memory: float
    ready: bool = True
    unschedulable: bool = False
    not_ready_since: float | None = None
    memory_pressure: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class HpaState:
    """An autoscaling/v2 HPA on CPU utilisation, with the controller's memory."""

    namespace: str
    name: str
    target: str
    min_replicas: int
    max_replicas: int
    target_utilization: float
    current_replicas: int = 0
    desired_replicas: int = 0
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    last_utilization: float = float("nan")


class PodTable:
    """Per-slot pod numbers, grown by doubling. A slot is free when ``alive`` is False."""

    FLOATS = (
        "created",
        "started_at",
        "ready_at",
        "restarts",
        "memory",
        "leaked",
        "cpu_seconds",
        "cpu_usage",
        "cpu_request",
        "cpu_limit",
        "memory_request",
        "memory_limit",
        "run_since",
    )
    INTS = ("workload", "node", "last_reason", "waiting", "streak", "exit_code")
    BOOLS = ("alive", "ready", "running", "bad")

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = 0
        for name in (*self.FLOATS, *self.INTS, *self.BOOLS):
            setattr(self, name, np.zeros(0))
        self._grow(capacity)

    # Attributes are set dynamically above; these annotations keep mypy informed.
    created: np.ndarray
    started_at: np.ndarray
    ready_at: np.ndarray
    restarts: np.ndarray
    memory: np.ndarray
    leaked: np.ndarray
    cpu_seconds: np.ndarray
    cpu_usage: np.ndarray
    cpu_request: np.ndarray
    cpu_limit: np.ndarray
    memory_request: np.ndarray
    memory_limit: np.ndarray
    run_since: np.ndarray
    workload: np.ndarray
    node: np.ndarray
    last_reason: np.ndarray
    waiting: np.ndarray
    streak: np.ndarray
    exit_code: np.ndarray
    alive: np.ndarray
    ready: np.ndarray
    running: np.ndarray
    bad: np.ndarray

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        for name in self.FLOATS:
            arr = np.zeros(capacity)
            arr[:old] = getattr(self, name)[:old]
            setattr(self, name, arr)
        for name in self.INTS:
            arr = np.full(capacity, -1 if name == "node" else 0, dtype=np.int64)
            arr[:old] = getattr(self, name)[:old]
            setattr(self, name, arr)
        for name in self.BOOLS:
            arr = np.zeros(capacity, dtype=bool)
            arr[:old] = getattr(self, name)[:old]
            setattr(self, name, arr)
        self.capacity = capacity

    def allocate(self) -> int:
        """A free slot (growing the table when full), reset to a fresh pod."""
        free = np.flatnonzero(~self.alive)
        if free.size == 0:
            slot = self.capacity
            self._grow(self.capacity * 2)
        else:
            slot = int(free[0])
        for name in self.FLOATS:
            getattr(self, name)[slot] = 0.0
        for name in self.INTS:
            getattr(self, name)[slot] = -1 if name == "node" else 0
        for name in self.BOOLS:
            getattr(self, name)[slot] = False
        self.alive[slot] = True
        self.started_at[slot] = np.inf
        self.ready_at[slot] = np.inf
        return slot


@dataclass
class ClusterState:
    """Everything the twin's cluster holds; looked up by namespace/name."""

    namespaces: list[str]
    nodes: dict[str, NodeState]
    deployments: dict[tuple[str, str], DeploymentState]
    hpas: dict[tuple[str, str], HpaState]
    pods: dict[tuple[str, str], PodState] = field(default_factory=dict)
    table: PodTable = field(default_factory=PodTable)

    def workloads(self) -> list[DeploymentState]:
        return sorted(self.deployments.values(), key=lambda d: d.index)

    def node_list(self) -> list[NodeState]:
        return sorted(self.nodes.values(), key=lambda n: n.index)
