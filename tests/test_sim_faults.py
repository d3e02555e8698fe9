"""Every fault kind visibly moves the metric an SRE would look at, through PromQL, and
is recorded as ground truth."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core import ObjectRef
from vigil.sim.faults import Fault, FaultKind
from vigil.sim.scenario import DEFAULT_START, build_twin, small_scenario
from vigil.sim.twin import Twin

pytestmark = pytest.mark.timeout(60)
CHECKOUT = ObjectRef("Deployment", "shop", "checkout")
CART = ObjectRef("Deployment", "shop", "cart")
START = DEFAULT_START + timedelta(hours=9)  # a weekday morning
ONSET = START + timedelta(hours=1)
P99 = (
    "histogram_quantile(0.99, sum by (le, service) "
    '(rate(http_request_duration_seconds_bucket{{service="{svc}"}}[5m])))'
)
ERRORS = (
    'sum(rate(http_requests_total{{service="{svc}",code=~"5.."}}[5m])) '
    '/ sum(rate(http_requests_total{{service="{svc}"}}[5m]))'
)


def _twin(
    kind: FaultKind, target: ObjectRef, duration: timedelta, size: float | None = None
) -> Twin:
    fault = Fault(kind, target, ONSET, duration, size)
    twin = build_twin(small_scenario(faults=(fault,), start=START))
    twin.advance_to(ONSET - timedelta(minutes=1))
    return twin


def _one(twin: Twin, query: str) -> float:
    found = twin.metrics.query(query)
    assert len(found) == 1, f"{query}: {found}"
    return found[0].value


def _at(twin: Twin, minutes: float) -> None:
    twin.advance_to(ONSET + timedelta(minutes=minutes))


def test_traffic_surge_raises_request_rate() -> None:
    twin = _twin(FaultKind.TRAFFIC_SURGE, CHECKOUT, timedelta(hours=1), 6.0)
    query = 'sum(rate(http_requests_total{service="checkout"}[5m]))'
    before = _one(twin, query)
    calm = twin.workload_summary()["shop/checkout"]
    assert calm["under_provisioned_minutes"] == 0 and calm["peak_utilization"] < 0.85
    # Ready pods × hours: 3 pods for the 59 minutes (one row per 30 s, plus row 0).
    assert calm["replica_hours"] == pytest.approx(3 * (59 * 2 + 1) * 30 / 3600)
    _at(twin, 30)
    assert _one(twin, query) > 4.5 * before
    cart = 'sum(rate(http_requests_total{service="cart"}[5m]))'
    assert _one(twin, cart) < 1.5 * _one(twin, cart.replace("5m", "30m"))
    # Six times the traffic presses against the HPA maximum of 10: minutes run hot.
    summary = twin.workload_summary(overload=0.8)["shop/checkout"]
    assert summary["peak_utilization"] > 0.8 and summary["under_provisioned_minutes"] > 0
    assert summary["replica_hours"] > calm["replica_hours"] + 3 * 0.5


def test_memory_leak_grows_memory_until_oom_kills() -> None:
    twin = _twin(FaultKind.MEMORY_LEAK, CART, timedelta(hours=2))
    mem = 'max(container_memory_working_set_bytes{namespace="shop",pod=~"cart-.*"})'
    before = _one(twin, mem)
    _at(twin, 20)
    assert _one(twin, mem) > before + 200e6  # 200 kB/s for 20 min = 240 MB
    _at(twin, 60)
    restarts = 'sum(increase(kube_pod_container_status_restarts_total{pod=~"cart-.*"}[1h]))'
    assert _one(twin, restarts) >= 3
    oom = twin.metrics.query(
        'kube_pod_container_status_last_terminated_reason{reason="OOMKilled",pod=~"cart-.*"}'
    )
    assert len(oom) == 3
    pod = twin.cluster.list_pods("shop", {"app": "cart"})[0]
    assert pod.last_termination_reason == "OOMKilled" and pod.last_exit_code == 137


def test_bad_deploy_raises_p99_and_errors_and_undo_fixes_it() -> None:
    twin = _twin(FaultKind.BAD_DEPLOY, CHECKOUT, timedelta(hours=2))
    p99, errors = P99.format(svc="checkout"), ERRORS.format(svc="checkout")
    base_p99, base_err = _one(twin, p99), _one(twin, errors)
    revision = twin.cluster.get_workload(CHECKOUT).revision
    _at(twin, 15)
    assert twin.cluster.get_workload(CHECKOUT).revision == revision + 1
    assert _one(twin, p99) > 2 * base_p99
    assert _one(twin, errors) > 0.05 > base_err
    twin.cluster.rollout_undo(CHECKOUT, dry_run=False)
    _at(twin, 30)
    assert _one(twin, p99) < 1.3 * base_p99
    assert _one(twin, errors) < 0.01
    incident = twin.incidents()[0]
    assert incident.impact_start is not None and incident.recovered_at is not None
    assert incident.recovered_at < ONSET + timedelta(minutes=30)
    _at(twin, 130)
    assert not twin.incidents()[0].fixed_by_people  # already fixed: nobody had to roll back


def test_bad_deploy_left_alone_is_rolled_back_by_people_at_its_end() -> None:
    twin = _twin(FaultKind.BAD_DEPLOY, CHECKOUT, timedelta(minutes=30))
    _at(twin, 50)
    incident = twin.incidents()[0]
    assert incident.fixed_by_people
    assert incident.impacted_minutes >= 25
    assert twin.people_actions and twin.people_actions[0][1] == "rollout-undo"
    assert _one(twin, ERRORS.format(svc="checkout")) < 0.01


def test_crash_loop_shows_backoff_restarts_and_unavailability() -> None:
    twin = _twin(FaultKind.CRASH_LOOP, CART, timedelta(hours=1))
    _at(twin, 20)
    waiting = twin.metrics.query(
        'kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff",pod=~"cart-.*"}'
    )
    assert len(waiting) >= 1
    assert _one(twin, 'kube_deployment_status_replicas_available{deployment="cart"}') == 0
    assert (
        _one(twin, 'sum(increase(kube_pod_container_status_restarts_total{pod=~"cart-.*"}[15m]))')
        >= 6
    )
    assert _one(twin, ERRORS.format(svc="cart")) > 0.9  # nothing ready: 503 for everyone
    assert all(
        p.crash_looping or not p.ready for p in twin.cluster.list_pods("shop", {"app": "cart"})
    )
    _at(twin, 75)
    assert _one(twin, 'kube_deployment_status_replicas_available{deployment="cart"}') == 3


def test_node_not_ready_evicts_its_pods_after_five_minutes() -> None:
    node = ObjectRef("Node", None, "node-1")
    twin = _twin(FaultKind.NODE_NOT_READY, node, timedelta(minutes=30))
    on_node = 'count(kube_pod_info{node="node-1"})'
    assert _one(twin, on_node) >= 1
    ready = 'kube_node_status_condition{node="node-1",condition="Ready",status="true"}'
    assert _one(twin, ready) == 1
    _at(twin, 2)
    assert _one(twin, ready) == 0
    assert not next(n for n in twin.cluster.list_nodes() if n.name == "node-1").ready
    _at(twin, 8)
    assert twin.metrics.query(on_node) == []
    assert all(p.node != "node-1" for p in twin.cluster.list_pods())
    _at(twin, 31)
    assert _one(twin, ready) == 1
    assert twin.incidents()[0].affected  # the workloads that had pods there


def test_slow_dependency_slows_its_callers_only() -> None:
    db = ObjectRef("Deployment", "data", "orders-db")
    twin = _twin(FaultKind.SLOW_DEPENDENCY, db, timedelta(hours=1))
    checkout, cart = P99.format(svc="checkout"), P99.format(svc="cart")
    before_checkout, before_cart = _one(twin, checkout), _one(twin, cart)
    _at(twin, 20)
    assert _one(twin, checkout) > before_checkout + 0.5
    assert _one(twin, cart) < 1.5 * before_cart
    assert set(twin.incidents()[0].affected) == {db, CHECKOUT}


def test_incidents_record_what_was_injected_when_on_what() -> None:
    twin = _twin(FaultKind.TRAFFIC_SURGE, CHECKOUT, timedelta(minutes=30), 2.0)
    [pending] = twin.incidents()
    assert pending.injected_at is None
    _at(twin, 40)
    [incident] = twin.incidents()
    data = incident.as_dict()
    assert data["kind"] == "traffic-surge" and data["target"] == "deployment/shop/checkout"
    assert data["injected_at"] == ONSET.isoformat()
    assert data["ended_at"] == (ONSET + timedelta(minutes=30)).isoformat()


def test_incident_covers_findings_on_its_targets_pods_and_hpa() -> None:
    node = ObjectRef("Node", None, "node-1")
    twin = _twin(FaultKind.NODE_NOT_READY, node, timedelta(minutes=20))
    _at(twin, 1)
    [incident] = twin.incidents()
    during = ONSET + timedelta(minutes=5)
    assert incident.covers(node, during)
    dep = incident.affected[0]
    assert incident.covers(dep, during)
    assert incident.covers(ObjectRef("Pod", dep.namespace, f"{dep.name}-abc-x1"), during)
    assert incident.covers(ObjectRef("hpa", dep.namespace, dep.name), during)
    assert not incident.covers(dep, ONSET - timedelta(minutes=1))
    assert not incident.covers(dep, ONSET + timedelta(hours=2))
    assert not incident.covers(ObjectRef("Deployment", "payments", dep.name), during)


def test_scenario_from_settings() -> None:
    from vigil.sim import SimSettings, scenario_from_settings

    scenario = scenario_from_settings(SimSettings(seed=3, days=2, incidents=7, quiet_hours=6))
    assert (scenario.seed, scenario.days, len(scenario.faults)) == (3, 2, 7)
    assert min(f.start for f in scenario.faults) >= scenario.start + timedelta(hours=6)


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="needs a Node target"):
        Fault(FaultKind.NODE_NOT_READY, CART, ONSET, timedelta(minutes=5))
    with pytest.raises(ValueError, match="duration"):
        Fault(FaultKind.CRASH_LOOP, CART, ONSET, timedelta(0))


def test_a_fault_can_be_injected_while_running() -> None:
    twin = build_twin(small_scenario(start=START))
    twin.run(timedelta(minutes=30))
    incident = twin.inject(Fault(FaultKind.CRASH_LOOP, CART, twin.now, timedelta(minutes=20)))
    _at(twin, -20)
    assert incident.injected_at is not None and incident in twin.incidents()
    assert twin.cluster.get_workload(CART).ready_replicas == 0
