"""How ``KubernetesCluster`` behaves when the API server is not having a good day.

Real conflicts (409) come from the real server: the proxy lets another writer update
the object between vigil's read and its write. Faults a real server will not give on
cue (429 with Retry-After, 503, a hung answer, a dropped connection) come from the
proxy in front of it (``tests/faultproxy.py``). ``sleep`` is a recorder, so no test
waits for a Retry-After.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import kubefixture as kf
from tests.faultproxy import Fault, FaultProxy
from vigil.core import ActionStatus, ObjectRef, RetryableError, SourceUnavailable

pytestmark = [pytest.mark.kube, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def world(worlds: kf.WorldPool) -> kf.World:
    return worlds.take()


@pytest.fixture
def proxy(kube: kf.KubeServer) -> Iterator[FaultProxy]:
    with FaultProxy(kube.server, str(kube.ca)) as running:
        yield running


def through(kube: kf.KubeServer, proxy: FaultProxy, sleeps: list[float], **settings: Any) -> Any:
    """A cluster that reaches the API server through ``proxy``; waits go to ``sleeps``."""
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    kubeconfig = kube.kubeconfig_for("proxy", kube.admin_token, proxy.url)
    return KubernetesCluster.from_settings(
        KubernetesSettings(kubeconfig=kubeconfig, qps=0, **settings), sleep=sleeps.append
    )


def other_writer(kube: kf.KubeServer, ref: ObjectRef) -> Callable[[], None]:
    """Another client changing the object (a new resourceVersion), straight to the server."""
    from kubernetes import client

    admin = kube.admin()
    bumps = iter(range(1000))

    def bump() -> None:
        body = {"metadata": {"annotations": {"other-writer": str(next(bumps))}}}
        kind = "application/merge-patch+json"
        if ref.kind == "Node":
            client.CoreV1Api(admin).patch_node(ref.name, body, _content_type=kind)
        elif ref.kind == "HorizontalPodAutoscaler":
            client.AutoscalingV1Api(admin).patch_namespaced_horizontal_pod_autoscaler(
                ref.name, ref.namespace, body, _content_type=kind
            )
        else:
            client.AppsV1Api(admin).patch_namespaced_deployment(
                ref.name, ref.namespace, body, _content_type=kind
            )

    return bump


# Each write-after-read action, and the object whose resourceVersion guards it.
CONFLICTING: dict[str, Callable[[Any, kf.World], Any]] = {
    "scale": lambda c, w: c.scale(w.deployment, 3, dry_run=False),
    "rollout-restart": lambda c, w: c.rollout_restart(w.deployment, dry_run=False),
    "rollout-undo": lambda c, w: c.rollout_undo(w.deployment, dry_run=False),
    "patch-resources": lambda c, w: c.patch_resources(
        w.deployment, "app", limits={"memory": "200Mi"}, dry_run=False
    ),
    "cordon": lambda c, w: c.cordon(w.node, dry_run=False),
    "patch-hpa": lambda c, w: c.patch_hpa(w.hpa, max_replicas=7, dry_run=False),
}


def _guarded(name: str, w: kf.World) -> ObjectRef:
    return {"cordon": ObjectRef("Node", None, w.node), "patch-hpa": w.hpa}.get(name, w.deployment)


@pytest.mark.parametrize("name", list(CONFLICTING))
def test_real_conflict_is_retried_on_a_fresh_read(
    name: str, kube: kf.KubeServer, worlds: kf.WorldPool, proxy: FaultProxy
) -> None:
    w = worlds.take()
    target = _guarded(name, w)
    proxy.add(Fault("before", method="PATCH", action=other_writer(kube, target)))
    sleeps: list[float] = []
    result = CONFLICTING[name](through(kube, proxy, sleeps), w)

    assert result.status == ActionStatus.SUCCEEDED
    patches = [what for method, _, what in proxy.seen if method == "PATCH"]
    # the real server refused the stale write; the retry went through (a controller
    # updating the object's status at the same moment may add another real 409)
    assert patches[0] == "forwarded 409" and patches[-1] == "forwarded 200"
    assert set(patches[:-1]) == {"forwarded 409"} and len(patches) <= 3
    reads = [p for m, p, _ in proxy.seen if m == "GET" and target.name in p]
    assert len(reads) >= 2  # the retry started from a fresh read
    assert sleeps == []


def test_conflicts_that_persist_become_retryable(
    kube: kf.KubeServer, worlds: kf.WorldPool, proxy: FaultProxy
) -> None:
    from vigil.actions.kubernetes import ConflictPersisted

    w = worlds.take()
    proxy.add(Fault("before", method="PATCH", action=other_writer(kube, w.deployment), times=3))
    cluster = through(kube, proxy, [], conflict_retries=2)
    with pytest.raises(ConflictPersisted, match="still conflicting after 3") as caught:
        cluster.scale(w.deployment, 5, dry_run=False)
    assert isinstance(caught.value, RetryableError) and caught.value.delay == 5.0
    assert cluster.get_workload(w.deployment).replicas == 2


def test_429_retry_after_is_honoured_then_succeeds(
    world: kf.World, kube: kf.KubeServer, proxy: FaultProxy
) -> None:
    proxy.add(Fault("status", "GET", "/scale", 429, {"Retry-After": "2"}, times=1))
    proxy.add(Fault("status", "PATCH", "/scale", 429, {"Retry-After": "1"}, times=1))
    sleeps: list[float] = []
    result = through(kube, proxy, sleeps).scale(world.deployment, 4, dry_run=True)
    assert result.status == ActionStatus.DRY_RUN
    assert sleeps == [2.0, 1.0]


def test_429_beyond_the_bound_becomes_retryable(
    world: kf.World, kube: kf.KubeServer, proxy: FaultProxy
) -> None:
    from vigil.actions.kubernetes import RateLimited

    proxy.add(Fault("status", "GET", "/deployments/api$", 429, {"Retry-After": "3"}, times=9))
    sleeps: list[float] = []
    with pytest.raises(RateLimited, match="429") as caught:
        through(kube, proxy, sleeps, rate_limit_retries=2).get_workload(world.deployment)
    assert caught.value.delay == 3.0 and sleeps == [3.0, 3.0]

    proxy.faults.clear()
    proxy.add(Fault("status", "GET", "/deployments/api$", 429, {"Retry-After": "120"}))
    sleeps.clear()
    with pytest.raises(RateLimited) as caught:
        through(kube, proxy, sleeps).get_workload(world.deployment)
    assert caught.value.delay == 120.0 and sleeps == []  # too long to block a tick


def test_server_errors_are_retryable_with_their_delay(
    world: kf.World, kube: kf.KubeServer, proxy: FaultProxy
) -> None:
    proxy.add(Fault("status", "GET", "/deployments/api$", 503, {"Retry-After": "7"}))
    with pytest.raises(SourceUnavailable, match="API server error 503") as caught:
        through(kube, proxy, []).get_workload(world.deployment)
    assert caught.value.delay == 7.0


def test_a_hung_server_times_out(world: kf.World, kube: kf.KubeServer, proxy: FaultProxy) -> None:
    proxy.add(Fault("hang", "GET", "/deployments/api$"))
    cluster = through(kube, proxy, [], read_timeout_s=0.5)
    began = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"unreachable .*Timeout"):
        cluster.get_workload(world.deployment)
    assert time.monotonic() - began < 5


def test_a_dropped_connection_is_retryable(
    world: kf.World, kube: kf.KubeServer, proxy: FaultProxy
) -> None:
    proxy.add(Fault("drop", "PATCH", "/scale"))
    with pytest.raises(SourceUnavailable, match="unreachable"):
        through(kube, proxy, []).scale(world.deployment, 3, dry_run=False)
    # urllib3 must not have re-sent the PATCH behind vigil's back
    assert [w for m, _, w in proxy.seen if m == "PATCH"] == ["dropped"]


def test_nobody_listening_is_retryable(kube: kf.KubeServer) -> None:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = kube.kubeconfig_for("closed", kube.admin_token, f"http://127.0.0.1:{port}")
    cluster = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=kubeconfig))
    with pytest.raises(SourceUnavailable, match="unreachable"):
        cluster.list_namespaces()


def test_dry_run_writes_carry_dry_run_all(
    world: kf.World, kube: kf.KubeServer, proxy: FaultProxy
) -> None:
    cluster = through(kube, proxy, [])
    cluster.scale(world.deployment, 5, dry_run=True)
    cluster.rollout_restart(world.deployment, dry_run=True)
    cluster.cordon(world.node, dry_run=True)
    cluster.patch_hpa(world.hpa, max_replicas=9, dry_run=True)
    cluster.delete_pod(world.pods[0], dry_run=True)
    cluster.evict_pod(world.pods[1], dry_run=True)
    writes = [(m, p) for m, p, _ in proxy.seen if m in ("PATCH", "POST", "DELETE")]
    # six writes (one more if a controller's status update made a real 409 and a retry)
    assert len({(m, p.split("?")[0]) for m, p in writes}) == 6
    assert all("dryRun=All" in p for _, p in writes), writes
    assert all("fieldManager=vigil" in p for m, p in writes if m == "PATCH"), writes


def test_a_rejected_token_is_permanent(world: kf.World, kube: kf.KubeServer) -> None:
    from vigil.actions.kubernetes import KubernetesCluster, KubernetesSettings, Unauthorized

    kubeconfig = kube.kubeconfig_for("stranger", "not-a-token")
    cluster = KubernetesCluster.from_settings(KubernetesSettings(kubeconfig=kubeconfig))
    with pytest.raises(Unauthorized, match="401"):
        cluster.get_workload(world.deployment)
