"""A small in-memory ``Cluster`` for the playbook tests until the twin (``vigil.sim``) lands.

It keeps workloads, pods, nodes and HPAs as frozen values, applies every mutating call
to them (so verify and revert read real state changes) and records the calls, so a
test can assert that an action ran exactly once. ``fail_next`` makes the next call raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from vigil.core import (
    ActionKind,
    ActionResult,
    ActionStatus,
    Clock,
    ContainerInfo,
    HpaInfo,
    NodeInfo,
    NotFoundError,
    ObjectRef,
    PodInfo,
    VigilError,
    WorkloadInfo,
)
from vigil.playbooks.quantities import parse_bytes


class FakeCluster:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.workloads: dict[ObjectRef, WorkloadInfo] = {}
        self.pods: dict[ObjectRef, PodInfo] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self.hpas: dict[ObjectRef, HpaInfo] = {}
        self.calls: list[tuple[str, str, bool]] = []
        self.call_times: list[datetime] = []
        self.fail_next: VigilError | None = None
        self.crash_after_next = False  # apply the next change, then die as a killed process
        self.revisions: dict[ObjectRef, list[str]] = {}

    # -- building -------------------------------------------------------------------
    def add_workload(
        self,
        ref: str,
        replicas: int = 3,
        ready: int | None = None,
        *,
        memory_limit: float | None = 512 * 1024**2,
        revision: int = 2,
        last_rollout_at: datetime | None = None,
        pods: int | None = None,
    ) -> WorkloadInfo:
        r = ObjectRef.parse(ref)
        wl = WorkloadInfo(
            ref=r,
            replicas=replicas,
            ready_replicas=replicas if ready is None else ready,
            available_replicas=replicas if ready is None else ready,
            updated_replicas=replicas,
            revision=revision,
            selector={"app": r.name},
            containers=(ContainerInfo("app", "img:1", memory_limit=memory_limit),),
            last_rollout_at=last_rollout_at,
        )
        self.workloads[r] = wl
        self.revisions[r] = [f"img:{i}" for i in range(1, revision + 1)]
        for i in range(replicas if pods is None else pods):
            self.add_pod(
                f"pod/{r.namespace}/{r.name}-abc-{i}", owner=r, ready=i < wl.ready_replicas
            )
        return wl

    def add_pod(
        self,
        ref: str,
        *,
        owner: ObjectRef | None = None,
        ready: bool = True,
        waiting: str | None = None,
        restarts: int = 0,
        last_termination: str | None = None,
    ) -> PodInfo:
        r = ObjectRef.parse(ref)
        labels = {"app": owner.name} if owner else {}
        pod = PodInfo(
            ref=r,
            phase="Running",
            ready=ready,
            node="node-a",
            restarts=restarts,
            waiting_reason=waiting,
            last_termination_reason=last_termination,
            owner=ObjectRef("replicaset", r.namespace, f"{owner.name}-abc") if owner else None,
            labels=labels,
        )
        self.pods[r] = pod
        return pod

    def add_node(self, name: str, *, ready: bool = True, unschedulable: bool = False) -> None:
        self.nodes[name] = NodeInfo(name, ready=ready, unschedulable=unschedulable)

    def add_hpa(self, workload: str, low: int, high: int) -> None:
        target = ObjectRef.parse(workload)
        ref = ObjectRef("hpa", target.namespace, target.name)
        self.hpas[ref] = HpaInfo(ref, target, low, high)

    def set_pod(self, ref: str, **changes: object) -> None:
        r = ObjectRef.parse(ref)
        self.pods[r] = replace(self.pods[r], **changes)  # type: ignore[arg-type]

    def set_workload(self, ref: str, **changes: object) -> None:
        r = ObjectRef.parse(ref)
        self.workloads[r] = replace(self.workloads[r], **changes)  # type: ignore[arg-type]

    # -- reads ----------------------------------------------------------------------------
    def list_namespaces(self) -> list[str]:
        return sorted({r.namespace for r in self.workloads if r.namespace})

    def list_workloads(self, namespace: str | None = None) -> list[WorkloadInfo]:
        return [w for r, w in self.workloads.items() if namespace in (None, r.namespace)]

    def get_workload(self, ref: ObjectRef) -> WorkloadInfo:
        try:
            return self.workloads[ref]
        except KeyError:
            raise NotFoundError(f"{ref} not found") from None

    def list_pods(
        self, namespace: str | None = None, selector: Mapping[str, str] | None = None
    ) -> list[PodInfo]:
        return [
            p
            for r, p in self.pods.items()
            if namespace in (None, r.namespace)
            and all(p.labels.get(k) == v for k, v in (selector or {}).items())
        ]

    def list_nodes(self) -> list[NodeInfo]:
        return list(self.nodes.values())

    def list_hpas(self, namespace: str | None = None) -> list[HpaInfo]:
        return [h for r, h in self.hpas.items() if namespace in (None, r.namespace)]

    def owner_workload(self, pod: ObjectRef) -> ObjectRef | None:
        info = self.pods.get(pod)
        if info is None or info.owner is None:
            return None
        ref = ObjectRef("deployment", pod.namespace, info.owner.name.rsplit("-", 1)[0])
        return ref if ref in self.workloads else None

    # -- writes ---------------------------------------------------------------------------
    def _result(
        self, kind: ActionKind, ref: ObjectRef, dry: bool, before: dict, after: dict
    ) -> ActionResult:
        if self.crash_after_next and not dry:
            self.crash_after_next = False
            raise SystemExit("killed between the API call and the journal")
        now = self.clock.now()
        return ActionResult(kind, ref, ActionStatus.SUCCEEDED, now, now, dry, "", before, after)

    def _enter(self, name: str, ref: ObjectRef | str, dry: bool) -> None:
        self.calls.append((name, str(ref), dry))
        self.call_times.append(self.clock.now())
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        self._enter("scale", ref, dry_run)
        wl = self.get_workload(ref)
        if not dry_run:
            self.workloads[ref] = replace(wl, replicas=replicas, ready_replicas=replicas)
        return self._result(
            ActionKind.SCALE, ref, dry_run, {"replicas": wl.replicas}, {"replicas": replicas}
        )

    def rollout_restart(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        self._enter("rollout-restart", ref, dry_run)
        wl = self.get_workload(ref)
        if not dry_run:
            self.workloads[ref] = replace(wl, revision=wl.revision + 1)
        return self._result(ActionKind.ROLLOUT_RESTART, ref, dry_run, {"revision": wl.revision}, {})

    def rollout_undo(
        self, ref: ObjectRef, *, to_revision: int | None = None, dry_run: bool
    ) -> ActionResult:
        self._enter("rollout-undo", ref, dry_run)
        wl = self.get_workload(ref)
        history = self.revisions[ref]
        target = to_revision or wl.revision - 1
        if not dry_run:
            history.append(history[target - 1])
            self.workloads[ref] = replace(wl, revision=len(history))
        return self._result(
            ActionKind.ROLLOUT_UNDO, ref, dry_run, {"revision": wl.revision}, {"revision": target}
        )

    def image(self, ref: str) -> str:
        r = ObjectRef.parse(ref)
        return self.revisions[r][self.workloads[r].revision - 1]

    def delete_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        self._enter("delete-pod", ref, dry_run)
        if ref not in self.pods:
            raise NotFoundError(f"{ref} not found")
        if not dry_run:
            del self.pods[ref]
        return self._result(ActionKind.DELETE_POD, ref, dry_run, {}, {})

    def evict_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        self._enter("evict-pod", ref, dry_run)
        if not dry_run:
            del self.pods[ref]
        return self._result(ActionKind.EVICT_POD, ref, dry_run, {}, {})

    def cordon(self, node: str, *, dry_run: bool) -> ActionResult:
        self._enter("cordon", node, dry_run)
        before = self.nodes[node].unschedulable
        if not dry_run:
            self.nodes[node] = replace(self.nodes[node], unschedulable=True)
        return self._result(
            ActionKind.CORDON, ObjectRef("node", None, node), dry_run, {"unschedulable": before}, {}
        )

    def uncordon(self, node: str, *, dry_run: bool) -> ActionResult:
        self._enter("uncordon", node, dry_run)
        before = self.nodes[node].unschedulable
        if not dry_run:
            self.nodes[node] = replace(self.nodes[node], unschedulable=False)
        return self._result(
            ActionKind.UNCORDON,
            ObjectRef("node", None, node),
            dry_run,
            {"unschedulable": before},
            {},
        )

    def patch_hpa(
        self,
        ref: ObjectRef,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        dry_run: bool,
    ) -> ActionResult:
        self._enter("patch-hpa", ref, dry_run)
        hpa = self.hpas[ref]
        if not dry_run:
            self.hpas[ref] = replace(
                hpa,
                min_replicas=min_replicas or hpa.min_replicas,
                max_replicas=max_replicas or hpa.max_replicas,
            )
        return self._result(ActionKind.PATCH_HPA, ref, dry_run, {}, {})

    def patch_resources(
        self,
        ref: ObjectRef,
        container: str,
        *,
        requests: Mapping[str, str] | None = None,
        limits: Mapping[str, str] | None = None,
        dry_run: bool,
    ) -> ActionResult:
        self._enter("patch-resources", ref, dry_run)
        wl = self.get_workload(ref)
        if not dry_run and limits and "memory" in limits:
            containers = tuple(
                replace(
                    c,
                    memory_limit=float(parse_bytes(limits["memory"])) if limits["memory"] else None,
                )
                if c.name == container
                else c
                for c in wl.containers
            )
            self.workloads[ref] = replace(wl, containers=containers, revision=wl.revision + 1)
            self.revisions[ref].append(self.revisions[ref][-1])
        return self._result(ActionKind.PATCH_RESOURCES, ref, dry_run, {}, dict(limits or {}))
