"""``KubernetesCluster`` against a real kube-apiserver: reads and every action, dry-run
and not, with the before-state a revert needs.

The ``check_*`` functions are behaviour tests of the ``Cluster`` port: each takes any
``Cluster`` and a ``World`` (the refs of objects set up in it) and knows nothing of
Kubernetes, so the simulator can run the same ones (build a ``World`` in ``vigil.sim``
and call ``BEHAVIOURS``; ``tests/cluster_contract.py`` may import them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import kubefixture as kf
from vigil.core import (
    ActionStatus,
    Cluster,
    ConfigError,
    ManualClock,
    NotFoundError,
    ObjectRef,
    PermanentError,
)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(60)]

OLD_IMAGE, NEW_IMAGE = "shop/api:1.0", "shop/api:1.1"


# ====================================================================== the world
@dataclass(frozen=True)
class World:
    """What a behaviour may rely on: a Deployment ``api`` (2 replicas, revision 2: image
    1.0 then 1.1, container ``app`` with 64Mi/128Mi memory), two of its pods Running and
    Ready, a Ready schedulable node, and an HPA (min 1, max 5) on the Deployment.
    ``settle`` waits until the cluster's controllers have caught up with a change."""

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
        assert pods[ref].owner is not None and pods[ref].owner.kind == "ReplicaSet"
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


# ====================================================================== a real world
_numbers = itertools.count(1)


def build_world(kube: kf.KubeServer, prefix: str) -> World:
    """Set the ``World`` up on the real API server (as the admin), in a new namespace."""
    from kubernetes import client

    admin = kube.admin()
    ns = f"{prefix}-{next(_numbers)}"
    kf.create_namespace(admin, ns)
    kf.create_deployment(admin, ns, "api")
    kf.set_image(admin, ns, "api", NEW_IMAGE)
    newest = max(
        client.AppsV1Api(admin).list_namespaced_replica_set(ns).items,
        key=lambda rs: int(rs.metadata.annotations["deployment.kubernetes.io/revision"]),
    )

    def current_pods() -> list[Any] | None:
        pods = kf.pods_of(admin, ns, "api", 2)
        mine = [p for p in pods if p.metadata.owner_references[0].name == newest.metadata.name]
        return mine if len(mine) == 2 and len(pods) == 2 else None

    pods = kf.wait_for("the new ReplicaSet's 2 pods", current_pods)
    for pod in pods:
        kf.set_pod_status(admin, ns, pod.metadata.name)
    node = f"node-{ns}"
    kf.create_node(admin, node)
    kf.create_hpa(admin, ns, "api", "api", 1, 5)

    def settle(ref: ObjectRef) -> None:
        apps = client.AppsV1Api(admin)

        def caught_up() -> bool | None:
            # Recreate strategy: the new ReplicaSet (and the revision) appears only after
            # the old pods are gone, so wait until every replica is of the new template.
            dep = apps.read_namespaced_deployment(ref.name, ns)
            seen = (dep.status.observed_generation or 0) >= dep.metadata.generation
            return (seen and dep.status.updated_replicas == dep.spec.replicas) or None

        kf.wait_for(f"{ref} observed by its controller", caught_up)

    return World(
        namespace=ns,
        deployment=ObjectRef("Deployment", ns, "api"),
        pods=(
            ObjectRef("Pod", ns, pods[0].metadata.name),
            ObjectRef("Pod", ns, pods[1].metadata.name),
        ),
        node=node,
        hpa=ObjectRef("hpa", ns, "api"),
        settle=settle,
    )


@pytest.fixture
def admin_cluster(kube: kf.KubeServer) -> Iterator[Any]:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    cluster = KubernetesCluster.from_settings(
        KubernetesSettings(kubeconfig=kube.kubeconfig, qps=0), sleep=_no_sleep
    )
    yield cluster
    cluster.close()


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"nothing should wait here, asked for {seconds}s")


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda f: f.__name__)
def test_behaviour_on_api_server(
    behaviour: Callable[[Cluster, World], None], kube: kf.KubeServer, admin_cluster: Any
) -> None:
    assert isinstance(admin_cluster, Cluster)
    behaviour(admin_cluster, build_world(kube, "b"))


# ====================================================================== kube-only details
def test_pod_states_as_kubelet_reports_them(kube: kf.KubeServer, admin_cluster: Any) -> None:
    admin = kube.admin()
    ns = f"pods-{next(_numbers)}"
    kf.create_namespace(admin, ns)
    kf.create_deployment(admin, ns, "api", replicas=3)
    crash, oom, fine = (p.metadata.name for p in kf.pods_of(admin, ns, "api", 3))
    kf.create_node(admin, f"node-{ns}", {"MemoryPressure": "True"})
    kf.set_pod_status(admin, ns, crash, ready=False, restarts=7, waiting="CrashLoopBackOff",
                      last_terminated="Error", exit_code=1)  # fmt: skip
    kf.set_pod_status(admin, ns, oom, ready=True, restarts=2, last_terminated="OOMKilled")
    kf.set_pod_status(admin, ns, fine, node=f"node-{ns}")

    pods = {p.ref.name: p for p in admin_cluster.list_pods(ns)}
    assert pods[crash].crash_looping and pods[crash].restarts == 7 and not pods[crash].ready
    assert (pods[crash].last_termination_reason, pods[crash].last_exit_code) == ("Error", 1)
    assert pods[oom].last_termination_reason == "OOMKilled" and pods[oom].last_exit_code == 137
    assert pods[fine].node == f"node-{ns}" and pods[fine].started_at is not None
    assert pods[fine].waiting_reason is None and pods[fine].restarts == 0
    node = next(n for n in admin_cluster.list_nodes() if n.name == f"node-{ns}")
    assert node.pressure == ("MemoryPressure",) and node.memory_allocatable == 8 * 2**30


