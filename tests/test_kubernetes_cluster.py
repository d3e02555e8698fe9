"""``KubernetesCluster`` against a real kube-apiserver: reads and every action, dry-run
and not, with the before-state a revert needs.

The ``Cluster`` behaviours themselves live in ``tests/cluster_behaviours.py`` (shared
with the simulator); this module runs them on the real API server and adds what only
Kubernetes has (pod states as the kubelet reports them, PodDisruptionBudgets, paused
rollouts, StatefulSets, API discovery, connection settings).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import kubefixture as kf
from tests.cluster_behaviours import BEHAVIOURS, NEW_IMAGE, World
from vigil.core import ActionStatus, Cluster, ConfigError, ManualClock, ObjectRef, PermanentError

pytestmark = [pytest.mark.kube, pytest.mark.timeout(60)]


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
    behaviour: Callable[[Cluster, World], None], worlds: kf.WorldPool, admin_cluster: Any
) -> None:
    assert isinstance(admin_cluster, Cluster)
    behaviour(admin_cluster, worlds.take())


# ====================================================================== kube-only details
def test_pod_states_as_kubelet_reports_them(kube: kf.KubeServer, admin_cluster: Any) -> None:
    admin = kube.admin()
    ns = f"pods-{kf.unique()}"
    kf.create_namespace(admin, ns)
    kf.create_deployment(admin, ns, "api", replicas=3)
    crash, oom, fine = (p.metadata.name for p in kf.pods_of(admin, ns, "api", 3))
    kf.create_node(admin, f"node-{ns}", {"MemoryPressure": "True"})
    kf.set_pod_status(
        admin,
        ns,
        crash,
        ready=False,
        restarts=7,
        waiting="CrashLoopBackOff",
        last_terminated="Error",
        exit_code=1,
    )
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


def test_eviction_respects_pod_disruption_budget(
    kube: kf.KubeServer, worlds: kf.WorldPool, admin_cluster: Any
) -> None:
    from vigil.actions.kubernetes import DisruptionBudgetBlocked

    w = worlds.take()
    kf.create_pdb(kube.admin(), w.namespace, "api", "api", min_available=2)
    for dry_run in (True, False):
        with pytest.raises(DisruptionBudgetBlocked, match="disruption budget api needs 2"):
            admin_cluster.evict_pod(w.pods[0], dry_run=dry_run)
    assert w.pods[0] in [p.ref for p in admin_cluster.list_pods(w.namespace)]
    # delete_pod is the blunt tool: no budget stops it (playbooks choose evict for that)
    assert admin_cluster.delete_pod(w.pods[0], dry_run=True).status == ActionStatus.DRY_RUN


def test_paused_rollouts_are_refused_like_kubectl(
    kube: kf.KubeServer, worlds: kf.WorldPool, admin_cluster: Any
) -> None:
    from kubernetes import client

    w = worlds.take()
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
    ns = f"hist-{kf.unique()}"
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
    ns = f"sts-{kf.unique()}"
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


def test_results_are_stamped_by_the_injected_clock(
    kube: kf.KubeServer, worlds: kf.WorldPool
) -> None:
    from datetime import UTC, datetime

    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    clock = ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    cluster = KubernetesCluster.from_settings(
        KubernetesSettings(kubeconfig=kube.kubeconfig), clock=clock
    )
    w = worlds.take()
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
    if "KUBERNETES_SERVICE_HOST" not in os.environ:  # i.e. not running inside a pod
        with pytest.raises(ConfigError, match=r"in-cluster ServiceAccount.*in_cluster"):
            KubernetesCluster.from_settings(KubernetesSettings(in_cluster=True))


def test_events_show_what_vigil_did_on_the_object(
    kube: kf.KubeServer, worlds: kf.WorldPool, admin_cluster: Any
) -> None:
    from kubernetes import client

    w = worlds.take()
    admin_cluster.record_event(w.deployment, "VigilScaled", "scaled 2 → 4 replicas (saturation)")
    admin_cluster.record_event(
        ObjectRef("Node", None, w.node), "VigilCordoned", "node under pressure", warning=True
    )
    core = client.CoreV1Api(kube.admin())
    uid = client.AppsV1Api(kube.admin()).read_namespaced_deployment("api", w.namespace).metadata.uid
    # the field selector kubectl describe uses to find an object's events
    found = core.list_namespaced_event(w.namespace, field_selector=f"involvedObject.uid={uid}")
    (event,) = [e for e in found.items if e.reason == "VigilScaled"]
    assert (event.type, event.source.component) == ("Normal", "vigil")
    assert event.message == "scaled 2 → 4 replicas (saturation)"
    on_node = core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={w.node},reason=VigilCordoned"
    )
    assert [e.type for e in on_node.items] == ["Warning"]


def test_lists_are_read_in_pages(kube: kf.KubeServer, worlds: kf.WorldPool) -> None:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    w = worlds.take()
    paged = KubernetesCluster.from_settings(
        KubernetesSettings(kubeconfig=kube.kubeconfig, list_page_size=1)
    )
    whole = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=kube.kubeconfig))
    assert [p.ref for p in paged.list_pods(w.namespace)] == sorted(w.pods)

    # the controller-manager may update status between the two lists: compare what the
    # pages must agree on (identity and spec), not status or resourceVersion
    def bare(cluster: KubernetesCluster) -> list[object]:
        return [
            (x.ref, x.replicas, x.revision, x.containers, dict(x.selector), dict(x.labels))
            for x in cluster.list_workloads(w.namespace)
        ]

    assert bare(paged) == bare(whole)
    # two ReplicaSets, one per page, still give the rollout time of the newest
    assert paged.get_workload(w.deployment).last_rollout_at is not None
