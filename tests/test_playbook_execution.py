"""Execute → verify → revert/escalate, crash reconciliation, by-hand actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.fake_cluster import FakeCluster
from tests.fake_metrics import FakeMetrics
from tests.playbook_findings import T0, anomaly, condition, forecast
from tests.playbook_journals import clock_fixture, journal_fixture, open_journal  # noqa: F401
from vigil.core import ActionStatus, ManualClock, ObjectRef, PermanentError, Severity
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    act_by_hand,
    builtin_playbooks,
    match_finding,
    parse_playbooks,
)

LIVE = GuardrailSettings(dry_run=False)
API = ObjectRef.parse("deployment/shop/api")


def books(*extra: str) -> list[Any]:
    """Built-ins with every mode switched to auto (approval has its own tests)."""
    out = [b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()]
    for text in extra:
        out = [*parse_playbooks(text, "test"), *out]
    return out


@pytest.fixture
def cluster(clock: ManualClock) -> FakeCluster:
    c = FakeCluster(clock)
    c.add_workload("deployment/shop/api", 4, revision=3, last_rollout_at=T0 - timedelta(minutes=5))
    c.add_workload("deployment/shop/web", 4)
    for n in ("node-a", "node-b", "node-c"):
        c.add_node(n)
    return c


def engine(
    journal: Any,
    cluster: FakeCluster,
    metrics: FakeMetrics | None = None,
    playbooks: list[Any] | None = None,
) -> PlaybookEngine:
    return PlaybookEngine(
        Guardrails(journal, LIVE),
        cluster=cluster,
        metrics=metrics or FakeMetrics(),
        playbooks=playbooks or books(),
    )


def run(eng: PlaybookEngine, finding: Any, cluster: FakeCluster) -> Any:
    m = match_finding(
        finding,
        list(eng.playbooks.values()),
        now=finding.observed_at,
        cluster=cluster,
        dry_run=False,
    )
    assert m is not None and m.plan is not None, "no playbook matched"
    return eng.submit(m.plan, now=finding.observed_at, finding=finding)


def test_scale_out_runs_records_before_and_after_and_verifies(
    journal: Any, cluster: FakeCluster, clock: ManualClock
) -> None:
    eng = engine(journal, cluster)
    f = anomaly("cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL)
    out = run(eng, f, cluster)
    row = out.entry
    assert row.status is ActionStatus.SUCCEEDED and row.playbook == "saturation-scale-out"
    assert row.before["observed"]["replicas"] == 4 and row.before["replicas"] == 4
    assert row.after == {"replicas": 5}
    assert row.verify_at == T0 + timedelta(minutes=10)
    assert out.notifications[0].state == "acting"
    assert eng.verify_due(T0 + timedelta(minutes=9)) == []
    done = eng.verify_due(T0 + timedelta(minutes=10))
    assert [o.notifications[0].state for o in done] == ["verified"]
    assert journal.journal_get(row.id).status is ActionStatus.SUCCEEDED
    assert eng.verify_due(T0 + timedelta(minutes=11)) == []  # verified once


def test_scale_that_fixed_nothing_is_reverted_then_escalated(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster)
    f = anomaly("cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL)
    row = run(eng, f, cluster).entry
    cluster.set_workload("deployment/shop/web", ready_replicas=4)  # the new pod never got ready
    (out,) = eng.verify_due(T0 + timedelta(minutes=10))
    assert out.entry.status is ActionStatus.REVERTED
    assert (
        "fixed nothing: ready_replicas >= replicas does not hold (ready_replicas=4, replicas=5)"
        in out.entry.message
    )
    assert cluster.workloads[ObjectRef.parse("deployment/shop/web")].replicas == 4
    revert_rows = [e for e in journal.journal_list() if e.params.get("revert_of") == row.id]
    assert len(revert_rows) == 1 and revert_rows[0].status is ActionStatus.SUCCEEDED
    assert [n.state for n in out.notifications] == ["reverted"]
    (nxt,) = out.follow_up
    assert nxt.entry.action == "notify" and nxt.entry.step == 1
    assert nxt.notifications[0].state == "escalated"
    assert "Scaling out did not ease the saturation" in nxt.notifications[0].text


def test_a_bad_rollout_is_undone_and_a_useless_undo_is_undone_again(
    journal: Any, cluster: FakeCluster
) -> None:
    metrics = FakeMetrics({'code=~"5.."': [0.2]})  # errors stay high after the undo
    eng = engine(journal, cluster, metrics)
    assert cluster.image("deployment/shop/api") == "img:3"
    row = run(eng, anomaly(), cluster).entry
    assert row.action == "rollout-undo" and cluster.image("deployment/shop/api") == "img:2"
    (out,) = eng.verify_due(T0 + timedelta(minutes=10))
    assert any('namespace="shop",service="api"' in q for q in metrics.queries)
    assert out.entry.status is ActionStatus.REVERTED
    assert "revision 3" in out.entry.message
    assert cluster.image("deployment/shop/api") == "img:3"  # the agent's undo was undone


def test_oom_raises_the_limit_one_step_and_reverts_it_when_it_keeps_dying(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster, FakeMetrics())
    pod = ObjectRef.parse("pod/shop/api-abc-0")
    row = run(eng, condition("OOMKilled", pod, count=3), cluster).entry
    assert row.action == "patch-resources" and row.target == API
    limit = cluster.workloads[API].containers[0].memory_limit
    assert limit == 768 * 1024**2  # 512Mi × 1.5
    cluster.set_pod("pod/shop/api-abc-0", restarts=2, last_termination_reason="OOMKilled")
    (out,) = eng.verify_due(T0 + timedelta(minutes=15))
    assert out.entry.status is ActionStatus.REVERTED
    assert "restarts_increase=2" in out.entry.message
    assert cluster.workloads[API].containers[0].memory_limit == 512 * 1024**2


def test_a_limit_added_where_there_was_none_is_removed_again_on_revert(
    journal: Any, cluster: FakeCluster
) -> None:
    cluster.add_workload("deployment/shop/batch", 2, memory_limit=None)
    eng = engine(journal, cluster, FakeMetrics())
    pod = ObjectRef.parse("pod/shop/batch-abc-0")
    row = run(eng, condition("OOMKilled", pod, count=4), cluster).entry
    batch = ObjectRef.parse("deployment/shop/batch")
    assert "512Mi → 768Mi" in row.message  # the configured default stands in for "no limit"
    assert cluster.workloads[batch].containers[0].memory_limit == 768 * 1024**2
    cluster.set_pod("pod/shop/batch-abc-0", restarts=1)
    (out,) = eng.verify_due(T0 + timedelta(minutes=15))
    assert out.entry.status is ActionStatus.REVERTED and "to none" in out.entry.message
    assert cluster.workloads[batch].containers[0].memory_limit is None


def test_the_memory_limit_never_exceeds_the_configured_bound(
    journal: Any, cluster: FakeCluster
) -> None:
    cluster.set_workload(
        "deployment/shop/api",
        containers=(
            cluster.workloads[API].containers[0].__class__("app", memory_limit=8 * 1024**3),
        ),
    )
    eng = engine(journal, cluster)
    out = run(eng, condition("OOMKilled", ObjectRef.parse("pod/shop/api-abc-0"), count=5), cluster)
    assert out.entry.status is ActionStatus.REFUSED
    assert "memory limit already at the allowed maximum 8Gi" in out.entry.reason


def test_deleting_a_crash_looping_pod_that_crashes_again_fails_and_escalates(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster)
    cluster.set_pod("pod/shop/api-abc-0", ready=False, waiting_reason="CrashLoopBackOff")
    row = run(
        eng, condition("CrashLoopBackOff", ObjectRef.parse("pod/shop/api-abc-0")), cluster
    ).entry
    assert row.status is ActionStatus.SUCCEEDED
    assert ObjectRef.parse("pod/shop/api-abc-0") not in cluster.pods
    cluster.add_pod("pod/shop/api-abc-9", owner=API, ready=False, waiting="CrashLoopBackOff")
    (out,) = eng.verify_due(T0 + timedelta(minutes=5))
    assert out.entry.status is ActionStatus.FAILED  # a deleted pod cannot be put back
    assert (
        "succeeded but fixed nothing: crash_looping_pods == 0 does not hold (crash_looping_pods=1)"
        in out.entry.message
    )
    assert out.follow_up[0].notifications[0].state == "escalated"


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


def test_a_cordon_that_did_not_help_is_uncordoned(journal: Any, cluster: FakeCluster) -> None:
    eng = engine(journal, cluster, playbooks=books(CORDON_REVERT))
    cluster.add_node("node-a", ready=False)
    node = ObjectRef("node", None, "node-a")
    row = run(eng, condition("NodeNotReady", node), cluster).entry
    assert row.playbook == "cordon-with-revert" and cluster.nodes["node-a"].unschedulable
    (out,) = eng.verify_due(T0 + timedelta(minutes=1))
    assert out.entry.status is ActionStatus.REVERTED
    assert not cluster.nodes["node-a"].unschedulable
    assert "No further step" in out.notifications[-1].text


def test_an_api_failure_is_a_failed_row_and_a_critical_message(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster)
    cluster.fail_next = PermanentError("deployments.apps/scale is forbidden: need patch")
    f = anomaly("cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL)
    out = run(eng, f, cluster)
    assert out.entry.status is ActionStatus.FAILED and "forbidden" in out.entry.message
    assert out.notifications[0].severity == "critical"
    assert eng.verify_due(T0 + timedelta(hours=1)) == []


def test_a_process_killed_mid_action_is_reconciled_without_repeating(
    journal: Any, cluster: FakeCluster
) -> None:
    f = forecast(
        peak=150.0,
        details={"capacity": 100.0, "desired_replicas": 7},
        labels={"namespace": "shop", "deployment": "web"},
    )
    cluster.crash_after_next = True
    with pytest.raises(SystemExit):
        run(engine(journal, cluster), f, cluster)
    (stuck,) = journal.journal_list(statuses=[ActionStatus.RUNNING])
    assert stuck.before["observed"]["replicas"] == 4  # the before-state was saved first
    restarted = engine(journal, cluster)
    (out,) = restarted.reconcile(T0 + timedelta(minutes=1))
    assert out.entry.status is ActionStatus.SUCCEEDED
    assert "reconciled after restart: replicas=7 (was 4) (not repeated)" in out.entry.message
    assert [c for c in cluster.calls if not c[2]] == [("scale", "deployment/shop/web", False)]
    assert out.entry.verify_at == T0 + timedelta(minutes=11)  # verification goes on
    assert restarted.reconcile(T0 + timedelta(minutes=2)) == []
    # the finding seen again on the next tick does not act again
    again = run(restarted, f, cluster)
    assert again.decision.duplicate


def test_a_row_interrupted_before_the_change_landed_is_failed_not_retried(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster)
    f = anomaly("cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL)
    m = match_finding(f, list(eng.playbooks.values()), now=T0, cluster=cluster, dry_run=False)
    assert m is not None and m.plan is not None
    decision = eng.guardrails.decide(m.plan, now=T0, cluster=cluster)  # claimed, then killed
    assert decision.go
    # a tick soon after leaves it alone: another process may be mid-call
    assert engine(journal, cluster).tick([], T0 + timedelta(minutes=1)) == []
    (out,) = engine(journal, cluster).tick([], T0 + timedelta(minutes=6))
    assert out.entry.status is ActionStatus.FAILED
    assert "interrupted before acting" in out.entry.message
    assert cluster.calls == []


def test_acting_by_hand_goes_through_the_guardrails_and_the_journal(
    journal: Any, cluster: FakeCluster
) -> None:
    eng = engine(journal, cluster)
    row, _ = act_by_hand(
        eng, "scale", "deployment/shop/api", {"replicas": "6"}, dry_run=False, now=T0, by="alice"
    )
    assert row is not None and row.status is ActionStatus.SUCCEEDED
    assert row.playbook == "manual" and row.reason.startswith("by hand by alice")
    assert cluster.workloads[API].replicas == 6
    dry, _ = act_by_hand(eng, "scale", "deployment/shop/api", {"replicas": 8}, dry_run=True, now=T0)
    assert dry is not None and dry.status is ActionStatus.DRY_RUN
    denied, _ = act_by_hand(eng, "cordon", "node/node-a", {}, dry_run=False, now=T0)
    assert denied is not None and denied.status is ActionStatus.SUCCEEDED
    blocked, _ = act_by_hand(
        eng, "scale", "deployment/kube-system/dns", {"replicas": 1}, dry_run=False, now=T0
    )
    assert blocked is not None and "namespace kube-system is denied" in blocked.reason
    with pytest.raises(ValueError, match="unknown action 'reboot'"):
        act_by_hand(eng, "reboot", "node/node-a", {}, dry_run=False, now=T0)
    with pytest.raises(ValueError, match="bad parameters: replicas"):
        act_by_hand(
            eng, "scale", "deployment/shop/api", {"replicas": "many"}, dry_run=False, now=T0
        )


def test_a_failed_server_side_dry_run_is_recorded(journal: Any, cluster: FakeCluster) -> None:
    eng = PlaybookEngine(
        Guardrails(journal, GuardrailSettings()), cluster=cluster, playbooks=books()
    )
    cluster.fail_next = PermanentError("forbidden: cannot patch deployments/scale")
    f = anomaly("cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL)
    m = match_finding(f, list(eng.playbooks.values()), now=T0, cluster=cluster)
    assert m is not None and m.plan is not None
    out = eng.submit(m.plan, now=T0, finding=f)
    assert out.entry.status is ActionStatus.DRY_RUN
    assert "server-side dry run failed: forbidden" in out.entry.message


def test_a_tick_matches_acts_and_a_later_tick_verifies(journal: Any, cluster: FakeCluster) -> None:
    eng = engine(journal, cluster)
    hot = anomaly(
        "cpu_usage", {"namespace": "shop", "deployment": "web"}, severity=Severity.CRITICAL
    )
    first = eng.tick([hot], T0)
    assert [o.entry.status for o in first if o.entry] == [ActionStatus.SUCCEEDED]
    # the same open finding on the next tick: a duplicate, nothing new happens
    again = eng.tick([hot], T0 + timedelta(minutes=1))
    assert [o.decision.duplicate for o in again if o.decision] == [True]
    assert len([c for c in cluster.calls if not c[2]]) == 1
    later = eng.tick([], T0 + timedelta(minutes=10))
    assert [n.state for o in later for n in o.all_notifications()] == ["verified"]
