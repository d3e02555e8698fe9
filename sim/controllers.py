"""The twin's control plane: HPA, Deployment/ReplicaSet controllers, scheduler, node lifecycle.

``ControlPlane.sync(t)`` runs once per twin step (before the kubelet dynamics in
``vigil.sim.twin``); ``vigil.sim.cluster`` calls ``reconcile_deployment`` right after a
mutating action so the new ReplicaSet revision is visible at once. The HPA follows
Kubernetes' ``replica_calculator.go`` and ``horizontal.go`` (see ``hpa_replicas`` and
``hpa_normalize``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vigil.sim.state import (
    ClusterState,
    DeploymentState,
    HpaState,
    PodState,
    ReplicaSetState,
)

if TYPE_CHECKING:
    from vigil.sim.workload import WorkloadSpec

__all__ = [
    "HPA_TOLERANCE",
    "NODE_EVICTION_S",
    "SCALE_DOWN_WINDOW_S",
    "ControlPlane",
    "hpa_normalize",
    "hpa_replicas",
]

HPA_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
SCALE_DOWN_WINDOW_S = 300.0  # default behavior.scaleDown.stabilizationWindowSeconds
NODE_EVICTION_S = 300.0  # default tolerationSeconds for node.kubernetes.io/not-ready
CONTAINER_START_S = 5.0  # image pull + container start before the app's own start-up
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def hpa_replicas(
    current: int,
    ready_usage: Sequence[float],
    ready_requests: Sequence[float],
    unready_requests: Sequence[float],
    *,
    target_utilization: float,
    missing_requests: Sequence[float] = (),
) -> int | None:
    """Metric-based replica count (Kubernetes ``GetResourceReplicas`` for CPU).

    ``ready_usage``/``ready_requests``: CPU cores used and requested by each ready pod
    with metrics (compared in milli-cores and whole percents, like Kubernetes);
    ``unready_requests``: pods pending or not yet ready (ignored, or counted as using
    nothing when scaling up); ``missing_requests``: ready pods without metrics yet
    (counted as using their whole request when scaling down, nothing when scaling up).
    ``None`` when no pod has metrics (the HPA does nothing).
    """
    if not ready_usage:
        return None
    target = round(target_utilization * 100)
    usage_m = sum(round(u * 1000) for u in ready_usage)
    request_m = sum(round(r * 1000) for r in ready_requests)
    ratio = _usage_ratio(usage_m, request_m, target)
    counted = len(ready_usage)
    with_unready = len(unready_requests) > 0 and ratio > 1.0
    if not with_unready and not missing_requests:
        if abs(1.0 - ratio) <= HPA_TOLERANCE:
            return current
        return math.ceil(ratio * counted)
    # Fill the gaps pessimistically in the direction of the change, which damps it.
    if missing_requests and ratio != 1.0:
        missing_m = sum(round(r * 1000) for r in missing_requests)
        if ratio < 1.0:
            usage_m += missing_m * max(target, 100) // 100
        request_m += missing_m
        counted += len(missing_requests)
    if with_unready:
        request_m += sum(round(r * 1000) for r in unready_requests)
        counted += len(unready_requests)
    new_ratio = _usage_ratio(usage_m, request_m, target)
    if (
        abs(1.0 - new_ratio) <= HPA_TOLERANCE
        or (ratio < 1.0 < new_ratio)
        or (ratio > 1.0 > new_ratio)
    ):
        return current
    new = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def _usage_ratio(usage_m: int, request_m: int, target_percent: int) -> float:
    """``GetResourceUtilizationRatio``: utilisation as a whole percent (integer division
    of milli-cores, as Kubernetes does), over the target percent."""
    utilization = (usage_m * 100) // request_m
    return utilization / target_percent


def hpa_normalize(
    hpa: HpaState, current: int, raw: int, now: float, window: float = SCALE_DOWN_WINDOW_S
) -> int:
    """Stabilise and rate-limit like ``normalizeDesiredReplicasWithBehaviors`` (defaults).

    Scale-down takes the highest recommendation of the last ``window`` seconds (a new
    HPA's window starts with the current count); scale-up
    is limited to max(2 × current, current + 4) per 15 s period (steps are ≥ 15 s);
    the result is clamped to [min, max].
    """
    if not hpa.recommendations:
        # maybeInitScaleDownStabilizationWindow: a new HPA starts its window with the
        # current count, so it never scales down in its first 300 s.
        hpa.recommendations.append((now, current))
    down = raw
    for when, rec in hpa.recommendations:
        if when > now - window:
            down = max(down, rec)
    hpa.recommendations = [(w, r) for w, r in hpa.recommendations if w > now - window]
    hpa.recommendations.append((now, raw))
    desired = current
    desired = max(desired, raw)
    desired = min(desired, down)
    if desired > current:
        limit = max(2 * current, current + 4)
        desired = min(desired, hpa.max_replicas, max(limit, current))
    elif desired < current:
        desired = max(desired, hpa.min_replicas)
    return max(hpa.min_replicas, min(hpa.max_replicas, desired))


class ControlPlane:
    """Controllers acting on a ``ClusterState``; pod names come from their own RNG."""

    def __init__(
        self, state: ClusterState, specs: list[WorkloadSpec], seed: int, bad_images: set[str]
    ) -> None:
        self.state = state
        self.specs = specs
        self.bad_images = bad_images
        self._rng = np.random.default_rng([seed, 2])

    # ------------------------------------------------------------------ pods
    def _pod_name(self, rs: ReplicaSetState, namespace: str) -> str:
        while True:
            suffix = "".join(
                _NAME_ALPHABET[int(i)] for i in self._rng.integers(0, len(_NAME_ALPHABET), 5)
            )
            name = f"{rs.name}-{suffix}"
            if (namespace, name) not in self.state.pods:
                return name

    def create_pod(self, dep: DeploymentState, rs: ReplicaSetState, t: float) -> PodState:
        table = self.state.table
        slot = table.allocate()
        main = rs.template.main
        table.created[slot] = t
        table.workload[slot] = dep.index
        table.cpu_request[slot] = main.cpu_request
        table.cpu_limit[slot] = main.cpu_limit
        table.memory_request[slot] = main.memory_request
        table.memory_limit[slot] = main.memory_limit
        table.memory[slot] = 0.0
        table.bad[slot] = main.image in self.bad_images
        table.waiting[slot] = 1  # ContainerCreating
        pod = PodState(self._pod_name(rs, dep.namespace), dep.namespace, dep, rs, slot, t)
        rs.pods.append(pod)
        self.state.pods[(dep.namespace, pod.name)] = pod
        return pod

    def delete_pod(self, pod: PodState) -> None:
        pod.rs.pods.remove(pod)
        del self.state.pods[(pod.namespace, pod.name)]
        self.state.table.alive[pod.slot] = False
        self.state.table.ready[pod.slot] = False

    def _deletion_order(self, pods: list[PodState]) -> list[PodState]:
        """Kubernetes' ActivePods order: unscheduled, pending, unready, newer, restarted first."""
        table = self.state.table
        return sorted(
            pods,
            key=lambda p: (
                p.node is not None,
                bool(table.running[p.slot]),
                bool(table.ready[p.slot]),
                -float(table.restarts[p.slot]),
                -p.created_at,
                p.name,
            ),
        )

    # ------------------------------------------------------------------ deployments
    def reconcile_deployment(self, dep: DeploymentState, t: float) -> ReplicaSetState:
        """Make sure the template has its ReplicaSet, as the newest revision."""
        rs = dep.current_rs()
        newest = max((r.revision for r in dep.replica_sets), default=0)
        if rs is None:
            name = f"{dep.name}-{dep.template.template_hash}"
            rs = ReplicaSetState(name, newest + 1, dep.template, 0, t)
            dep.replica_sets.append(rs)
            dep.last_rollout_at = t if newest else dep.last_rollout_at
        elif rs.revision != newest:
            rs.revision = newest + 1  # an undo makes the old RS the newest revision
            dep.last_rollout_at = t
        return rs

    def _roll(self, dep: DeploymentState, t: float) -> None:
        table = self.state.table
        new = self.reconcile_deployment(dep, t)
        olds = [rs for rs in dep.replica_sets if rs is not new and rs.replicas > 0]
        desired = dep.replicas
        if not olds:
            new.replicas = desired
            return
        surge = math.ceil(0.25 * desired)
        unavailable = math.floor(0.25 * desired)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        total = sum(rs.replicas for rs in dep.replica_sets)
        room = desired + surge - total
        if room > 0:
            new.replicas = min(desired, new.replicas + room)
        # Old pods that are not ready never count towards availability: drop them first.
        ready_total = sum(int(table.ready[p.slot]) for rs in dep.replica_sets for p in rs.pods)
        removable = ready_total - (desired - unavailable)
        for rs in sorted(olds, key=lambda r: r.revision):
            unready = sum(1 for p in rs.pods if not table.ready[p.slot])
            cut = min(rs.replicas, unready + max(0, removable))
            ready_cut = max(0, cut - unready)
            removable -= ready_cut
            rs.replicas -= cut
        new.replicas = min(new.replicas, desired)

    def _sync_replica_set(self, dep: DeploymentState, rs: ReplicaSetState, t: float) -> None:
        missing = rs.replicas - len(rs.pods)
        for _ in range(max(0, missing)):
            self.create_pod(dep, rs, t)
        if missing < 0:
            for pod in self._deletion_order(rs.pods)[:-missing]:
                self.delete_pod(pod)

    def _prune_history(self, dep: DeploymentState) -> None:
        if len(dep.replica_sets) <= dep.revision_history_limit + 1:
            return
        idle = sorted(
            (rs for rs in dep.replica_sets if rs.replicas == 0 and not rs.pods),
            key=lambda r: r.revision,
        )
        current = dep.current_rs()
        idle = [rs for rs in idle if rs is not current]
        while len(idle) > dep.revision_history_limit:
            dep.replica_sets.remove(idle.pop(0))

    # ------------------------------------------------------------------ HPA
    def _sync_hpa(self, hpa: HpaState, t: float) -> None:
        dep = self.state.deployments.get((hpa.namespace, hpa.target))
        if dep is None or dep.replicas == 0:
            return
        table = self.state.table
        current = dep.replicas
        usage: list[float] = []
        requests: list[float] = []
        unready: list[float] = []
        missing: list[float] = []
        for pod in dep.pods():
            request = float(table.cpu_request[pod.slot])
            if not table.ready[pod.slot]:
                unready.append(request)
            elif table.cpu_seconds[pod.slot] <= 0:
                missing.append(request)  # metrics-server has no sample for it yet
            else:
                usage.append(float(table.cpu_usage[pod.slot]))
                requests.append(request)
        if requests and sum(requests) > 0:
            hpa.last_utilization = sum(usage) / sum(requests)
        if current > hpa.max_replicas:
            desired = hpa.max_replicas
        elif current < hpa.min_replicas:
            desired = hpa.min_replicas
        else:
            raw = hpa_replicas(
                current,
                usage,
                requests,
                unready,
                target_utilization=hpa.target_utilization,
                missing_requests=missing,
            )
            if raw is None:
                return
            desired = hpa_normalize(hpa, current, raw, t)
        hpa.current_replicas = current
        hpa.desired_replicas = desired
        if desired != current:
            dep.replicas = desired
            dep.generation += 1

    # ------------------------------------------------------------------ nodes
    def _node_lifecycle(self, t: float) -> None:
        for node in self.state.node_list():
            if node.ready or node.not_ready_since is None:
                continue
            if t - node.not_ready_since >= NODE_EVICTION_S:
                for pod in [p for p in self.state.pods.values() if p.node == node.name]:
                    self.delete_pod(pod)

    def schedule(self, t: float) -> None:
        """Bind unscheduled pods to the least-allocated feasible node, spreading replicas."""
        pending = [p for p in self.state.pods.values() if p.node is None]
        if not pending:
            return
        table = self.state.table
        nodes = self.state.node_list()
        alive = table.alive & (table.node >= 0)
        cpu_used = np.bincount(
            table.node[alive], weights=table.cpu_request[alive], minlength=len(nodes)
        )
        mem_used = np.bincount(
            table.node[alive], weights=table.memory_request[alive], minlength=len(nodes)
        )
        for pod in sorted(pending, key=lambda p: (p.created_at, p.name)):
            slot = pod.slot
            best: tuple[float, int] | None = None
            for node in nodes:
                if not node.ready or node.unschedulable:
                    continue
                i = node.index
                if cpu_used[i] + table.cpu_request[slot] > node.cpu:
                    continue
                if mem_used[i] + table.memory_request[slot] > node.memory:
                    continue
                siblings = sum(1 for p in pod.deployment.pods() if p.node == node.name)
                score = (node.cpu - cpu_used[i]) / node.cpu - 0.15 * siblings
                if best is None or score > best[0]:
                    best = (score, i)
            if best is None:
                continue  # stays Pending (FailedScheduling)
            i = best[1]
            pod.node = nodes[i].name
            table.node[slot] = i
            cpu_used[i] += table.cpu_request[slot]
            mem_used[i] += table.memory_request[slot]
            spec = self.specs[pod.deployment.index]
            table.started_at[slot] = t + CONTAINER_START_S
            table.ready_at[slot] = t + CONTAINER_START_S + spec.startup_s

    # ------------------------------------------------------------------ one sync
    def sync(self, t: float) -> None:
        self._node_lifecycle(t)
        for hpa in sorted(self.state.hpas.values(), key=lambda h: (h.namespace, h.name)):
            self._sync_hpa(hpa, t)
        for dep in self.state.workloads():
            self._roll(dep, t)
            for rs in sorted(dep.replica_sets, key=lambda r: r.revision):
                self._sync_replica_set(dep, rs, t)
            self._prune_history(dep)
        self.schedule(t)
