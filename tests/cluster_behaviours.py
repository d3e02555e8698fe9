"""Behaviour tests of the ``Cluster`` port, for every implementation.

Each ``check_*`` takes any ``Cluster`` and a ``World`` (the refs of objects set up in
it) and knows nothing of Kubernetes. ``tests/test_kubernetes_cluster.py`` runs them on a
real kube-apiserver (``tests/kubefixture.build_world``); the simulator runs the same
ones by building a ``World`` in ``vigil.sim`` and calling each of ``BEHAVIOURS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from vigil.core import ActionStatus, Cluster, NotFoundError, ObjectRef, PermanentError

OLD_IMAGE, NEW_IMAGE = "shop/api:1.0", "shop/api:1.1"


# ====================================================================== the world
@dataclass(frozen=True)
class World:
    """What a behaviour may rely on, set up by the implementation under test:

    - namespace ``namespace`` with a Deployment ``api`` (selector ``app=api``) at 2
      replicas and revision 2 (image ``OLD_IMAGE`` then ``NEW_IMAGE``), one container
      ``app`` with requests cpu 100m / memory 64Mi and limit memory 128Mi;
    - ``pods``: two of its pods, Running and Ready, not yet bound to a node;
    - ``node``: a Ready, schedulable node with 4 CPUs allocatable;
    - ``hpa``: an HPA on the Deployment, min 1, max 5.

    ``settle`` waits until the cluster's controllers have caught up with a change (a
    no-op where changes are immediate)."""

    namespace: str
    deployment: ObjectRef
    pods: tuple[ObjectRef, ObjectRef]
    node: str
    hpa: ObjectRef
    settle: Callable[[ObjectRef], None]


# ====================================================================== behaviours
def check_reads(cluster: Cluster, w: World) -> None:
    assert w.namespace in cluster.list_namespaces()
    wl = cluster.get_workload(w.deployment)
    assert (wl.replicas, wl.revision) == (2, 2)
    assert wl.selector == {"app": "api"}
    (app,) = wl.containers
    assert (app.name, app.image) == ("app", NEW_IMAGE)
    assert app.memory_request == 64 * 2**20 and app.memory_limit == 128 * 2**20
    assert app.cpu_request == pytest.approx(0.1)
    assert wl.last_rollout_at is not None
    assert w.deployment in [x.ref for x in cluster.list_workloads(w.namespace)]
    pods = {p.ref: p for p in cluster.list_pods(w.namespace, wl.selector)}
    for ref in w.pods:
        assert pods[ref].ready and pods[ref].phase == "Running"
        assert pods[ref].owner is not None  # a ReplicaSet on Kubernetes
        assert cluster.owner_workload(ref) == w.deployment
    assert cluster.list_pods(w.namespace, {"app": "nothing-has-this"}) == []
    node = next(n for n in cluster.list_nodes() if n.name == w.node)
    assert node.ready and not node.unschedulable and node.cpu_allocatable == 4.0
    hpa = next(h for h in cluster.list_hpas(w.namespace) if h.ref == w.hpa)
    assert (hpa.target, hpa.min_replicas, hpa.max_replicas) == (w.deployment, 1, 5)


def check_scale(cluster: Cluster, w: World) -> None:
    dry = cluster.scale(w.deployment, 4, dry_run=True)
    assert (dry.status, dry.dry_run) == (ActionStatus.DRY_RUN, True)
    assert (dry.before["replicas"], dry.after["replicas"]) == (2, 4)
    assert cluster.get_workload(w.deployment).replicas == 2

    done = cluster.scale(w.deployment, 4, dry_run=False)
    assert done.status == ActionStatus.SUCCEEDED and done.before["replicas"] == 2
    assert cluster.get_workload(w.deployment).replicas == 4

    again = cluster.scale(w.deployment, 4, dry_run=False)  # idempotent: nothing to change
    assert again.before["replicas"] == again.after["replicas"] == 4

    cluster.scale(w.deployment, done.before["replicas"], dry_run=False)  # the revert
    assert cluster.get_workload(w.deployment).replicas == 2
    with pytest.raises(PermanentError, match="replicas"):
        cluster.scale(w.deployment, -1, dry_run=False)


def check_rollout_restart(cluster: Cluster, w: World) -> None:
    before = cluster.get_workload(w.deployment)
    dry = cluster.rollout_restart(w.deployment, dry_run=True)
    assert dry.status == ActionStatus.DRY_RUN and dry.after["restarted_at"]
    w.settle(w.deployment)
    assert cluster.get_workload(w.deployment).revision == before.revision

    done = cluster.rollout_restart(w.deployment, dry_run=False)
    assert done.status == ActionStatus.SUCCEEDED
    assert done.before["restarted_at"] is None and done.after["restarted_at"]
    assert done.before["revision"] == before.revision
    w.settle(w.deployment)
    assert cluster.get_workload(w.deployment).revision == before.revision + 1


def check_rollout_undo(cluster: Cluster, w: World) -> None:
    dry = cluster.rollout_undo(w.deployment, dry_run=True)
    assert dry.status == ActionStatus.DRY_RUN and dry.after["images"] == [OLD_IMAGE]
    w.settle(w.deployment)
    assert cluster.get_workload(w.deployment).containers[0].image == NEW_IMAGE

    done = cluster.rollout_undo(w.deployment, dry_run=False)
    assert done.before["revision"] == 2 and done.after["images"] == [OLD_IMAGE]
    w.settle(w.deployment)
    wl = cluster.get_workload(w.deployment)
    assert (wl.containers[0].image, wl.revision) == (OLD_IMAGE, 3)

    # The revert undoes the undo: back to the revision that was current before.
    back = cluster.rollout_undo(w.deployment, to_revision=done.before["revision"], dry_run=False)
    assert back.after["images"] == [NEW_IMAGE]
    w.settle(w.deployment)
    wl = cluster.get_workload(w.deployment)
    assert (wl.containers[0].image, wl.revision) == (NEW_IMAGE, 4)
    with pytest.raises(NotFoundError, match="revision 99"):
        cluster.rollout_undo(w.deployment, to_revision=99, dry_run=True)


def _check_pod_removal(cluster: Cluster, w: World, act: Callable[..., Any]) -> None:
    pod = w.pods[0]
    dry = act(pod, dry_run=True)
    assert dry.status == ActionStatus.DRY_RUN
    assert pod in [p.ref for p in cluster.list_pods(w.namespace)]
    done = act(pod, dry_run=False)
    assert done.status == ActionStatus.SUCCEEDED
    assert done.before["uid"] == dry.before["uid"]  # the dry run left the same pod
    assert "ReplicaSet" in str(done.before["owner"])
    w.settle(w.deployment)
    assert pod not in [p.ref for p in cluster.list_pods(w.namespace)]
    with pytest.raises(NotFoundError):
        act(pod, dry_run=False)


def check_delete_pod(cluster: Cluster, w: World) -> None:
    _check_pod_removal(cluster, w, cluster.delete_pod)


def check_evict_pod(cluster: Cluster, w: World) -> None:
    _check_pod_removal(cluster, w, cluster.evict_pod)


def check_cordon(cluster: Cluster, w: World) -> None:
    def unschedulable() -> bool:
        return next(n for n in cluster.list_nodes() if n.name == w.node).unschedulable

    assert cluster.cordon(w.node, dry_run=True).after["unschedulable"] is True
    assert not unschedulable()
    done = cluster.cordon(w.node, dry_run=False)
    assert done.before["unschedulable"] is False and unschedulable()
    assert cluster.cordon(w.node, dry_run=False).before["unschedulable"] is True  # no-op
    assert cluster.uncordon(w.node, dry_run=True).after["unschedulable"] is False
    assert unschedulable()
    cluster.uncordon(w.node, dry_run=False)  # the revert of cordon
    assert not unschedulable()


def check_patch_hpa(cluster: Cluster, w: World) -> None:
    def limits() -> tuple[int, int]:
        hpa = next(h for h in cluster.list_hpas(w.namespace) if h.ref == w.hpa)
        return hpa.min_replicas, hpa.max_replicas

    dry = cluster.patch_hpa(w.hpa, max_replicas=8, dry_run=True)
    assert dry.status == ActionStatus.DRY_RUN and dry.after["max_replicas"] == 8
    assert limits() == (1, 5)
    done = cluster.patch_hpa(w.hpa, min_replicas=2, max_replicas=8, dry_run=False)
    assert (done.before["min_replicas"], done.before["max_replicas"]) == (1, 5)
    assert limits() == (2, 8)
    cluster.patch_hpa(
        w.hpa,
        min_replicas=done.before["min_replicas"],
        max_replicas=done.before["max_replicas"],
        dry_run=False,
    )
    assert limits() == (1, 5)
    with pytest.raises(PermanentError, match="min_replicas"):
        cluster.patch_hpa(w.hpa, min_replicas=9, dry_run=True)


def check_patch_resources(cluster: Cluster, w: World) -> None:
    def memory() -> tuple[float | None, float | None]:
        app = cluster.get_workload(w.deployment).containers[0]
        return app.memory_request, app.memory_limit

    mib = 2**20
    dry = cluster.patch_resources(w.deployment, "app", limits={"memory": "256Mi"}, dry_run=True)
    assert dry.status == ActionStatus.DRY_RUN and dry.after["limits"]["memory"] == "256Mi"
    assert memory() == (64 * mib, 128 * mib)
    done = cluster.patch_resources(
        w.deployment, "app", requests={"memory": "96Mi"}, limits={"memory": "256Mi"}, dry_run=False
    )
    assert done.before["limits"] == {"memory": "128Mi"}
    assert done.before["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert memory() == (96 * mib, 256 * mib)
    cluster.patch_resources(
        w.deployment,
        "app",
        requests=done.before["requests"],
        limits=done.before["limits"],
        dry_run=False,
    )
    assert memory() == (64 * mib, 128 * mib)
    with pytest.raises(NotFoundError, match="no container 'sidecar'"):
        cluster.patch_resources(w.deployment, "sidecar", limits={"memory": "1Gi"}, dry_run=True)
    with pytest.raises(PermanentError, match="exceed its limit"):
        cluster.patch_resources(w.deployment, "app", requests={"memory": "1Gi"}, dry_run=True)
    with pytest.raises(PermanentError, match="not a Kubernetes quantity"):
        cluster.patch_resources(w.deployment, "app", limits={"memory": "lots"}, dry_run=True)


def check_missing_objects(cluster: Cluster, w: World) -> None:
    ghost = ObjectRef("Deployment", w.namespace, "ghost")
    ghost_pod = ObjectRef("Pod", w.namespace, "ghost-0")
    attempts: list[Callable[[], Any]] = [
        lambda: cluster.get_workload(ghost),
        lambda: cluster.scale(ghost, 3, dry_run=True),
        lambda: cluster.rollout_restart(ghost, dry_run=True),
        lambda: cluster.rollout_undo(ghost, dry_run=True),
        lambda: cluster.patch_resources(ghost, "app", limits={"cpu": "1"}, dry_run=True),
        lambda: cluster.delete_pod(ghost_pod, dry_run=True),
        lambda: cluster.evict_pod(ghost_pod, dry_run=True),
        lambda: cluster.owner_workload(ghost_pod),
        lambda: cluster.cordon("ghost-node", dry_run=True),
        lambda: cluster.patch_hpa(
            ObjectRef("hpa", w.namespace, "ghost"), max_replicas=3, dry_run=True
        ),
    ]
    for attempt in attempts:
        with pytest.raises(NotFoundError, match="ghost"):
            attempt()


BEHAVIOURS: tuple[Callable[[Cluster, World], None], ...] = (
    check_reads,
    check_scale,
    check_rollout_restart,
    check_rollout_undo,
    check_delete_pod,
    check_evict_pod,
    check_cordon,
    check_patch_hpa,
    check_patch_resources,
    check_missing_objects,
)
