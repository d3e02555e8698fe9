"""``SimCluster``: the ``Cluster`` port over the twin's state, as ``kubectl`` would see it.

Reads return ``vigil.core`` snapshots; every mutating method validates its arguments,
honours ``dry_run`` (validated, nothing changes) and returns an ``ActionResult`` whose
``before`` holds what a revert needs. Unknown objects raise ``NotFoundError`` naming
them; bad arguments raise ``PermanentError``. Rollouts behave as on a real cluster:
a restart or a resource patch makes a new ReplicaSet revision; ``rollout_undo``
copies the previous (or given) revision's template back, and that ReplicaSet becomes
the newest revision. Created by ``vigil.sim.twin.Twin`` (``twin.cluster``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vigil.core import (
    ActionKind,
    ActionResult,
    ActionStatus,
    HpaInfo,
    NodeInfo,
    NotFoundError,
    ObjectRef,
    PermanentError,
    PodInfo,
    WorkloadInfo,
)
from vigil.sim.quantities import format_cpu, format_memory, parse_cpu, parse_memory
from vigil.sim.snapshots import hpa_info, node_info, pod_info, workload_info
from vigil.sim.state import (
    ClusterState,
    DeploymentState,
    HpaState,
    NodeState,
    PodState,
)

if TYPE_CHECKING:
    from vigil.sim.twin import Twin

__all__ = ["SimCluster"]

_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class SimCluster:
    """The twin's Kubernetes API. Changes take effect in the twin's next step."""

    def __init__(self, twin: Twin) -> None:
        self._twin = twin

    @property
    def _state(self) -> ClusterState:
        return self._twin.state

    # ------------------------------------------------------------------ lookups
    def _namespace(self, namespace: str | None) -> None:
        if namespace is not None and namespace not in self._state.namespaces:
            raise NotFoundError(f"namespace {namespace!r} not found in the simulated cluster")

    def _deployment(self, ref: ObjectRef) -> DeploymentState:
        if ref.kind != "Deployment":
            raise PermanentError(
                f"{ref}: the simulated cluster runs Deployments only (got kind {ref.kind})"
            )
        dep = self._state.deployments.get((ref.namespace or "", ref.name))
        if dep is None:
            raise NotFoundError(f"deployment {ref.namespace}/{ref.name} not found")
        return dep

    def _pod(self, ref: ObjectRef) -> PodState:
        if ref.kind != "Pod":
            raise PermanentError(f"{ref}: expected a pod reference (pod/NAMESPACE/NAME)")
        pod = self._state.pods.get((ref.namespace or "", ref.name))
        if pod is None:
            raise NotFoundError(f"pod {ref.namespace}/{ref.name} not found")
        return pod

    def _node(self, name: str) -> NodeState:
        node = self._state.nodes.get(name)
        if node is None:
            raise NotFoundError(f"node {name!r} not found")
        return node

    def _hpa(self, ref: ObjectRef) -> HpaState:
        if ref.kind == "Deployment":
            found = [
                h
                for h in self._state.hpas.values()
                if (h.namespace, h.target) == (ref.namespace, ref.name)
            ]
            if not found:
                raise NotFoundError(f"no HorizontalPodAutoscaler targets {ref}")
            return found[0]
        if ref.kind != "HorizontalPodAutoscaler":
            raise PermanentError(f"{ref}: expected an hpa or deployment reference")
        hpa = self._state.hpas.get((ref.namespace or "", ref.name))
        if hpa is None:
            raise NotFoundError(f"horizontalpodautoscaler {ref.namespace}/{ref.name} not found")
        return hpa

    # ------------------------------------------------------------------ reads
    def list_namespaces(self) -> list[str]:
        return list(self._state.namespaces)

    def list_workloads(self, namespace: str | None = None) -> list[WorkloadInfo]:
        self._namespace(namespace)
        return [
            workload_info(d, self._state.table)
            for d in sorted(self._state.deployments.values(), key=lambda d: (d.namespace, d.name))
            if namespace is None or d.namespace == namespace
        ]

    def get_workload(self, ref: ObjectRef) -> WorkloadInfo:
        return workload_info(self._deployment(ref), self._state.table)

    def list_pods(
        self, namespace: str | None = None, selector: Mapping[str, str] | None = None
    ) -> list[PodInfo]:
        self._namespace(namespace)
        out = []
        for key in sorted(self._state.pods):
            pod = self._state.pods[key]
            if namespace is not None and pod.namespace != namespace:
                continue
            info = pod_info(pod, self._state.table, self._twin.t)
            if selector and any(info.labels.get(k) != v for k, v in selector.items()):
                continue
            out.append(info)
        return out

    def list_nodes(self) -> list[NodeInfo]:
        return [node_info(n) for n in self._state.node_list()]

    def list_hpas(self, namespace: str | None = None) -> list[HpaInfo]:
        self._namespace(namespace)
        return [
            hpa_info(h)
            for _, h in sorted(self._state.hpas.items())
            if namespace is None or h.namespace == namespace
        ]

    def owner_workload(self, pod: ObjectRef) -> ObjectRef | None:
        found = self._pod(pod)
        return ObjectRef("Deployment", found.namespace, found.deployment.name)

    # ------------------------------------------------------------------ results
    def _result(
        self,
        action: ActionKind,
        target: ObjectRef,
        *,
        dry_run: bool,
        message: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
    ) -> ActionResult:
        now = self._twin.clock.now()
        return ActionResult(
            action=action,
            target=target,
            status=ActionStatus.DRY_RUN if dry_run else ActionStatus.SUCCEEDED,
            started_at=now,
            finished_at=now,
            dry_run=dry_run,
            message=("dry run: would have " if dry_run else "") + message,
            before=before,
            after=after,
        )

    # ------------------------------------------------------------------ actions
    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        dep = self._deployment(ref)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise PermanentError(f"{ref}: replicas must be an integer >= 0, got {replicas!r}")
        before = dep.replicas
        if not dry_run:
            dep.replicas = replicas
            dep.generation += 1
        return self._result(
            ActionKind.SCALE,
            ref,
            dry_run=dry_run,
            message=f"scaled {ref} from {before} to {replicas} replicas",
            before={"replicas": before},
            after={"replicas": replicas},
        )

    def rollout_restart(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        dep = self._deployment(ref)
        before = dep.revision
        had = dict(dep.template.annotations).get(_RESTARTED_AT)
        stamp = self._twin.clock.now().isoformat()
        after = before
        if not dry_run:
            dep.template = dep.template.with_annotation(_RESTARTED_AT, stamp)
            dep.generation += 1
            after = self._twin.control.reconcile_deployment(dep, self._twin.t).revision
        return self._result(
            ActionKind.ROLLOUT_RESTART,
            ref,
            dry_run=dry_run,
            message=f"restarted {ref} (revision {before} → {after if not dry_run else 'new'})",
            before={"revision": before, "restarted_at": had, "images": _images(dep)},
            after={"revision": after, "restarted_at": stamp},
        )

    def rollout_undo(
        self, ref: ObjectRef, *, to_revision: int | None = None, dry_run: bool
    ) -> ActionResult:
        dep = self._deployment(ref)
        current = dep.current_rs()
        cur_rev = current.revision if current else 0
        others = sorted(
            (rs for rs in dep.replica_sets if rs is not current), key=lambda r: r.revision
        )
        if to_revision is None or to_revision == 0:
            if not others:
                raise PermanentError(
                    f"{ref}: no rollout history to undo to (revision {cur_rev} is the only one)"
                )
            target = others[-1]
        else:
            if not isinstance(to_revision, int) or to_revision < 0:
                raise PermanentError(
                    f"{ref}: to_revision must be an integer >= 0, got {to_revision!r}"
                )
            if to_revision == cur_rev:
                return self._result(
                    ActionKind.ROLLOUT_UNDO,
                    ref,
                    dry_run=dry_run,
                    message=f"skipped rollback of {ref}: revision {cur_rev} is already current",
                    before={"revision": cur_rev, "images": _images(dep)},
                    after={"revision": cur_rev, "to_revision": cur_rev, "images": _images(dep)},
                )
            match = [rs for rs in others if rs.revision == to_revision]
            if not match:
                known = ", ".join(str(rs.revision) for rs in dep.replica_sets)
                raise NotFoundError(f"{ref}: revision {to_revision} not found (known: {known})")
            target = match[0]
        before = {"revision": cur_rev, "images": _images(dep)}
        from_revision = target.revision
        new_rev = cur_rev
        if not dry_run:
            dep.template = target.template
            dep.generation += 1
            new_rev = self._twin.control.reconcile_deployment(dep, self._twin.t).revision
        return self._result(
            ActionKind.ROLLOUT_UNDO,
            ref,
            dry_run=dry_run,
            message=f"rolled {ref} back to the template of revision {from_revision}",
            before=before,
            after={
                "revision": new_rev,
                "to_revision": from_revision,
                "images": [c.image for c in target.template.containers],
            },
        )

    def _remove_pod(self, action: ActionKind, ref: ObjectRef, dry_run: bool) -> ActionResult:
        pod = self._pod(ref)
        table = self._state.table
        before = {
            "pod": pod.name,
            "uid": pod.uid,
            "node": pod.node,
            "phase": "Running"
            if table.running[pod.slot] or table.restarts[pod.slot]
            else "Pending",
            "owner": f"ReplicaSet/{pod.rs.name}",
            "restarts": int(table.restarts[pod.slot]),
            "workload": f"deployment/{pod.namespace}/{pod.deployment.name}",
        }
        if not dry_run:
            self._twin.control.delete_pod(pod)
        verb = "evicted" if action is ActionKind.EVICT_POD else "deleted"
        return self._result(
            action,
            ref,
            dry_run=dry_run,
            message=f"{verb} {ref}; its ReplicaSet replaces it",
            before=before,
            after={"deleted_uid": pod.uid},
        )

    def delete_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        return self._remove_pod(ActionKind.DELETE_POD, ref, dry_run)

    def evict_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        return self._remove_pod(ActionKind.EVICT_POD, ref, dry_run)

    def _set_cordon(self, node_name: str, value: bool, dry_run: bool) -> ActionResult:
        node = self._node(node_name)
        before = node.unschedulable
        if not dry_run:
            node.unschedulable = value
        kind = ActionKind.CORDON if value else ActionKind.UNCORDON
        verb = "cordoned" if value else "uncordoned"
        return self._result(
            kind,
            ObjectRef("Node", None, node_name),
            dry_run=dry_run,
            message=f"{verb} node {node_name}",
            before={"unschedulable": before},
            after={"unschedulable": value},
        )

    def cordon(self, node: str, *, dry_run: bool) -> ActionResult:
        return self._set_cordon(node, True, dry_run)

    def uncordon(self, node: str, *, dry_run: bool) -> ActionResult:
        return self._set_cordon(node, False, dry_run)

    def patch_hpa(
        self,
        ref: ObjectRef,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        dry_run: bool,
    ) -> ActionResult:
        hpa = self._hpa(ref)
        if min_replicas is None and max_replicas is None:
            raise PermanentError(f"{ref}: patch_hpa needs min_replicas and/or max_replicas")
        lo = hpa.min_replicas if min_replicas is None else min_replicas
        hi = hpa.max_replicas if max_replicas is None else max_replicas
        for name, val in (("min_replicas", lo), ("max_replicas", hi)):
            if not isinstance(val, int) or isinstance(val, bool):
                raise PermanentError(f"{ref}: {name} must be an integer, got {val!r}")
        if not 1 <= lo <= hi:
            raise PermanentError(f"{ref}: need 1 <= min_replicas ({lo}) <= max_replicas ({hi})")
        before = {"min_replicas": hpa.min_replicas, "max_replicas": hpa.max_replicas}
        if not dry_run:
            hpa.min_replicas, hpa.max_replicas = lo, hi
        hpa_ref = ObjectRef("HorizontalPodAutoscaler", hpa.namespace, hpa.name)
        return self._result(
            ActionKind.PATCH_HPA,
            hpa_ref,
            dry_run=dry_run,
            message=f"patched {hpa_ref}: min {before['min_replicas']}→{lo}, "
            f"max {before['max_replicas']}→{hi}",
            before=before,
            after={"min_replicas": lo, "max_replicas": hi},
        )

    def patch_resources(
        self,
        ref: ObjectRef,
        container: str,
        *,
        requests: Mapping[str, str] | None = None,
        limits: Mapping[str, str] | None = None,
        dry_run: bool,
    ) -> ActionResult:
        dep = self._deployment(ref)
        names = [c.name for c in dep.template.containers]
        if container not in names:
            raise NotFoundError(f"{ref}: no container {container!r}; it has {', '.join(names)}")
        if not requests and not limits:
            raise PermanentError(f"{ref}: patch_resources needs requests and/or limits")
        spec = next(c for c in dep.template.containers if c.name == container)
        fields = {
            "cpu_request": spec.cpu_request,
            "cpu_limit": spec.cpu_limit,
            "memory_request": spec.memory_request,
            "memory_limit": spec.memory_limit,
        }
        for kind, given in (("request", requests or {}), ("limit", limits or {})):
            for resource, text in given.items():
                if resource == "cpu":
                    fields[f"cpu_{kind}"] = parse_cpu(text)
                elif resource == "memory":
                    fields[f"memory_{kind}"] = parse_memory(text)
                else:
                    raise PermanentError(
                        f"{ref}: unknown resource {resource!r} (use cpu or memory)"
                    )
        for res in ("cpu", "memory"):
            req, lim = fields[f"{res}_request"], fields[f"{res}_limit"]
            if lim and req > lim:
                raise PermanentError(
                    f"{ref}: container {container}: {res} request {_quantity(res, req)} "
                    f"would exceed its limit {_quantity(res, lim)}"
                )
        before = {
            "container": container,
            **_resources(spec.cpu_request, spec.cpu_limit, spec.memory_request, spec.memory_limit),
        }
        after = {"container": container, **_resources(**fields)}
        if not dry_run:
            dep.template = dep.template.with_container(
                replace(
                    spec,
                    cpu_request=fields["cpu_request"],
                    cpu_limit=fields["cpu_limit"],
                    memory_request=fields["memory_request"],
                    memory_limit=fields["memory_limit"],
                )
            )
            dep.generation += 1
            self._twin.control.reconcile_deployment(dep, self._twin.t)
        return self._result(
            ActionKind.PATCH_RESOURCES,
            ref,
            dry_run=dry_run,
            message=f"patched resources of {ref} container {container}",
            before=before,
            after=after,
        )


def _images(dep: DeploymentState) -> list[str]:
    return [c.image for c in dep.template.containers]


def _quantity(resource: str, value: float) -> str:
    return format_cpu(value) if resource == "cpu" else format_memory(value)


def _resources(
    cpu_request: float, cpu_limit: float, memory_request: float, memory_limit: float
) -> dict[str, dict[str, str]]:
    """Resources as ``patch_resources`` takes them (Kubernetes quantity strings)."""
    requests = {"cpu": format_cpu(cpu_request), "memory": format_memory(memory_request)}
    limits = {"memory": format_memory(memory_limit)}
    if cpu_limit:
        limits["cpu"] = format_cpu(cpu_limit)
    return {"requests": requests, "limits": limits}
