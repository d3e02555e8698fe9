"""Verify, revert, escalate: did the action help, and if not, undo the agent's own change.

``evaluate`` checks a playbook's ``verify`` (PromQL through a ``MetricSource``, a
Kubernetes condition through the ``Cluster``) for one journal row; ``revert_call``
says how to restore the state recorded in the row's ``before`` (replicas, the revision
before an undo, cordon, HPA bounds, memory limit). ``executor.PlaybookEngine`` drives
both when a row's ``verify_at`` comes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING, Any

from vigil.core import ActionKind, ActionResult, JournalEntry, NotFoundError, ObjectRef
from vigil.playbooks.changes import workload_pods
from vigil.playbooks.conditions import OPERATORS, parse_condition
from vigil.playbooks.quantities import format_bytes
from vigil.playbooks.schema import Verify

if TYPE_CHECKING:
    from datetime import datetime

    from vigil.core import Cluster, MetricSource

__all__ = ["Check", "evaluate", "observed_snapshot", "revert_call", "template_values"]


@dataclass(frozen=True)
class Check:
    """The verdict: ``ok``, the condition in words and what was observed."""

    ok: bool
    condition: str
    observed: str


def observed_snapshot(entry: JournalEntry) -> Mapping[str, Any]:
    """The state the engine read just before acting (``before["observed"]``)."""
    snap = entry.before.get("observed")
    return snap if isinstance(snap, Mapping) else {}


def _workload_ref(entry: JournalEntry) -> ObjectRef | None:
    if entry.target.kind in ("Deployment", "StatefulSet"):
        return entry.target
    for source in (entry.params, observed_snapshot(entry)):
        named = source.get("workload")
        if isinstance(named, str) and named:
            return ObjectRef.parse(named)
    return None


def template_values(entry: JournalEntry) -> dict[str, str]:
    """What ``$namespace``, ``$name``, ``$workload``, ``$pod``, ``$node``, ``$container``
    stand for in a verify expression (``$name`` is the workload for a pod target)."""
    wl = _workload_ref(entry)
    target = entry.target
    return {
        "namespace": target.namespace or "",
        "name": wl.name if wl is not None else target.name,
        "workload": wl.name if wl is not None else "",
        "pod": target.name if target.kind == "Pod" else "",
        "node": target.name if target.kind == "Node" else "",
        "container": str(observed_snapshot(entry).get("container", "")),
    }


def _promql(
    verify: Verify, entry: JournalEntry, metrics: MetricSource, now: datetime
) -> list[Check]:
    values = template_values(entry)
    out = []
    for check in verify.promql:
        expr = Template(check.expr).substitute(values)
        samples = metrics.query(expr, at=now)
        condition = f"{expr} {check.op} {check.threshold:g}"
        if not samples:
            out.append(Check(check.empty == "pass", condition, "no samples"))
            continue
        compare = OPERATORS[check.op]
        ok = all(math.isfinite(s.value) and compare(s.value, check.threshold) for s in samples)
        seen = ", ".join(f"{s.value:.4g}" for s in samples[:5])
        out.append(Check(ok, condition, f"values {seen}"))
    return out


def _workload_facts(entry: JournalEntry, cluster: Cluster) -> dict[str, float]:
    ref = _workload_ref(entry)
    if ref is None:
        raise NotFoundError(f"{entry.target}: no workload to verify on")
    wl = cluster.get_workload(ref)
    pods = workload_pods(cluster, wl)
    before = observed_snapshot(entry).get("pod_restarts", {})
    prior = before if isinstance(before, Mapping) else {}
    increase = sum(max(0, p.restarts - int(prior.get(p.ref.name, 0))) for p in pods)
    oom = sum(
        1
        for p in pods
        if p.last_termination_reason == "OOMKilled" and p.restarts > int(prior.get(p.ref.name, 0))
    )
    return {
        "replicas": wl.replicas,
        "ready_replicas": wl.ready_replicas,
        "available_replicas": wl.available_replicas,
        "updated_replicas": wl.updated_replicas,
        "revision": wl.revision,
        "crash_looping_pods": sum(1 for p in pods if p.crash_looping),
        "not_ready_pods": sum(1 for p in pods if not p.ready),
        "restarts_increase": increase,
        "oom_killed_pods": oom,
    }


def _node_facts(entry: JournalEntry, cluster: Cluster) -> dict[str, float]:
    node = next((n for n in cluster.list_nodes() if n.name == entry.target.name), None)
    if node is None:
        raise NotFoundError(f"{entry.target}: node is gone")
    return {
        "ready": float(node.ready),
        "unschedulable": float(node.unschedulable),
        "pressure": float(len(node.pressure)),
    }


def evaluate(
    verify: Verify,
    entry: JournalEntry,
    *,
    cluster: Cluster | None,
    metrics: MetricSource | None,
    now: datetime,
) -> Check:
    """Every check of ``verify`` on the row's target now; all must hold."""
    checks: list[Check] = []
    if verify.kubernetes is not None:
        condition = parse_condition(verify.kubernetes)
        if cluster is None:
            checks.append(Check(False, condition.text, "no cluster to read"))
        else:
            try:
                facts = (
                    _node_facts(entry, cluster)
                    if condition.scope == "node"
                    else _workload_facts(entry, cluster)
                )
                ok, seen = condition.evaluate(facts)
            except NotFoundError as exc:
                ok, seen = False, str(exc)
            checks.append(Check(ok, condition.text, seen))
    if verify.promql:
        if metrics is None:
            checks.append(Check(False, "promql", "no metric source to query"))
        else:
            checks.extend(_promql(verify, entry, metrics, now))
    return Check(
        all(c.ok for c in checks),
        " and ".join(c.condition for c in checks),
        "; ".join(f"{c.condition} does not hold ({c.observed})" for c in checks if not c.ok)
        or "; ".join(c.observed for c in checks),
    )


