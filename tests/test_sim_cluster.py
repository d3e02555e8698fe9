"""The twin's ``SimCluster``: the shared ``Cluster`` contract (``cluster_contract.py``),
the Kubernetes adapter's behaviour suite (``cluster_behaviours.py`` from the ``kube``
branch; skipped until merged), then behaviour only the twin can show on cue (start-up
lag, rollouts step by step, node failure, ReplicaSet replacement)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest

from vigil.core import ActionStatus, ObjectRef
from vigil.sim import DEFAULT_START, NodeSpec, Scenario, WorkloadSpec
from vigil.sim.scenario import build_twin, small_scenario
from vigil.sim.twin import Twin

pytestmark = pytest.mark.timeout(60)


def _load(filename: str) -> ModuleType | None:
    """A sibling test-support module by path (tests are not a package)."""
    path = Path(__file__).with_name(filename)
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"vigil_tests_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


contract = _load("cluster_contract.py")
assert contract is not None
# The kube adapter's behaviour suite (from the ``kube`` branch), once merged beside us.
behaviours = _load("cluster_behaviours.py")
CHECKOUT = ObjectRef("Deployment", "shop", "checkout")
CART = ObjectRef("Deployment", "shop", "cart")


def _twin() -> Twin:
    return build_twin(small_scenario())


def _settle(twin: Twin, minutes: float = 5) -> None:
    twin.run(timedelta(minutes=minutes))


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_sim_cluster_contract(check) -> None:  # type: ignore[no-untyped-def]
    twin = _twin()
    harness = contract.ClusterHarness(
        cluster=twin.cluster,
        deployment=CHECKOUT,
        container="checkout",
        hpa=ObjectRef("HorizontalPodAutoscaler", "shop", "checkout"),
        node="node-1",
        settle=lambda: _settle(twin),
    )
    check(harness)


def _pods(twin: Twin, app: str) -> list:  # type: ignore[type-arg]
    return twin.cluster.list_pods("shop", {"app": app})


def test_new_pods_become_ready_only_after_the_startup_lag() -> None:
    twin = _twin()
    spec = next(s for s in twin.specs if s.name == "cart")
    old = {p.ref.name for p in _pods(twin, "cart")}
    twin.cluster.scale(CART, 4, dry_run=False)
    twin.step()  # the ReplicaSet creates the pod and the scheduler binds it
    new = [p for p in _pods(twin, "cart") if p.ref.name not in old]
    assert len(new) == 1 and not new[0].ready
    created = twin.t
    lag = 5.0 + spec.startup_s  # container start + the app's start-up
    while twin.t + twin.dt < created + lag:
        twin.step()
        assert not next(p for p in _pods(twin, "cart") if p.ref == new[0].ref).ready
    twin.step()
    assert next(p for p in _pods(twin, "cart") if p.ref == new[0].ref).ready
    assert twin.cluster.get_workload(CART).ready_replicas == 4


def test_rollout_restart_makes_a_new_revision_and_replaces_every_pod() -> None:
    twin = _twin()
    before = twin.cluster.get_workload(CART)
    old_pods = {p.ref.name for p in _pods(twin, "cart")}
    twin.cluster.rollout_restart(CART, dry_run=False)
    after = twin.cluster.get_workload(CART)
    assert after.revision == before.revision + 1
    assert "kubectl.kubernetes.io/restartedAt" in after.annotations
    _settle(twin, 10)
    pods = _pods(twin, "cart")
    assert len(pods) == 3 and all(p.ready for p in pods)
    assert not old_pods & {p.ref.name for p in pods}
    hashes = {p.labels["pod-template-hash"] for p in pods}
    assert len(hashes) == 1 and hashes != {p.split("-")[1] for p in old_pods}


def test_rollout_keeps_capacity_within_surge_and_unavailability() -> None:
    twin = _twin()
    twin.cluster.rollout_restart(CART, dry_run=False)
    for _ in range(20):
        twin.step()
        pods = _pods(twin, "cart")
        assert len(pods) <= 3 + 1  # maxSurge 25 % of 3, rounded up
        assert sum(p.ready for p in pods) >= 3 - 0  # maxUnavailable 25 % of 3, rounded down


def test_undo_restores_the_old_template_and_reuses_its_replicaset() -> None:
    twin = _twin()
    original = twin.cluster.get_workload(CART)
    original_hash = _pods(twin, "cart")[0].labels["pod-template-hash"]
    image = twin.roll_out_new_image(CART, bad=False)
    _settle(twin, 10)
    assert twin.cluster.get_workload(CART).containers[0].image == image
    result = twin.cluster.rollout_undo(CART, dry_run=False)
    assert result.after["to_revision"] == original.revision
    _settle(twin, 10)
    undone = twin.cluster.get_workload(CART)
    assert undone.containers == original.containers
    assert undone.revision == original.revision + 2  # 1 → 2 (new image) → 3 (undo to 1)
    assert {p.labels["pod-template-hash"] for p in _pods(twin, "cart")} == {original_hash}


def test_undo_to_a_given_revision_and_errors() -> None:
    twin = _twin()
    twin.roll_out_new_image(CART, bad=False)
    twin.roll_out_new_image(CART, bad=False)
    images = [
        rs.template.main.image for rs in twin.state.deployments[("shop", "cart")].replica_sets
    ]
    twin.cluster.rollout_undo(CART, to_revision=1, dry_run=False)
    assert twin.cluster.get_workload(CART).containers[0].image == images[0]
    skipped = twin.cluster.rollout_undo(CART, to_revision=4, dry_run=False)
    assert "skipped" in skipped.message
    with pytest.raises(Exception, match="revision 9 not found"):
        twin.cluster.rollout_undo(CART, to_revision=9, dry_run=False)


def test_deleted_pod_is_replaced_by_its_replicaset_with_the_lag() -> None:
    twin = _twin()
    victim = _pods(twin, "cart")[0].ref
    result = twin.cluster.delete_pod(victim, dry_run=False)
    assert result.before["workload"] == "deployment/shop/cart"
    twin.step()
    pods = _pods(twin, "cart")
    assert victim not in [p.ref for p in pods] and len(pods) == 3
    assert sum(p.ready for p in pods) == 2
    _settle(twin, 2)
    assert all(p.ready for p in _pods(twin, "cart"))


def test_dry_run_delete_and_evict_keep_the_pod() -> None:
    twin = _twin()
    pod = _pods(twin, "cart")[0].ref
    for result in (
        twin.cluster.delete_pod(pod, dry_run=True),
        twin.cluster.evict_pod(pod, dry_run=True),
        twin.cluster.rollout_undo(CART, to_revision=1, dry_run=True),
    ):
        assert result.status is ActionStatus.DRY_RUN and result.message.startswith("dry run")
    twin.step()
    assert pod in [p.ref for p in _pods(twin, "cart")]


def test_cordoned_node_gets_no_new_pods() -> None:
    twin = _twin()
    for node in ("node-1", "node-2"):
        twin.cluster.cordon(node, dry_run=False)
    twin.cluster.scale(CART, 6, dry_run=False)
    twin.step()
    new_nodes = {p.node for p in _pods(twin, "cart")[3:]}
    placed = [p for p in _pods(twin, "cart") if p.node is not None]
    assert len(placed) == 6
    assert {p.node for p in twin.cluster.list_pods("shop", {"app": "cart"})} >= {"node-3"}
    assert new_nodes <= {"node-1", "node-2", "node-3"}
    twin.cluster.scale(CART, 9, dry_run=False)
    before = {p.ref.name: p.node for p in _pods(twin, "cart")}
    twin.step()
    added = [p for p in _pods(twin, "cart") if p.ref.name not in before]
    assert added and all(p.node == "node-3" for p in added)


def test_owner_chain_is_pod_replicaset_deployment() -> None:
    twin = _twin()
    pod = _pods(twin, "cart")[0]
    assert pod.owner is not None and pod.owner.kind == "ReplicaSet"
    assert twin.cluster.owner_workload(pod.ref) == CART


def test_unknown_namespace_and_wrong_kind_are_clear_errors() -> None:
    twin = _twin()
    with pytest.raises(Exception, match="namespace 'nope' not found"):
        twin.cluster.list_pods("nope")
    with pytest.raises(Exception, match="Deployments only"):
        twin.cluster.scale(ObjectRef("StatefulSet", "shop", "cart"), 2, dry_run=False)


def test_many_pods_grow_the_tables_and_metrics_follow() -> None:
    twin = _twin()
    twin.cluster.scale(CART, 70, dry_run=False)
    _settle(twin, 3)
    pods = _pods(twin, "cart")
    assert len(pods) == 70
    assert twin.state.table.capacity > 64
    listed = twin.metrics.query('count(kube_pod_info{pod=~"cart-.*"})')[0].value
    assert listed == 70
    pending = [p for p in pods if p.node is None]
    scheduled = twin.metrics.query('count(kube_pod_info{pod=~"cart-.*",node!=""})')
    assert scheduled[0].value == 70 - len(pending)
    twin.cluster.scale(CART, 0, dry_run=False)
    _settle(twin, 1)
    assert _pods(twin, "cart") == []
    assert twin.metrics.query('kube_pod_info{pod=~"cart-.*"}') == []
    errors = twin.metrics.query('sum(rate(http_requests_total{service="cart",code="503"}[1m]))')
    assert errors[0].value > 0  # nobody left to serve


MIB = 2**20


def _world(module: ModuleType) -> tuple[object, object]:
    """Deployment ``shop/api`` (2 replicas, container ``app``, 100m CPU, 64Mi/128Mi, image
    OLD then NEW: revision 2), two Ready pods, Ready nodes of 4 CPUs, HPA 1–5."""
    api = WorkloadSpec(
        namespace="shop",
        name="api",
        replicas=2,
        base_rps=40.0,  # keeps the HPA at 2 replicas: utilisation 40-60 %
        capacity_rps=50.0,
        latency_s=0.05,
        cpu_request=0.1,
        memory_request=64 * MIB,
        memory_limit=128 * MIB,
        hpa=(1, 5, 0.7),
        container="app",
        image=module.OLD_IMAGE,
    )
    nodes = (NodeSpec("node-1", cpu=4.0), NodeSpec("node-2", cpu=4.0))
    twin = build_twin(Scenario(1, DEFAULT_START, 1.0, timedelta(seconds=30), (api,), nodes))
    ref = ObjectRef("Deployment", "shop", "api")
    twin.set_image(ref, module.NEW_IMAGE)
    twin.run(timedelta(minutes=5))
    pods = tuple(p.ref for p in twin.cluster.list_pods("shop"))
    world = module.World(
        namespace="shop",
        deployment=ref,
        pods=pods[:2],
        node="node-1",
        hpa=ObjectRef("HorizontalPodAutoscaler", "shop", "api"),
        settle=lambda _ref: twin.run(timedelta(minutes=3)),
    )
    return twin.cluster, world


@pytest.mark.parametrize(
    "name",
    [c.__name__ for c in behaviours.BEHAVIOURS] if behaviours else ["cluster_behaviours.py"],
)
def test_kubernetes_behaviours_hold_on_the_twin(name: str) -> None:
    if behaviours is None:
        pytest.skip("tests/cluster_behaviours.py (the kube branch's suite) is not merged yet")
    check = next(c for c in behaviours.BEHAVIOURS if c.__name__ == name)
    cluster, world = _world(behaviours)
    check(cluster, world)
