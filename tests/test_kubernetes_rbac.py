"""The shipped RBAC (deploy/rbac.yaml) is enough, and no more than enough.

The API server accepts an extra bearer token for ``system:serviceaccount:vigil:vigil``
(the ServiceAccount the manifest binds), so these tests act exactly as the deployed
agent would: every read and action succeeds where the manifest grants it, the rest
gets 403, and vigil's error names the verb, resource, API group and namespace to grant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests import kubefixture as kf
from vigil.core import ActionStatus, PermanentError

pytestmark = [pytest.mark.kube, pytest.mark.timeout(60)]

MANIFEST = kf.REPO / "deploy" / "rbac.yaml"
ROGUE = {"name": "c", "image": "rogue:1"}


@pytest.fixture(scope="module")
def shipped_rbac(kube: kf.KubeServer) -> dict[str, Any]:
    """Apply deploy/rbac.yaml as it ships; returns its per-namespace RoleBinding."""
    kf.apply_manifest(kube.admin(), MANIFEST)
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return next(
        d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "vigil-act"
    )


def bind_namespace(kube: kf.KubeServer, rolebinding: dict[str, Any], namespace: str) -> None:
    """What an operator does to let vigil act in one more namespace (the manifest's
    RoleBinding, in that namespace)."""
    body = {**rolebinding, "metadata": {**rolebinding["metadata"], "namespace": namespace}}
    kf.apply_dict(kube.admin(), body)


def as_agent(kube: kf.KubeServer) -> Any:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    kubeconfig = kube.kubeconfig_for("vigil-agent", kube.agent_token)
    return KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=kubeconfig, qps=0))


def test_the_agent_can_read_and_do_every_action_where_bound(
    kube: kf.KubeServer, worlds: kf.WorldPool, shipped_rbac: dict[str, Any]
) -> None:
    w = worlds.take()
    bind_namespace(kube, shipped_rbac, w.namespace)
    agent = as_agent(kube)

    assert w.namespace in agent.list_namespaces()
    assert agent.get_workload(w.deployment).revision == 2
    assert {p.ref for p in agent.list_pods(w.namespace)} >= set(w.pods)
    assert agent.owner_workload(w.pods[0]) == w.deployment
    assert w.node in [n.name for n in agent.list_nodes()]
    assert [h.ref for h in agent.list_hpas(w.namespace)] == [w.hpa]
    assert agent.list_workloads() and agent.list_hpas()  # cluster-wide reads too

    actions: list[Callable[[bool], Any]] = [
        lambda dry: agent.scale(w.deployment, 3, dry_run=dry),
        lambda dry: agent.patch_hpa(w.hpa, max_replicas=6, dry_run=dry),
        lambda dry: agent.patch_resources(
            w.deployment, "app", limits={"memory": "256Mi"}, dry_run=dry
        ),
        lambda dry: agent.rollout_restart(w.deployment, dry_run=dry),
        lambda dry: agent.cordon(w.node, dry_run=dry),
        lambda dry: agent.uncordon(w.node, dry_run=dry),
        lambda dry: agent.evict_pod(w.pods[0], dry_run=dry),
        lambda dry: agent.delete_pod(w.pods[1], dry_run=dry),
    ]
    for act in actions:
        assert act(True).status == ActionStatus.DRY_RUN
        assert act(False).status == ActionStatus.SUCCEEDED
    agent.record_event(w.deployment, "VigilScaled", "scaled 2 → 3 replicas")
    w.settle(w.deployment)
    undone = agent.rollout_undo(w.deployment, dry_run=False)
    assert undone.status == ActionStatus.SUCCEEDED
    assert undone.after["to_revision"] == undone.before["revision"] - 1


FORBIDDEN_ACTIONS: dict[str, tuple[Callable[[Any, kf.World], Any], str]] = {
    "scale": (
        lambda a, w: a.scale(w.deployment, 3, dry_run=True),
        "verb 'patch' on 'deployments/scale' (apps) in namespace {ns}",
    ),
    "rollout-restart": (
        lambda a, w: a.rollout_restart(w.deployment, dry_run=True),
        "verb 'patch' on 'deployments' (apps) in namespace {ns}",
    ),
    "rollout-undo": (
        lambda a, w: a.rollout_undo(w.deployment, dry_run=True),
        "verb 'patch' on 'deployments' (apps) in namespace {ns}",
    ),
    "patch-resources": (
        lambda a, w: a.patch_resources(w.deployment, "app", limits={"cpu": "1"}, dry_run=True),
        "verb 'patch' on 'deployments' (apps) in namespace {ns}",
    ),
    "patch-hpa": (
        lambda a, w: a.patch_hpa(w.hpa, max_replicas=6, dry_run=True),
        "verb 'patch' on 'horizontalpodautoscalers' (autoscaling) in namespace {ns}",
    ),
    "delete-pod": (
        lambda a, w: a.delete_pod(w.pods[0], dry_run=True),
        "verb 'delete' on 'pods' (core) in namespace {ns}",
    ),
    "evict-pod": (
        lambda a, w: a.evict_pod(w.pods[0], dry_run=True),
        "verb 'create' on 'pods/eviction' (core) in namespace {ns}",
    ),
}


def test_actions_in_an_unbound_namespace_name_the_missing_rule(
    kube: kf.KubeServer, worlds: kf.WorldPool, shipped_rbac: dict[str, Any]
) -> None:
    from vigil.actions.kubernetes import Forbidden

    w = worlds.take()  # no RoleBinding in this namespace: reads only
    agent = as_agent(kube)
    assert agent.get_workload(w.deployment).replicas == 2
    for name, (act, expected) in FORBIDDEN_ACTIONS.items():
        with pytest.raises(Forbidden) as caught:
            act(agent, w)
        message = str(caught.value)
        assert expected.format(ns=w.namespace) in message, (name, message)
        assert "see deploy/rbac.yaml" in message and isinstance(caught.value, PermanentError)


def test_what_the_manifest_does_not_grant_is_refused(
    kube: kf.KubeServer, worlds: kf.WorldPool, shipped_rbac: dict[str, Any]
) -> None:
    """Straight through the client as the agent: no Secrets, no deleting workloads, no
    writes in kube-system, no Leases outside vigil's namespace."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    w = worlds.take()
    bind_namespace(kube, shipped_rbac, w.namespace)
    agent = config.new_client_from_config(str(kube.kubeconfig_for("raw-agent", kube.agent_token)))
    core, apps = client.CoreV1Api(agent), client.AppsV1Api(agent)
    coordination = client.CoordinationV1Api(agent)
    lease = {"metadata": {"name": "vigil-leader"}, "spec": {"holderIdentity": "pod-a"}}

    refused: dict[str, Callable[[], Any]] = {
        "read secrets": lambda: core.list_namespaced_secret(w.namespace),
        "read secrets cluster-wide": core.list_secret_for_all_namespaces,
        "read configmaps": lambda: core.list_namespaced_config_map(w.namespace),
        "delete deployments": lambda: apps.delete_namespaced_deployment("api", w.namespace),
        "create deployments": lambda: apps.create_namespaced_deployment(
            w.namespace, kf.deployment_body("rogue", "rogue:1")
        ),
        "create pods": lambda: core.create_namespaced_pod(
            w.namespace, {"metadata": {"name": "rogue"}, "spec": {"containers": [ROGUE]}}
        ),
        "exec into pods": lambda: core.connect_post_namespaced_pod_exec(
            w.pods[0].name, w.namespace, command=["sh"]
        ),
        "scale in kube-system": lambda: apps.patch_namespaced_deployment_scale(
            "coredns",
            "kube-system",
            {"spec": {"replicas": 0}},
            _content_type="application/merge-patch+json",
        ),
        "delete nodes": lambda: core.delete_node(w.node),
        "leases outside vigil": lambda: coordination.create_namespaced_lease(w.namespace, lease),
        "edit RBAC": lambda: client.RbacAuthorizationV1Api(agent).delete_cluster_role("vigil-act"),
    }
    for what, attempt in refused.items():
        with pytest.raises(ApiException) as caught:
            attempt()
        assert caught.value.status == 403, (what, caught.value.status)

    # …and what it must be able to do besides the actions: leader election, events.
    created = coordination.create_namespaced_lease("vigil", lease)
    created.spec.holder_identity = "pod-b"
    coordination.replace_namespaced_lease("vigil-leader", "vigil", created)
    event = {
        "metadata": {"generateName": "vigil-"},
        "involvedObject": {"kind": "Deployment", "namespace": w.namespace, "name": "api"},
        "reason": "VigilScaled",
        "message": "scaled 2 → 3 replicas",
        "type": "Normal",
    }
    core.create_namespaced_event(w.namespace, event)