def test_eviction_respects_pod_disruption_budget(kube: kf.KubeServer, admin_cluster: Any) -> None:
    from vigil.actions.kubernetes import DisruptionBudgetBlocked

    w = build_world(kube, "pdb")
    kf.create_pdb(kube.admin(), w.namespace, "api", "api", min_available=2)
    for dry_run in (True, False):
        with pytest.raises(DisruptionBudgetBlocked, match="disruption budget api needs 2"):
            admin_cluster.evict_pod(w.pods[0], dry_run=dry_run)
    assert w.pods[0] in [p.ref for p in admin_cluster.list_pods(w.namespace)]
    # delete_pod is the blunt tool: no budget stops it (playbooks choose evict for that)
    assert admin_cluster.delete_pod(w.pods[0], dry_run=True).status == ActionStatus.DRY_RUN


def test_paused_rollouts_are_refused_like_kubectl(kube: kf.KubeServer, admin_cluster: Any) -> None:
    from kubernetes import client

    w = build_world(kube, "paused")
    client.AppsV1Api(kube.admin()).patch_namespaced_deployment(
        "api", w.namespace, {"spec": {"paused": True}}, _content_type="application/merge-patch+json"
    )
    with pytest.raises(PermanentError, match="paused"):
        admin_cluster.rollout_undo(w.deployment, dry_run=True)
    with pytest.raises(PermanentError, match="paused"):
        admin_cluster.rollout_restart(w.deployment, dry_run=True)


def test_undo_without_history_and_on_matching_template(
    kube: kf.KubeServer, admin_cluster: Any
) -> None:
    admin = kube.admin()
    ns = f"hist-{next(_numbers)}"
    kf.create_namespace(admin, ns)
    kf.create_deployment(admin, ns, "api")
    ref = ObjectRef("Deployment", ns, "api")
    with pytest.raises(PermanentError, match="no rollout history"):
        admin_cluster.rollout_undo(ref, dry_run=True)
    kf.set_image(admin, ns, "api", NEW_IMAGE)
    skipped = admin_cluster.rollout_undo(ref, to_revision=2, dry_run=False)
    assert "skipped rollback" in skipped.message and skipped.after["revision"] == 2


def test_statefulsets_scale_and_restart(kube: kf.KubeServer, admin_cluster: Any) -> None:
    from kubernetes import client

    admin = kube.admin()
    ns = f"sts-{next(_numbers)}"
    kf.create_namespace(admin, ns)
    body = kf.deployment_body("db", "postgres:16", replicas=1)
    body["spec"]["serviceName"] = "db"
    del body["spec"]["strategy"]
    client.AppsV1Api(admin).create_namespaced_stateful_set(ns, body)
    ref = ObjectRef("StatefulSet", ns, "db")
    assert admin_cluster.get_workload(ref).replicas == 1
    assert ref in [w.ref for w in admin_cluster.list_workloads(ns)]
    assert admin_cluster.scale(ref, 3, dry_run=False).before["replicas"] == 1
    assert admin_cluster.get_workload(ref).replicas == 3
    assert admin_cluster.rollout_restart(ref, dry_run=False).after["restarted_at"]
    with pytest.raises(PermanentError, match="rollout undo works on deployment"):
        admin_cluster.rollout_undo(ref, dry_run=True)


def test_results_are_stamped_by_the_injected_clock(kube: kf.KubeServer) -> None:
    from datetime import UTC, datetime

    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    clock = ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    cluster = KubernetesCluster.from_settings(
        KubernetesSettings(kubeconfig=kube.kubeconfig), clock=clock
    )
    w = build_world(kube, "clock")
    done = cluster.rollout_restart(w.deployment, dry_run=False)
    assert done.started_at == done.finished_at == clock.now()
    assert done.after["restarted_at"] == "2026-11-23T12:00:00Z"


def test_discovers_what_a_v120_server_serves(admin_cluster: Any) -> None:
    caps = admin_cluster.capabilities()
    assert caps["server_version"].startswith("v1.20")
    # no autoscaling/v2 before 1.23, no policy/v1 Eviction before 1.22
    assert (caps["autoscaling"], caps["eviction"]) == ("autoscaling/v1", "policy/v1beta1")


def test_bad_connection_settings_are_config_errors(tmp_path: Any, kube: kf.KubeServer) -> None:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    with pytest.raises(ConfigError, match=r"cannot load kubeconfig .*missing"):
        KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=tmp_path / "missing"))
    with pytest.raises(ConfigError, match="context 'nope'"):
        KubernetesCluster.from_settings(
            KubernetesSettings(kubeconfig=kube.kubeconfig, context="nope")
        )
    with pytest.raises(ValueError, match="in_cluster is on"):
        KubernetesSettings(in_cluster=True, kubeconfig=kube.kubeconfig)
