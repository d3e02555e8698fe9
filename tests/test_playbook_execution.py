"""Execute → verify → revert/escalate on the twin (``SimCluster`` + ``SimMetrics``), crash
reconciliation, by-hand actions. Faults come from the twin's fault injector."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.playbook_findings import anomaly, condition, forecast
from tests.playbook_twin import CART, LIVE, Rig, auto_books, rig_fixture  # noqa: F401
from vigil.core import (
    ActionKind,
    ActionStatus,
    JournalEntry,
    Mode,
    ObjectRef,
    PermanentError,
    Severity,
)
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    ResourceBounds,
    act_by_hand,
    match_finding,
    parse_playbooks,
    revert_call,
)
from vigil.sim import Fault

pytestmark = pytest.mark.timeout(60)


def cart_pod(rig: Rig) -> ObjectRef:
    return rig.twin.cluster.list_pods("shop", {"app": "cart"})[0].ref


def saturated(rig: Rig) -> Any:
    labels = {"namespace": "shop", "pod": cart_pod(rig).name}
    return anomaly(
        "container_cpu_usage_seconds:rate5m", labels, severity=Severity.CRITICAL, at=rig.now
    )


def errors_on_cart(rig: Rig) -> Any:
    return anomaly("http_errors:ratio", {"namespace": "shop", "service": "cart"}, at=rig.now)


def image(rig: Rig) -> str:
    return rig.twin.cluster.get_workload(CART).containers[0].image


def test_scale_out_runs_records_before_and_after_and_verifies(rig: Rig) -> None:
    (out,) = rig.tick(saturated(rig))
    row = out.entry
    assert (row.playbook, row.status, row.target) == (
        "saturation-scale-out",
        ActionStatus.SUCCEEDED,
        CART,
    )
    assert row.before["observed"]["replicas"] == 3 and row.before["replicas"] == 3
    assert row.after["replicas"] == 4
    assert row.verify_at == rig.now + timedelta(minutes=10)
    assert out.notifications[0].state == "acting"
    rig.run(9)
    assert rig.tick() == []
    rig.run(1)
    (checked,) = rig.tick()
    assert [n.state for n in checked.notifications] == ["verified"]
    assert "ready_replicas=4, replicas=4" in checked.notifications[0].text
    assert rig.journal.journal_get(row.id).status is ActionStatus.SUCCEEDED
    rig.run(1)
    assert rig.tick() == []  # verified once


def test_a_scale_out_whose_pods_cannot_start_is_reverted_then_escalated(rig: Rig) -> None:
    for node in rig.twin.cluster.list_nodes():  # no room anywhere: the new pod stays Pending
        rig.twin.cluster.cordon(node.name, dry_run=False)
    (first,) = rig.tick(saturated(rig))
    assert rig.twin.cluster.get_workload(CART).replicas == 4
    rig.run(10)
    (out,) = rig.tick()
    assert out.entry.status is ActionStatus.REVERTED
    assert (
        "fixed nothing: ready_replicas >= replicas does not hold (ready_replicas=3, replicas=4)"
    ) in out.entry.message
    assert rig.twin.cluster.get_workload(CART).replicas == 3
    revert_rows = [
        e for e in rig.journal.journal_list() if e.params.get("revert_of") == first.entry.id
    ]
    assert len(revert_rows) == 1 and revert_rows[0].status is ActionStatus.SUCCEEDED
    assert [n.state for n in out.notifications] == ["reverted"]
    (nxt,) = out.follow_up
    assert nxt.entry.action == "notify" and nxt.entry.step == 1
    assert nxt.notifications[0].state == "escalated"
    assert "Scaling out did not ease the saturation" in nxt.notifications[0].text


def test_a_bad_rollout_is_undone_and_verified_through_promql(rig: Rig) -> None:
    rig.twin.roll_out_new_image(CART, bad=True)
    rig.run(5)
    (out,) = rig.tick(errors_on_cart(rig))
    assert out.entry.action == "rollout-undo" and out.entry.status is ActionStatus.SUCCEEDED
    rig.run(10)
    (checked,) = rig.tick()
    assert checked.notifications[0].state == "verified"
    assert 'service="cart",code=~"5.."' in checked.notifications[0].text
    assert not rig.twin.serves_bad_image(CART)


def test_an_undo_that_did_not_help_is_undone_again(rig: Rig) -> None:
    release = rig.twin.roll_out_new_image(CART, bad=False)  # a good release …
    rig.twin.inject(Fault("traffic-surge", CART, rig.now, timedelta(hours=2), 6.0))  # … and a surge
    rig.run(15)
    (out,) = rig.tick(errors_on_cart(rig))
    assert out.entry.action == "rollout-undo" and image(rig) != release
    rig.run(10)
    (checked,) = rig.tick()
    assert checked.entry.status is ActionStatus.REVERTED
    assert (
        "does not hold" in checked.entry.message and "back to revision 2" in checked.entry.message
    )
    assert image(rig) == release  # the agent's undo was undone
    assert [n.state for n in checked.all_notifications()] == ["reverted", "escalated"]


def oom_finding(rig: Rig, leak: float) -> Any:
    rig.twin.inject(Fault("memory-leak", CART, rig.now, timedelta(hours=6), leak))
    for _ in range(24):
        rig.run(2.5)
        pods = rig.twin.cluster.list_pods("shop", {"app": "cart"})
        kills = sum(p.restarts for p in pods if p.last_termination_reason == "OOMKilled")
        if kills >= 3:
            return condition("OOMKilled", pods[0].ref, count=kills, at=rig.now)
    raise AssertionError("the leak never OOM-killed cart")


def memory_limit(rig: Rig) -> float | None:
    return rig.twin.cluster.get_workload(CART).containers[0].memory_limit


def test_oom_raises_the_limit_one_step_and_it_holds(rig: Rig) -> None:
    (out,) = rig.tick(oom_finding(rig, 600_000))
    assert out.entry.action == "patch-resources" and out.entry.target == CART
    assert memory_limit(rig) == 768 * 1024**2  # 512Mi × 1.5
    rig.run(15)
    (checked,) = rig.tick()
    assert checked.notifications[0].state == "verified"
    assert memory_limit(rig) == 768 * 1024**2


def test_oom_limit_raise_that_does_not_stop_the_kills_is_reverted(rig: Rig) -> None:
    rig.tick(oom_finding(rig, 3_000_000))
    rig.run(15)
    (checked,) = rig.tick()
    assert checked.entry.status is ActionStatus.REVERTED
    assert "restarts_increase == 0 does not hold" in checked.entry.message
    assert memory_limit(rig) == 512 * 1024**2


def test_the_memory_limit_never_exceeds_the_configured_bound(rig: Rig) -> None:
    rig.engine = PlaybookEngine(
        Guardrails(rig.journal, LIVE, resources=ResourceBounds(memory_limit_max=512 * 1024**2)),
        cluster=rig.cluster,
        metrics=rig.twin.metrics,
        playbooks=auto_books(),
    )
    (out,) = rig.tick(oom_finding(rig, 3_000_000))
    assert out.entry.status is ActionStatus.REFUSED
    assert "memory limit already at the allowed maximum 512Mi" in out.entry.reason


def test_deleting_a_crash_looping_pod_that_crashes_again_fails_and_escalates(rig: Rig) -> None:
    rig.twin.inject(Fault("crash-loop", CART, rig.now, timedelta(hours=2)))
    rig.run(5)
    pod = next(p for p in rig.twin.cluster.list_pods("shop", {"app": "cart"}) if p.crash_looping)
    (out,) = rig.tick(condition("CrashLoopBackOff", pod.ref, at=rig.now))
    assert out.entry.action == "delete-pod" and out.entry.status is ActionStatus.SUCCEEDED
    assert pod.ref.name not in {p.ref.name for p in rig.twin.cluster.list_pods("shop")}
    rig.run(5)
    (checked,) = rig.tick()
    assert checked.entry.status is ActionStatus.FAILED  # a deleted pod cannot be put back
    assert "succeeded but fixed nothing: crash_looping_pods == 0 does not hold" in (
        checked.entry.message
    )
    assert checked.follow_up[0].notifications[0].state == "escalated"


CORDON_REVERT = """
name: cordon-with-revert
description: cordon, and uncordon again if the node does not recover
priority: 1
when: {condition: {type: NodeNotReady}}
target: node
steps: [{action: cordon}]
verify: {kubernetes: ready == true, within: 60}
on_failure: [revert, escalate]
mode: auto
"""


def test_a_node_not_ready_is_cordoned_and_that_verifies(rig: Rig) -> None:
    node = ObjectRef("node", None, "node-2")
    rig.twin.inject(Fault("node-not-ready", node, rig.now, timedelta(hours=1)))
    rig.run(2)
    (out,) = rig.tick(condition("NodeNotReady", node, at=rig.now))
    assert out.entry.action == "cordon" and out.entry.playbook == "node-not-ready-cordon"
    rig.run(1)
    (checked,) = rig.tick()
    assert checked.notifications[0].state == "verified"
    assert next(n for n in rig.twin.cluster.list_nodes() if n.name == "node-2").unschedulable


def test_a_cordon_that_did_not_help_is_uncordoned(rig: Rig) -> None:
    rig.restart(books=auto_books(*parse_playbooks(CORDON_REVERT, "test")))
    node = ObjectRef("node", None, "node-2")
    rig.twin.inject(Fault("node-not-ready", node, rig.now, timedelta(hours=1)))
    rig.run(2)
    (out,) = rig.tick(condition("NodeNotReady", node, at=rig.now))
    assert out.entry.playbook == "cordon-with-revert"
    rig.run(1)
    (checked,) = rig.tick()
    assert checked.entry.status is ActionStatus.REVERTED
    assert not next(n for n in rig.twin.cluster.list_nodes() if n.name == "node-2").unschedulable
    assert "No further step" in checked.notifications[-1].text


def test_an_api_failure_is_a_failed_row_and_a_critical_message(rig: Rig) -> None:
    rig.cluster.fail_next = PermanentError("deployments.apps/scale is forbidden: need patch")
    (out,) = rig.tick(saturated(rig))
    assert out.entry.status is ActionStatus.FAILED and "forbidden" in out.entry.message
    assert out.notifications[0].severity == "critical"
    rig.run(60)
    assert rig.tick() == []  # nothing to verify, nothing retried
    assert rig.twin.cluster.get_workload(CART).replicas == 3


def scale_up_forecast(rig: Rig) -> Any:
    return forecast(
        peak=150.0,
        details={"capacity": 100.0, "desired_replicas": 5},
        labels={"namespace": "shop", "deployment": "cart"},
        at=rig.now,
    )


def test_a_process_killed_mid_action_is_reconciled_without_repeating(rig: Rig) -> None:
    f = scale_up_forecast(rig)
    rig.cluster.die_after_next = True
    with pytest.raises(SystemExit):
        rig.tick(f)
    (stuck,) = rig.journal.journal_list(statuses=[ActionStatus.RUNNING])
    assert stuck.before["observed"]["replicas"] == 3  # the before-state was saved first
    rig.restart()
    (out,) = rig.engine.reconcile(rig.now)
    assert out.entry.status is ActionStatus.SUCCEEDED
    assert "reconciled after restart: replicas=5 (was 3) (not repeated)" in out.entry.message
    assert out.entry.verify_at == rig.now + timedelta(minutes=10)  # verification goes on
    assert rig.engine.reconcile(rig.now) == []
    (again,) = rig.tick(f)  # the same finding on the next tick does not act again
    assert again.decision.duplicate
    assert rig.cluster.real_calls() == [("scale", "deployment/shop/cart")]


def test_a_row_interrupted_before_the_change_landed_is_failed_not_retried(rig: Rig) -> None:
    found = match_finding(
        saturated(rig),
        list(rig.engine.playbooks.values()),
        now=rig.now,
        cluster=rig.cluster,
        dry_run=False,
    )
    assert found is not None and found.plan is not None
    # the row is claimed (running), then the process dies before calling the cluster
    assert rig.engine.guardrails.decide(found.plan, now=rig.now, cluster=rig.cluster).go
    rig.restart()
    rig.run(1)
    assert rig.tick() == []  # a tick soon after leaves it alone: another process may be mid-call
    rig.run(5)
    (out,) = rig.tick()
    assert out.entry.status is ActionStatus.FAILED
    assert "interrupted before acting" in out.entry.message
    assert rig.cluster.real_calls() == []


def test_acting_by_hand_goes_through_the_guardrails_and_the_journal(rig: Rig) -> None:
    def act(action: str, target: str, params: dict[str, Any], dry: bool = False) -> Any:
        row, _ = act_by_hand(
            rig.engine, action, target, params, dry_run=dry, now=rig.now, by="alice"
        )
        return row

    row = act("scale", "deployment/shop/cart", {"replicas": "5"})
    assert row.status is ActionStatus.SUCCEEDED
    assert row.playbook == "manual" and row.reason.startswith("by hand by alice")
    assert rig.twin.cluster.get_workload(CART).replicas == 5
    assert act("scale", "deployment/shop/cart", {"replicas": 8}, dry=True).status == "dry-run"
    assert rig.twin.cluster.get_workload(CART).replicas == 5
    assert act("cordon", "node/node-1", {}).status is ActionStatus.SUCCEEDED
    blocked = act("scale", "deployment/kube-system/dns", {"replicas": 1})
    assert "namespace kube-system is denied" in blocked.reason
    with pytest.raises(ValueError, match="unknown action 'reboot'"):
        act("reboot", "node/node-1", {})
    with pytest.raises(ValueError, match="bad parameters: replicas"):
        act("scale", "deployment/shop/cart", {"replicas": "many"})


def test_dry_run_is_validated_by_the_cluster_and_a_failure_recorded(rig: Rig) -> None:
    rig.restart(GuardrailSettings())  # the default: dry-run
    (ok,) = rig.tick(saturated(rig))
    assert ok.entry.status is ActionStatus.DRY_RUN
    assert ok.entry.message == "server-side dry run accepted"
    assert ok.entry.before["replicas"] == 3 and rig.twin.cluster.get_workload(CART).replicas == 3
    rig.cluster.fail_next = PermanentError("forbidden: cannot patch deployments/scale")
    (bad,) = rig.tick(scale_up_forecast(rig))
    assert bad.entry.status is ActionStatus.DRY_RUN
    assert "server-side dry run failed: forbidden" in bad.entry.message


def test_revert_of_a_limit_that_was_not_there_removes_it(rig: Rig) -> None:
    """The twin's containers all have limits; for one without, the revert asks the cluster
    to remove the limit again ("" is "remove" in the Cluster contract, as the Kubernetes
    adapter implements it; the twin rejects it, which the revert reports)."""
    entry = JournalEntry(
        id=1,
        idempotency_key="k",
        finding_id="f",
        playbook="oom-raise-memory-limit",
        step=0,
        action=ActionKind.PATCH_RESOURCES,
        target=CART,
        params={},
        mode=Mode.AUTO,
        status=ActionStatus.SUCCEEDED,
        created_at=rig.now,
        updated_at=rig.now,
        before={"observed": {"container": "cart", "memory_limit": None}},
    )
    how = revert_call(entry, rig.cluster)
    assert how is not None
    action, summary, call = how
    assert action == "patch-resources" and summary.endswith("to none")
    with pytest.raises(PermanentError):
        call()
    assert rig.cluster.calls[-1][:3] == ("patch_resources", "deployment/shop/cart", False)
