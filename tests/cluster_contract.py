"""The ``Cluster`` contract: behaviour every implementation must show, run on each of them.

Each ``check_*`` takes a ``ClusterHarness`` (a fresh cluster plus the names of objects
it holds and a ``settle`` callback that lets controllers act: the twin steps, a real
API server waits) and asserts through the ``vigil.core.Cluster`` port only. Test
modules load this file and parametrise ``CHECKS`` over their implementation:
``tests/test_sim_cluster.py`` (``SimCluster``) and the Kubernetes adapter's tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from vigil.core import (
    ActionKind,
    ActionStatus,
    Cluster,
    NotFoundError,
    ObjectRef,
    PermanentError,
)

__all__ = ["CHECKS", "ClusterHarness"]


@dataclass
class ClusterHarness:
    """A cluster under test. ``deployment`` has >= 1 replica with a container named
    ``container`` (cpu and memory requests and limits set) and is scaled by ``hpa``."""

    cluster: Cluster
    deployment: ObjectRef
    container: str
    hpa: ObjectRef
    node: str
    settle: Callable[[], None]


def _snapshot(h: ClusterHarness) -> tuple[object, ...]:
    wl = h.cluster.get_workload(h.deployment)
    hpa = next(x for x in h.cluster.list_hpas(h.hpa.namespace) if x.ref == h.hpa)
    node = next(n for n in h.cluster.list_nodes() if n.name == h.node)
    return (
        wl.replicas,
        wl.revision,
        wl.containers,
        hpa.min_replicas,
        hpa.max_replicas,
        node.unschedulable,
        sorted(p.ref.name for p in h.cluster.list_pods(h.deployment.namespace)),
    )


def check_reads(h: ClusterHarness) -> None:
    c = h.cluster
    assert isinstance(c, Cluster)
    assert h.deployment.namespace in c.list_namespaces()
    assert c.get_workload(h.deployment).ref == h.deployment
    assert h.deployment in [w.ref for w in c.list_workloads(h.deployment.namespace)]
    assert h.node in [n.name for n in c.list_nodes()]
    hpas = c.list_hpas(h.hpa.namespace)
    assert any(x.ref == h.hpa and x.target == h.deployment for x in hpas)


def check_scale_then_read_back(h: ClusterHarness) -> None:
    before = h.cluster.get_workload(h.deployment).replicas
    result = h.cluster.scale(h.deployment, before + 1, dry_run=False)
    assert result.status is ActionStatus.SUCCEEDED and not result.dry_run
    assert result.action is ActionKind.SCALE
    assert result.before["replicas"] == before
    assert h.cluster.get_workload(h.deployment).replicas == before + 1


def check_dry_run_changes_nothing(h: ClusterHarness) -> None:
    c = h.cluster
    before = _snapshot(h)
    pod = c.list_pods(h.deployment.namespace)[0].ref
    results = [
        c.scale(h.deployment, 7, dry_run=True),
        c.rollout_restart(h.deployment, dry_run=True),
        c.cordon(h.node, dry_run=True),
        c.patch_hpa(h.hpa, min_replicas=1, max_replicas=9, dry_run=True),
        c.patch_resources(
            h.deployment, h.container, requests={"cpu": "123m"}, limits={"cpu": "1"}, dry_run=True
        ),
        c.delete_pod(pod, dry_run=True),
    ]
    assert all(r.dry_run and r.status is ActionStatus.DRY_RUN for r in results)
    assert _snapshot(h) == before


def check_rollout_restart_bumps_revision(h: ClusterHarness) -> None:
    before = h.cluster.get_workload(h.deployment).revision
    result = h.cluster.rollout_restart(h.deployment, dry_run=False)
    assert result.before["revision"] == before
    h.settle()
    assert h.cluster.get_workload(h.deployment).revision > before


def check_undo_returns_previous_template(h: ClusterHarness) -> None:
    c = h.cluster
    original = c.get_workload(h.deployment)
    c.patch_resources(h.deployment, h.container, limits={"memory": "3Gi"}, dry_run=False)
    h.settle()
    patched = c.get_workload(h.deployment)
    assert patched.revision > original.revision
    assert patched.containers != original.containers
    result = c.rollout_undo(h.deployment, dry_run=False)
    assert result.before["revision"] == patched.revision
    h.settle()
    undone = c.get_workload(h.deployment)
    assert undone.containers == original.containers
    assert undone.revision > patched.revision  # the old template becomes the newest revision


def check_cordon_uncordon(h: ClusterHarness) -> None:
    c = h.cluster

    def unschedulable() -> bool:
        return next(n for n in c.list_nodes() if n.name == h.node).unschedulable

    result = c.cordon(h.node, dry_run=False)
    assert result.before["unschedulable"] is False
    assert unschedulable()
    result = c.uncordon(h.node, dry_run=False)
    assert result.before["unschedulable"] is True
    assert not unschedulable()


def check_patch_hpa(h: ClusterHarness) -> None:
    c = h.cluster
    old = next(x for x in c.list_hpas(h.hpa.namespace) if x.ref == h.hpa)
    result = c.patch_hpa(h.hpa, max_replicas=old.max_replicas + 5, dry_run=False)
    assert result.before == {"min_replicas": old.min_replicas, "max_replicas": old.max_replicas}
    new = next(x for x in c.list_hpas(h.hpa.namespace) if x.ref == h.hpa)
    assert (new.min_replicas, new.max_replicas) == (old.min_replicas, old.max_replicas + 5)
    with pytest.raises(PermanentError, match=r"(?i)replicas"):
        c.patch_hpa(h.hpa, min_replicas=50, max_replicas=3, dry_run=False)


def check_patch_resources(h: ClusterHarness) -> None:
    c = h.cluster
    old = next(x for x in c.get_workload(h.deployment).containers if x.name == h.container)
    result = c.patch_resources(
        h.deployment,
        h.container,
        requests={"memory": "300Mi"},
        limits={"memory": "1Gi"},
        dry_run=False,
    )
    assert result.before["container"] == h.container
    assert "memory" in result.before["limits"]
    new = next(x for x in c.get_workload(h.deployment).containers if x.name == h.container)
    assert new.memory_request == 300 * 2**20 and new.memory_limit == 2**30
    assert new.cpu_request == old.cpu_request
    with pytest.raises(PermanentError, match="memory"):
        c.patch_resources(
            h.deployment,
            h.container,
            requests={"memory": "2Gi"},
            limits={"memory": "1Gi"},
            dry_run=False,
        )
    with pytest.raises(PermanentError, match="nope"):
        c.patch_resources(h.deployment, "nope", limits={"memory": "1Gi"}, dry_run=False)


def check_owner_workload(h: ClusterHarness) -> None:
    c = h.cluster
    pods = c.list_pods(h.deployment.namespace)
    ours = [p for p in pods if c.owner_workload(p.ref) == h.deployment]
    assert ours, f"no pod of {h.deployment} found among {[p.ref.name for p in pods]}"


def check_not_found_names_the_object(h: ClusterHarness) -> None:
    c = h.cluster
    ns = h.deployment.namespace
    missing = ObjectRef("Deployment", ns, "no-such-app")
    with pytest.raises(NotFoundError, match="no-such-app"):
        c.get_workload(missing)
    with pytest.raises(NotFoundError, match="no-such-app"):
        c.scale(missing, 2, dry_run=True)
    with pytest.raises(NotFoundError, match="no-such-app"):
        c.rollout_restart(missing, dry_run=False)
    with pytest.raises(NotFoundError, match="no-such-node"):
        c.cordon("no-such-node", dry_run=False)
    with pytest.raises(NotFoundError, match="no-such-pod"):
        c.delete_pod(ObjectRef("Pod", ns, "no-such-pod"), dry_run=False)
    with pytest.raises(NotFoundError, match="no-such-hpa"):
        c.patch_hpa(ObjectRef("hpa", ns, "no-such-hpa"), max_replicas=3, dry_run=False)


def check_invalid_arguments(h: ClusterHarness) -> None:
    with pytest.raises(PermanentError, match="replicas"):
        h.cluster.scale(h.deployment, -1, dry_run=False)
    with pytest.raises(PermanentError, match=r"(?i)quantit"):
        h.cluster.patch_resources(
            h.deployment, h.container, limits={"memory": "lots"}, dry_run=False
        )


CHECKS: tuple[Callable[[ClusterHarness], None], ...] = (
    check_reads,
    check_scale_then_read_back,
    check_dry_run_changes_nothing,
    check_rollout_restart_bumps_revision,
    check_undo_returns_previous_template,
    check_cordon_uncordon,
    check_patch_hpa,
    check_patch_resources,
    check_owner_workload,
    check_not_found_names_the_object,
    check_invalid_arguments,
)
