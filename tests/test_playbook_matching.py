"""Findings → plans: each built-in fires on its finding, priorities, targets, and never on
resolved or stale findings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.playbook_findings import T0, alert, anomaly, condition, forecast
from tests.playbook_twin import TwinCluster, full_twin
from vigil.core import Mode, ObjectRef, Severity
from vigil.playbooks import builtin_playbooks, match_finding, match_findings, parse_playbooks

BOOKS = builtin_playbooks()
API = ObjectRef.parse("deployment/shop/api")
CART = ObjectRef.parse("deployment/shop/cart")


@pytest.fixture
def cluster() -> TwinCluster:
    """The twin at T0, where shop/cart was just rolled out and shop/search never was."""
    twin = full_twin(T0 - timedelta(minutes=10))
    twin.roll_out_new_image(CART, bad=False)
    twin.run(timedelta(minutes=10))
    return TwinCluster(twin)


def cart_pod(cluster: TwinCluster) -> ObjectRef:
    return cluster.list_pods("shop", {"app": "cart"})[0].ref


def test_latency_anomaly_soon_after_a_rollout_undoes_it(cluster: TwinCluster) -> None:
    f = anomaly(labels={"namespace": "shop", "service": "cart"})
    m = match_finding(f, BOOKS, now=T0, cluster=cluster, dry_run=False)
    assert m is not None and m.plan is not None
    assert m.playbook.name == "rollout-undo-after-bad-rollout"
    assert (m.plan.action, m.plan.target, m.plan.mode) == ("rollout-undo", CART, Mode.APPROVE)
    later = anomaly(labels={"namespace": "shop", "service": "cart"}, at=T0 + timedelta(hours=1))
    m2 = match_finding(later, BOOKS, now=T0 + timedelta(hours=1), cluster=cluster)
    assert m2 is not None and m2.playbook.name == "notify-only"  # the rollout is old news


def test_an_anomaly_older_than_the_rollout_does_not_undo_it(cluster: TwinCluster) -> None:
    # The leak's latency began before on-call shipped the fix (a rollout restart): the
    # rollout did not cause it, and undoing it would undo the fix.
    f = anomaly(labels={"namespace": "shop", "service": "cart"}, start=T0 - timedelta(minutes=45))
    m = match_finding(f, BOOKS, now=T0, cluster=cluster, dry_run=False)
    assert m is not None and m.playbook.name == "notify-only"


def test_the_same_anomaly_long_after_a_rollout_only_notifies(cluster: TwinCluster) -> None:
    f = anomaly(labels={"namespace": "shop", "service": "search"})
    m = match_finding(f, BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.plan is not None
    assert m.playbook.name == "notify-only"
    assert m.plan.action == "notify" and m.plan.mode is Mode.DRY_RUN


def test_rollout_age_without_a_cluster_comes_from_the_finding() -> None:
    f = anomaly()
    assert match_finding(f, BOOKS, now=T0).playbook.name == "notify-only"  # type: ignore[union-attr]


def test_crash_loop_targets_the_pod_and_remembers_its_workload(cluster: TwinCluster) -> None:
    pod = cart_pod(cluster)
    m = match_finding(condition("CrashLoopBackOff", pod), BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.plan is not None
    assert m.playbook.name == "crash-loop-delete-pod"
    assert m.plan.target == pod
    assert m.plan.params["workload"] == "deployment/shop/cart"


def test_oom_fires_only_when_repeated_and_on_the_owning_deployment(cluster: TwinCluster) -> None:
    pod = cart_pod(cluster)
    once = match_finding(condition("OOMKilled", pod, count=1), BOOKS, now=T0, cluster=cluster)
    assert once is None
    thrice = match_finding(condition("OOMKilled", pod, count=3), BOOKS, now=T0, cluster=cluster)
    assert thrice is not None and thrice.plan is not None
    assert thrice.playbook.name == "oom-raise-memory-limit"
    assert thrice.plan.target == CART  # pod → ReplicaSet → Deployment


def test_forecasts_pick_restart_or_scale_up_by_what_they_cross(cluster: TwinCluster) -> None:
    mem = forecast("container_memory_working_set_bytes", peak=600.0, details={"limit": 512.0})
    m = match_finding(mem, BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.playbook.name == "memory-growth-restart"
    below = forecast("container_memory_working_set_bytes", peak=400.0, details={"limit": 512.0})
    m2 = match_finding(below, BOOKS, now=T0, cluster=cluster)
    assert m2 is None  # not an anomaly either: nothing fires
    load = forecast(peak=150.0, details={"capacity": 120.0, "desired_replicas": 5})
    m3 = match_finding(load, BOOKS, now=T0, cluster=cluster)
    assert m3 is not None and m3.plan is not None
    assert m3.playbook.name == "predictive-scale-up"
    assert m3.plan.params == {"replicas": 5}


def test_a_scale_up_without_a_decision_is_a_note_not_a_plan(cluster: TwinCluster) -> None:
    load = forecast(peak=150.0, details={"capacity": 120.0})
    m = match_finding(load, BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.plan is None
    assert "desired_replicas" in m.note


def test_saturation_needs_a_critical_cpu_anomaly(cluster: TwinCluster) -> None:
    labels = {"namespace": "shop", "pod": cart_pod(cluster).name}
    warn = anomaly("container_cpu_usage_seconds:rate5m", labels, target=None)
    assert match_finding(warn, BOOKS, now=T0, cluster=cluster).playbook.name == "notify-only"  # type: ignore[union-attr]
    crit = anomaly("container_cpu_usage_seconds:rate5m", labels, severity=Severity.CRITICAL)
    m = match_finding(crit, BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.plan is not None
    assert m.playbook.name == "saturation-scale-out" and m.plan.target == CART


def test_node_conditions_cordon_the_node(cluster: TwinCluster) -> None:
    node = ObjectRef("node", None, "node-1")
    m = match_finding(condition("NodeNotReady", node), BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.plan is not None and m.plan.action == "cordon"
    m2 = match_finding(condition("NodePressure", node), BOOKS, now=T0, cluster=cluster)
    assert m2 is not None and m2.playbook.name == "node-pressure-cordon"


def test_resolved_and_stale_findings_never_produce_plans(cluster: TwinCluster) -> None:
    node = ObjectRef("node", None, "node-1")
    resolved = condition("NodeNotReady", node, resolved_at=T0)
    assert match_finding(resolved, BOOKS, now=T0, cluster=cluster) is None
    stale = condition("NodeNotReady", node, at=T0 - timedelta(hours=1))
    assert match_finding(stale, BOOKS, now=T0, cluster=cluster) is None
    assert match_findings([resolved, stale], BOOKS, now=T0, cluster=cluster) == []


ALERT_BOOK = """
name: disk-full-alert
description: scale on an alert
priority: 5
when:
  alert:
    alertname: "KubePersistentVolume*"
    matchers: ['namespace="shop"', 'severity!="info"']