RevertCall = Callable[[], ActionResult]


def revert_call(entry: JournalEntry, cluster: Cluster) -> tuple[ActionKind, str, RevertCall] | None:
    """How to restore what ``entry`` changed: ``(action, summary, call)``; ``None`` when the
    change cannot be undone (a restart, a deleted pod) or its before-state is unknown."""
    snap = observed_snapshot(entry)
    target = entry.target
    kind = entry.action
    if kind is ActionKind.SCALE and "replicas" in snap:
        replicas = int(snap["replicas"])
        return (
            ActionKind.SCALE,
            f"scale {target} back to {replicas}",
            lambda: cluster.scale(target, replicas, dry_run=False),
        )
    if kind is ActionKind.ROLLOUT_UNDO and snap.get("revision"):
        revision = int(snap["revision"])
        return (
            ActionKind.ROLLOUT_UNDO,
            f"undo the agent's undo: {target} back to revision {revision}",
            lambda: cluster.rollout_undo(target, to_revision=revision, dry_run=False),
        )
    if kind is ActionKind.CORDON and snap.get("unschedulable") is False:
        return (
            ActionKind.UNCORDON,
            f"uncordon {target}",
            lambda: cluster.uncordon(target.name, dry_run=False),
        )
    if kind is ActionKind.UNCORDON and snap.get("unschedulable") is True:
        return (
            ActionKind.CORDON,
            f"cordon {target} again",
            lambda: cluster.cordon(target.name, dry_run=False),
        )
    if kind is ActionKind.PATCH_HPA and snap.get("hpa"):
        hpa = ObjectRef.parse(str(snap["hpa"]))
        low, high = int(snap["min_replicas"]), int(snap["max_replicas"])
        return (
            ActionKind.PATCH_HPA,
            f"restore {hpa} min/max to {low}/{high}",
            lambda: cluster.patch_hpa(hpa, min_replicas=low, max_replicas=high, dry_run=False),
        )
    if kind is ActionKind.PATCH_RESOURCES and snap.get("container"):
        container = str(snap["container"])
        # "" removes the limit again (the Cluster contract), for a container that had none
        old = format_bytes(float(snap["memory_limit"])) if snap.get("memory_limit") else ""
        return (
            ActionKind.PATCH_RESOURCES,
            f"restore memory limit of {target} container {container} to {old or 'none'}",
            lambda: cluster.patch_resources(
                target, container, limits={"memory": old}, dry_run=False
            ),
        )
    return None
