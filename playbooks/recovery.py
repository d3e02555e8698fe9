"""Crash recovery: did a row left ``running`` by a killed process change the cluster?

``PlaybookEngine.reconcile`` asks ``change_landed`` for each such row at start, reading
the cluster and comparing with the before-state the engine saved before acting. It
never acts; it only tells what the cluster shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.core import ActionKind, JournalEntry, NotFoundError
from vigil.playbooks.approvals import plan_from_entry
from vigil.playbooks.changes import owning_workload
from vigil.playbooks.verification import observed_snapshot

if TYPE_CHECKING:
    from vigil.core import Cluster

__all__ = ["change_landed"]


def change_landed(entry: JournalEntry, cluster: Cluster | None) -> tuple[bool, str]:
    """Whether the cluster shows ``entry``'s change, and what it shows."""
    if entry.action is ActionKind.NOTIFY:
        return True, "notification handed to the outbox"
    snap = observed_snapshot(entry)
    if not snap:
        return False, "it was interrupted before acting (no before-state recorded)"
    if cluster is None:
        return False, "no cluster to read the outcome from"
    plan = plan_from_entry(entry)
    try:
        if entry.action in (ActionKind.CORDON, ActionKind.UNCORDON):
            node = next(n for n in cluster.list_nodes() if n.name == entry.target.name)
            want = entry.action is ActionKind.CORDON
            return node.unschedulable == want, f"node unschedulable={node.unschedulable}"
        if entry.action in (ActionKind.DELETE_POD, ActionKind.EVICT_POD):
            names = {p.ref.name for p in cluster.list_pods(entry.target.namespace)}
            gone = entry.target.name not in names
            return gone, "the pod is gone" if gone else "the pod still exists"
        ref = owning_workload(cluster, plan) or entry.target
        wl = cluster.get_workload(ref)
    except (StopIteration, NotFoundError):
        return False, f"{entry.target} is gone"
    if entry.action is ActionKind.SCALE:
        want_replicas = entry.params.get("replicas")
        moved = (
            wl.replicas == int(want_replicas)
            if want_replicas is not None
            else wl.replicas != snap.get("replicas")
        )
        return moved, f"replicas={wl.replicas} (was {snap.get('replicas')})"
    if entry.action in (ActionKind.ROLLOUT_RESTART, ActionKind.ROLLOUT_UNDO):
        moved = wl.revision != snap.get("revision")
        return moved, f"revision={wl.revision} (was {snap.get('revision')})"
    if entry.action is ActionKind.PATCH_RESOURCES:
        container = next((c for c in wl.containers if c.name == snap.get("container")), None)
        now_limit = container.memory_limit if container else None
        return now_limit != snap.get("memory_limit"), f"memory limit={now_limit}"
    if entry.action is ActionKind.PATCH_HPA:  # the last mutating kind
        hpa = next(
            (h for h in cluster.list_hpas(ref.namespace) if str(h.ref) == snap.get("hpa")),
            None,
        )
        if hpa is None:
            return False, "the HPA is gone"
        moved = (hpa.min_replicas, hpa.max_replicas) != (
            snap.get("min_replicas"),
            snap.get("max_replicas"),
        )
        return moved, f"HPA min/max={hpa.min_replicas}/{hpa.max_replicas}"
    raise AssertionError(f"unhandled action {entry.action}")
