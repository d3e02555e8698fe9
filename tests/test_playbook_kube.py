"""The playbook engine against a real kube-apiserver (``KubernetesCluster``): an undo that
did not help is undone again, through ReplicaSet revisions as Kubernetes renumbers them;
a memory limit raised and restored; a cordon; all journalled in the real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import kubefixture as kf
from tests.cluster_behaviours import NEW_IMAGE, OLD_IMAGE
from tests.playbook_findings import T0, anomaly, condition
from tests.playbook_journals import open_journal
from vigil.core import ActionStatus, ObjectRef
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    builtin_playbooks,
    parse_playbooks,
)

pytestmark = [pytest.mark.kube, pytest.mark.timeout(90)]

# No kubelet runs here: pods of a new template never become ready, so this verify fails
# after any rollout, which is what exercises the revert.
UNDO = """
name: undo-and-check
description: undo a rollout, then check every replica is ready
priority: 1
when: {anomaly: {metrics: ["*errors*"]}}
steps: [{action: rollout-undo}]
verify: {kubernetes: ready_replicas >= replicas, within: 60}
on_failure: [revert, escalate]
mode: auto
"""


@pytest.fixture
def cluster(kube: kf.KubeServer) -> Iterator[Any]:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    made = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=kube.kubeconfig, qps=0))
    yield made
    made.close()


# The API server is shared with the other kube tests and their nodes: storm protection
# would count those, so it is out of the way here (tests/test_guardrails.py proves it).
SETTINGS = GuardrailSettings(dry_run=False, storm_min_unhealthy=10_000)


def engine(journal: Any, cluster: Any, *extra: str) -> PlaybookEngine:
    books = [b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()]
    for text in extra:
        books = [*parse_playbooks(text, "test"), *books]
    return PlaybookEngine(Guardrails(journal, SETTINGS), cluster=cluster, playbooks=books)


def image(cluster: Any, ref: ObjectRef) -> str:
    return cluster.get_workload(ref).containers[0].image


def test_an_undo_that_did_not_help_is_undone_again_on_kubernetes(
    worlds: kf.WorldPool, cluster: Any, tmp_path: Path
) -> None:
    world = worlds.take()
    ref = world.deployment
    assert image(cluster, ref) == NEW_IMAGE and cluster.get_workload(ref).revision == 2
    with open_journal(tmp_path) as journal:
        eng = engine(journal, cluster, UNDO)
        f = anomaly("http_errors:ratio", {"namespace": world.namespace, "deployment": "api"})
        (out,) = eng.tick([f], T0)
        assert out.entry.action == "rollout-undo" and out.entry.status is ActionStatus.SUCCEEDED
        world.settle(ref)
        assert image(cluster, ref) == OLD_IMAGE
        assert cluster.get_workload(ref).revision == 3  # revision 1's template, renumbered
        (checked,) = eng.tick([], T0 + timedelta(seconds=60))
        world.settle(ref)
    assert checked.entry.status is ActionStatus.REVERTED
    assert "back to revision 2" in checked.entry.message
    assert image(cluster, ref) == NEW_IMAGE  # the agent's own undo was undone
    assert cluster.get_workload(ref).revision == 4


def test_oom_limit_raised_then_restored_on_kubernetes(
    worlds: kf.WorldPool, cluster: Any, tmp_path: Path
) -> None:
    world = worlds.take()
    ref = world.deployment
    with open_journal(tmp_path) as journal:
        eng = engine(journal, cluster)
        (out,) = eng.tick([condition("OOMKilled", world.pods[0], count=3)], T0)
        assert out.entry.action == "patch-resources" and out.entry.target == ref
        assert cluster.get_workload(ref).containers[0].memory_limit == 192 * 1024**2  # 128Mi×1.5
        world.settle(ref)
        # no kubelet: nothing is ready, the verify's PromQL has no source; it fails
        (checked,) = eng.tick([], T0 + timedelta(minutes=15))
    assert checked.entry.status is ActionStatus.REVERTED
    assert cluster.get_workload(ref).containers[0].memory_limit == 128 * 1024**2


def test_a_not_ready_node_is_cordoned_on_kubernetes(
    worlds: kf.WorldPool, cluster: Any, tmp_path: Path, kube: kf.KubeServer
) -> None:
    world = worlds.take()
    nodes = cluster.list_nodes()
    cordoned = sum(1 for n in nodes if n.unschedulable)
    # other tests cordon their nodes too: add spares so this cordon stays within half
    for i in range(max(1, 2 * (cordoned + 1) - len(nodes))):
        kf.create_node(kube.admin(), f"spare-{world.namespace}-{i}")
    node = ObjectRef("node", None, world.node)
    with open_journal(tmp_path) as journal:
        eng = engine(journal, cluster)
        (out,) = eng.tick([condition("NodeNotReady", node)], T0)
        assert out.entry.action == "cordon" and out.entry.status is ActionStatus.SUCCEEDED
        (checked,) = eng.tick([], T0 + timedelta(minutes=1))
    assert checked.notifications[0].state == "verified"
    assert next(n for n in cluster.list_nodes() if n.name == world.node).unschedulable