steps:
  - action: notify
"""


def test_alerts_match_by_name_glob_and_labels_and_resolved_alerts_never_fire() -> None:
    books = [*parse_playbooks(ALERT_BOOK, "test"), *BOOKS]
    firing = alert("KubePersistentVolumeFillingUp", {"namespace": "shop", "deployment": "api"})
    m = match_finding(firing, books, now=T0)
    assert m is not None and m.playbook.name == "disk-full-alert"
    assert m.plan is not None and m.plan.target == API
    other_ns = alert("KubePersistentVolumeFillingUp", {"namespace": "ops", "deployment": "api"})
    assert match_finding(other_ns, books, now=T0) is None
    resolved = alert(
        "KubePersistentVolumeFillingUp", {"namespace": "shop", "deployment": "api"}, resolved_at=T0
    )
    assert match_finding(resolved, books, now=T0) is None


def test_the_plan_key_is_stable_across_ticks(cluster: TwinCluster) -> None:
    f = anomaly(labels={"namespace": "shop", "service": "cart"})
    first = match_finding(f, BOOKS, now=T0, cluster=cluster)
    later = match_finding(f, BOOKS, now=T0 + timedelta(minutes=1), cluster=cluster)
    assert first and later and first.plan and later.plan
    assert first.plan.idempotency_key == later.plan.idempotency_key


def test_notify_only_needs_no_workload() -> None:
    """Without a cluster a pod cannot be followed to its workload; people are told anyway."""
    f = anomaly("queue_depth", {"namespace": "shop", "pod": "worker-7d9c-x1"})
    m = match_finding(f, BOOKS, now=T0)
    assert m is not None and m.plan is not None
    assert m.playbook.name == "notify-only"
    assert m.plan.target == ObjectRef.parse("pod/shop/worker-7d9c-x1")


def test_findings_about_objects_that_do_not_exist_fall_through(cluster: TwinCluster) -> None:
    gone = anomaly(labels={"namespace": "shop", "service": "gone"})
    m = match_finding(gone, BOOKS, now=T0, cluster=cluster)
    assert m is not None and m.playbook.name == "notify-only"
    dead_pod = condition("OOMKilled", ObjectRef.parse("pod/shop/cart-0-gone"), count=5)
    assert match_finding(dead_pod, BOOKS, now=T0, cluster=cluster) is None


def test_builtins_recognise_the_default_detection_queries(cluster: TwinCluster) -> None:
    """Aggregated series are named by their PromQL (``PrometheusSource``): the built-ins'
    metric globs must pick the right playbook for each query the agent scores by default."""
    from vigil.agent.config import DetectionSettings

    errors, p99, rate, cpu, memory = DetectionSettings().queries
    svc = {"namespace": "shop", "service": "cart"}
    pod = {"namespace": "shop", "pod": cart_pod(cluster).name}
    expected = [
        (errors, svc, "rollout-undo-after-bad-rollout"),
        (p99, svc, "rollout-undo-after-bad-rollout"),
        (rate, svc, "notify-only"),  # more load is not the rollout's fault
        (cpu, pod, "saturation-scale-out"),
        (memory, pod, "notify-only"),
    ]
    for query, labels, name in expected:
        f = anomaly(query, labels, severity=Severity.CRITICAL)
        m = match_finding(f, BOOKS, now=T0, cluster=cluster)
        assert m is not None and m.playbook.name == name, query


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"desired_replicas": 6, "current_replicas": 3, "apply": "scale"}, "predictive-scale-up"),
        ({"desired_replicas": 2, "current_replicas": 5, "apply": "scale"}, "predictive-scale-down"),
        ({"desired_replicas": 6, "current_replicas": 3}, "predictive-scale-up"),
        (
            {"desired_replicas": 8, "current_replicas": 2, "apply": "hpa-floor"},
            "predictive-hpa-floor",
        ),
        (
            {"desired_replicas": 2, "current_replicas": 8, "apply": "hpa-floor"},
            "predictive-hpa-floor",
        ),
        ({"desired_replicas": 3, "current_replicas": 3, "apply": "scale"}, None),
    ],
)
def test_scaling_decisions_go_to_the_playbook_of_their_direction_and_mode(
    cluster: TwinCluster, details: dict[str, object], expected: str | None
) -> None:
    m = match_finding(forecast(peak=150.0, details=details), BOOKS, now=T0, cluster=cluster)
    if expected is None:
        assert m is None
        return
    assert m is not None and m.plan is not None
    assert m.playbook.name == expected
    key = "min_replicas" if details.get("apply") == "hpa-floor" else "replicas"
    assert m.plan.params[key] == details["desired_replicas"]
