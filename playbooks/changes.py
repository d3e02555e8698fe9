"""A plan made concrete against the cluster's current state: what exactly would change.

Plans carry the playbook's intent (``scale by 1, max 20``); just before deciding and
again just before acting, ``compute_change`` reads the target through the ``Cluster``
port and works out the concrete call (``4 → 5 replicas``), whether there is nothing to
do, how many ready replicas it takes down at once (for the blast-radius guardrail), and
a snapshot of the state before (for verify, revert and crash reconciliation).
Used by ``guardrails``, ``executor`` and ``manual``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vigil.core import ActionKind, ActionResult, NotFoundError, ObjectRef, PodInfo, WorkloadInfo
from vigil.playbooks.quantities import format_bytes, parse_bytes
from vigil.playbooks.settings import ResourceBounds

if TYPE_CHECKING:
    from vigil.core import Cluster, Plan

__all__ = [
    "Change",
    "compute_change",
    "describe_intent",
    "owning_workload",
    "workload_pods",
]

Call = Callable[[bool], ActionResult]


@dataclass(frozen=True)
class Change:
    """What ``plan`` would do now. ``call(dry_run)`` performs it; ``noop`` says why not."""

    summary: str
    call: Call | None = None
    noop: str = ""
    workload: WorkloadInfo | None = None
    ready_lost: int = 0
    snapshot: Mapping[str, Any] = field(default_factory=dict)


def owning_workload(cluster: Cluster, plan: Plan) -> ObjectRef | None:
    """The workload a plan is about: its target, or the owner of its target pod."""
    if plan.target.kind in ("Deployment", "StatefulSet"):
        return plan.target
    if plan.target.kind == "Pod":
        named = plan.params.get("workload")
        if isinstance(named, str) and named:
            return ObjectRef.parse(named)
        return cluster.owner_workload(plan.target)
    return None


def workload_pods(cluster: Cluster, workload: WorkloadInfo) -> list[PodInfo]:
    ns = workload.ref.namespace
    if not workload.selector:
        return []
    return cluster.list_pods(ns, dict(workload.selector))


def _base_snapshot(cluster: Cluster, wl: WorkloadInfo) -> dict[str, Any]:
    pods = workload_pods(cluster, wl)
    return {
        "workload": str(wl.ref),
        "replicas": wl.replicas,
        "ready_replicas": wl.ready_replicas,
        "revision": wl.revision,
        "restarts": sum(p.restarts for p in pods),
        "pod_restarts": {p.ref.name: p.restarts for p in pods},
    }


def _scale(cluster: Cluster, plan: Plan) -> Change:
    wl = cluster.get_workload(plan.target)
    params = plan.params
    if "replicas" in params:
        want = int(params["replicas"])
    else:
        want = wl.replicas + int(params.get("by", 1))
    cap = params.get("max_replicas")
    if cap is not None:
        want = min(want, int(cap))
    snap = _base_snapshot(cluster, wl)
    summary = f"scale {plan.target} {wl.replicas} → {want}"
    if want == wl.replicas:
        limit = f" (max_replicas {cap})" if cap is not None else ""
        return Change(
            summary, noop=f"already at {want} replicas{limit}", workload=wl, snapshot=snap
        )
    lost = max(0, wl.ready_replicas - want)
    return Change(
        summary,
        call=lambda dry: cluster.scale(plan.target, want, dry_run=dry),
        workload=wl,
        ready_lost=lost,
        snapshot=snap,
    )


def _resources(cluster: Cluster, plan: Plan, bounds: ResourceBounds) -> Change:
    wl = cluster.get_workload(plan.target)
    if not wl.containers:
        return Change(f"patch resources of {plan.target}", noop="the workload has no containers")
    name = plan.params.get("container")
    chosen = next((c for c in wl.containers if c.name == name), None) if name else wl.containers[0]
    if chosen is None:
        known = ", ".join(c.name for c in wl.containers)
        raise NotFoundError(f"{plan.target}: no container {name!r}; it has {known}")
    current = chosen.memory_limit or float(bounds.memory_limit_default)
    factor = float(plan.params.get("step_factor") or bounds.memory_step_factor)
    ceiling = float(bounds.memory_limit_max)
    if plan.params.get("max"):
        ceiling = min(ceiling, float(parse_bytes(plan.params["max"])))
    exact = plan.params.get("memory_limit")
    want = min(float(parse_bytes(exact)) if exact else current * factor, ceiling)
    new_text = format_bytes(want)
    snap = {
        **_base_snapshot(cluster, wl),
        "container": chosen.name,
        "memory_limit": chosen.memory_limit,
        "memory_request": chosen.memory_request,
    }
    summary = (
        f"raise memory limit of {plan.target} container {chosen.name} "
        f"{format_bytes(current)} → {new_text}"
    )
    unchanged = parse_bytes(new_text) == current if exact else parse_bytes(new_text) <= current
    if unchanged:
        why = (
            f"memory limit is {new_text} already"
            if exact and want < ceiling
            else f"memory limit already at the allowed maximum {format_bytes(ceiling)}"
        )
        return Change(
            summary,
            noop=why,
            workload=wl,
            snapshot=snap,
        )
    return Change(
        summary,
        call=lambda dry: cluster.patch_resources(
            plan.target, chosen.name, limits={"memory": new_text}, dry_run=dry
        ),
        workload=wl,
        snapshot=snap,
    )


def _hpa(cluster: Cluster, plan: Plan) -> Change:
    wl = cluster.get_workload(plan.target)
    hpas = [h for h in cluster.list_hpas(plan.target.namespace) if h.target == plan.target]
    if not hpas:
        return Change(f"patch the HPA of {plan.target}", noop="no HPA scales this workload")
    hpa = hpas[0]
    low = plan.params.get("min_replicas", hpa.min_replicas)
    high = plan.params.get("max_replicas", hpa.max_replicas)
    high = max(int(high), int(low))
    snap = {
        **_base_snapshot(cluster, wl),
        "hpa": str(hpa.ref),
        "min_replicas": hpa.min_replicas,
        "max_replicas": hpa.max_replicas,
    }
    summary = f"patch {hpa.ref} min/max {hpa.min_replicas}/{hpa.max_replicas} → {low}/{high}"
    if (low, high) == (hpa.min_replicas, hpa.max_replicas):
        return Change(summary, noop=f"HPA already at {low}/{high}", workload=wl, snapshot=snap)
    return Change(
        summary,
        call=lambda dry: cluster.patch_hpa(
            hpa.ref, min_replicas=int(low), max_replicas=int(high), dry_run=dry
        ),
        workload=wl,
        snapshot=snap,
    )


def _pod(cluster: Cluster, plan: Plan) -> Change:
    verb = "evict" if plan.action is ActionKind.EVICT_POD else "delete"
    summary = f"{verb} {plan.target}"
    pods = {p.ref.name: p for p in cluster.list_pods(plan.target.namespace)}
    pod = pods.get(plan.target.name)
    if pod is None:
        return Change(summary, noop="the pod is gone already")
    owner = owning_workload(cluster, plan)
    wl = cluster.get_workload(owner) if owner is not None else None
    snap: dict[str, Any] = _base_snapshot(cluster, wl) if wl is not None else {}
    snap.update(pod_ready=pod.ready, pod_restarts=pod.restarts)
    method = cluster.evict_pod if plan.action is ActionKind.EVICT_POD else cluster.delete_pod
    return Change(
        summary,
        call=lambda dry: method(plan.target, dry_run=dry),
        workload=wl,
        ready_lost=1 if pod.ready else 0,
        snapshot=snap,
    )


def _node(cluster: Cluster, plan: Plan) -> Change:
    cordon = plan.action is ActionKind.CORDON
    summary = f"{'cordon' if cordon else 'uncordon'} {plan.target}"
    node = next((n for n in cluster.list_nodes() if n.name == plan.target.name), None)
    if node is None:
        raise NotFoundError(f"{plan.target}: no such node")
    snap = {"unschedulable": node.unschedulable, "ready": node.ready}
    if node.unschedulable == cordon:
        state = "cordoned" if cordon else "schedulable"
        return Change(summary, noop=f"the node is {state} already", snapshot=snap)
    method = cluster.cordon if cordon else cluster.uncordon
    return Change(summary, call=lambda dry: method(plan.target.name, dry_run=dry), snapshot=snap)


def _rollout(cluster: Cluster, plan: Plan) -> Change:
    wl = cluster.get_workload(plan.target)
    snap = _base_snapshot(cluster, wl)
    if plan.action is ActionKind.ROLLOUT_RESTART:
        return Change(
            f"rolling restart of {plan.target} (revision {wl.revision})",
            call=lambda dry: cluster.rollout_restart(plan.target, dry_run=dry),
            workload=wl,
            snapshot=snap,
        )
    to = plan.params.get("to_revision")
    summary = f"undo rollout of {plan.target} from revision {wl.revision} to {to or 'the previous'}"
    if wl.revision <= 1 and to is None:
        return Change(
            summary, noop="no previous revision to go back to", workload=wl, snapshot=snap
        )
    return Change(
        summary,
        call=lambda dry: cluster.rollout_undo(
            plan.target, to_revision=int(to) if to else None, dry_run=dry
        ),
        workload=wl,
        snapshot=snap,
    )


def describe_intent(plan: Plan) -> str:
    """The plan in words without reading the cluster (backtests, no-cluster dry runs)."""
    params = ", ".join(f"{k}={v}" for k, v in plan.params.items())
    return f"{plan.action} {plan.target}" + (f" ({params})" if params else "")


def compute_change(plan: Plan, cluster: Cluster | None, bounds: ResourceBounds) -> Change:
    """The concrete change ``plan`` would make now; without a cluster, only its intent."""
    if plan.action is ActionKind.NOTIFY:
        return Change(f"notify people about {plan.target}")
    if cluster is None:
        return Change(describe_intent(plan))
    kind = plan.action
    if kind is ActionKind.SCALE:
        return _scale(cluster, plan)
    if kind is ActionKind.PATCH_RESOURCES:
        return _resources(cluster, plan, bounds)
    if kind is ActionKind.PATCH_HPA:
        return _hpa(cluster, plan)
    if kind in (ActionKind.DELETE_POD, ActionKind.EVICT_POD):
        return _pod(cluster, plan)
    if kind in (ActionKind.CORDON, ActionKind.UNCORDON):
        return _node(cluster, plan)
    return _rollout(cluster, plan)