def test_forbidden_message_for_cluster_scoped_resources(kube: kf.KubeServer) -> None:
    """Without the cordon binding (a reader-only identity), cordon names the node rule."""
    from kubernetes import config

    from vigil.actions.kubernetes import Forbidden, KubernetesCluster, KubernetesSettings

    # Impersonation: the admin acting as a user no binding mentions.
    api = config.new_client_from_config(str(kube.kubeconfig))
    api.set_default_header("Impersonate-User", "nobody")
    cluster = KubernetesCluster(api, KubernetesSettings(qps=0))
    with pytest.raises(
        Forbidden, match=r"forbidden: vigil needs verb 'list' on 'nodes' \(core\) cluster-wide"
    ):
        cluster.list_nodes()
    with pytest.raises(Forbidden, match=r"verb 'get' on 'nodes' \(core\) cluster-wide"):
        cluster.cordon("any-node", dry_run=True)


def test_the_context_option_picks_the_identity(
    kube: kf.KubeServer, worlds: kf.WorldPool, shipped_rbac: dict[str, Any], tmp_path: Any
) -> None:
    """One kubeconfig, two contexts: ``kubernetes.context`` decides who vigil acts as."""
    from vigil.actions.kubernetes import Forbidden, KubernetesCluster, KubernetesSettings

    doc = yaml.safe_load(kube.kubeconfig_for("admin", kube.admin_token).read_text())
    doc["users"].append({"name": "agent", "user": {"token": kube.agent_token}})
    doc["contexts"].append({"name": "agent", "context": {"cluster": "c", "user": "agent"}})
    both = tmp_path / "kubeconfig"
    both.write_text(yaml.safe_dump(doc))

    w = worlds.take()  # not bound for vigil-act: only the admin may scale here
    admin = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=both))
    agent = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=both, context="agent"))
    assert admin.scale(w.deployment, 3, dry_run=True).status == ActionStatus.DRY_RUN
    with pytest.raises(Forbidden, match="system:serviceaccount:vigil:vigil"):
        agent.scale(w.deployment, 3, dry_run=True)
