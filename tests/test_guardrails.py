"""Each guardrail of the safety model, proven by a test (docs/playbooks.md lists them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.playbook_findings import T0, alert, condition
from tests.playbook_journals import journal_fixture, open_journal  # noqa: F401
from tests.playbook_twin import TwinCluster, full_twin
from vigil.core import MUTATING_ACTIONS, ActionStatus, Mode, ObjectRef, Plan
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    approve,
    builtin_playbooks,
    deny,
    parse_playbooks,
)
from vigil.sim import Fault

BOOKS = builtin_playbooks()
LIVE = GuardrailSettings(dry_run=False)


@pytest.fixture
def cluster() -> TwinCluster:
    """The twin's 12 workloads (shop, payments, platform, data) on 6 nodes, at T0."""
    return TwinCluster(full_twin())


def replicas(cluster: TwinCluster, ref: str) -> int:
    return cluster.get_workload(ObjectRef.parse(ref)).replicas


def engine(
    journal: Any, cluster: TwinCluster | None, s: GuardrailSettings = LIVE
) -> PlaybookEngine:
    return PlaybookEngine(Guardrails(journal, s), cluster=cluster, playbooks=BOOKS)


def plan(
    target: str = "deployment/shop/cart",
    *,
    finding: str = "f-1",
    action: str = "scale",
    params: dict[str, Any] | None = None,
    playbook: str = "saturation-scale-out",
    mode: Mode = Mode.AUTO,
    step: int = 0,
    at: datetime = T0,
) -> Plan:
    return Plan(
        finding_id=finding,
        playbook=playbook,
        step=step,
        action=action,  # type: ignore[arg-type]
        target=ObjectRef.parse(target),
        params={"by": 1} if params is None and action == "scale" else (params or {}),
        mode=mode,
        created_at=at,
    )


def test_dry_run_is_the_default_and_changes_nothing(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster, GuardrailSettings())
    out = eng.submit(plan(), now=T0)
    assert out.entry is not None and out.entry.status is ActionStatus.DRY_RUN
    assert "would have done: scale deployment/shop/cart 3 → 4" in out.entry.reason
    assert replicas(cluster, "deployment/shop/cart") == 3
    assert [c[:3] for c in cluster.calls] == [
        ("scale", "deployment/shop/cart", True)
    ]  # validated only
    assert journal.journal_get(out.entry.id).message == "server-side dry run accepted"


def test_kube_system_is_always_denied_and_the_allow_list_holds(
    journal: Any, cluster: TwinCluster
) -> None:
    eng = engine(journal, cluster, GuardrailSettings(dry_run=False, namespaces_deny=()))
    out = eng.submit(plan("deployment/kube-system/dns"), now=T0)
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "namespace kube-system is denied" in out.entry.reason
    only_shop = engine(
        journal, cluster, GuardrailSettings(dry_run=False, namespaces_allow=("shop",))
    )
    out2 = only_shop.submit(plan("deployment/payments/payments-api"), now=T0)
    assert (
        out2.entry is not None and "not in guardrails.namespaces_allow (shop)" in out2.entry.reason
    )
    assert cluster.real_calls() == []


def test_cooldown_per_playbook_and_target_survives_a_restart(
    journal: Any, cluster: TwinCluster
) -> None:
    first = engine(journal, cluster).submit(plan(finding="f-1"), now=T0)
    assert first.entry is not None and first.entry.status is ActionStatus.SUCCEEDED
    restarted = engine(journal, cluster)  # a new process: only the journal carries over
    t = T0 + timedelta(minutes=5)
    second = restarted.submit(plan(finding="f-2", at=t), now=t)
    assert second.entry is not None and second.entry.status is ActionStatus.REFUSED
    assert "cooldown of 15 min for playbook saturation-scale-out" in second.entry.reason
    assert "next at 12:15 UTC" in second.entry.reason
    other_target = restarted.submit(plan("deployment/shop/search", finding="f-3", at=t), now=t)
    assert other_target.entry is not None and other_target.entry.status is ActionStatus.SUCCEEDED
    later = T0 + timedelta(minutes=16)
    third = restarted.submit(plan(finding="f-4", at=later), now=later)
    assert third.entry is not None and third.entry.status is ActionStatus.SUCCEEDED


def test_escalation_steps_of_the_same_incident_skip_the_cooldown(
    journal: Any, cluster: TwinCluster
) -> None:
    eng = engine(journal, cluster)
    eng.submit(plan(finding="f-1"), now=T0)
    t = T0 + timedelta(minutes=1)
    nxt = eng.submit(plan(finding="f-1", step=1, params={"replicas": 7}, at=t), now=t)
    assert nxt.entry is not None and nxt.entry.status is ActionStatus.SUCCEEDED


def test_per_playbook_rate_limit(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster, GuardrailSettings(dry_run=False, max_per_playbook_per_hour=2))
    statuses = []
    for i, name in enumerate(("cart", "search", "frontend")):
        t = T0 + timedelta(minutes=i)
        out = eng.submit(plan(f"deployment/shop/{name}", finding=f"f-{i}", at=t), now=t)
        assert out.entry is not None
        statuses.append(out.entry.status)
    assert statuses == [ActionStatus.SUCCEEDED, ActionStatus.SUCCEEDED, ActionStatus.REFUSED]
    assert "rate limit of 2 actions/hour for playbook saturation-scale-out reached" in str(
        journal.journal_list(statuses=[ActionStatus.REFUSED])[0].reason
    )


def test_namespace_budget_refusal_names_the_next_slot(journal: Any, cluster: TwinCluster) -> None:
    s = GuardrailSettings(dry_run=False, max_actions_per_namespace_per_hour=2, cooldown=1)
    eng = engine(journal, cluster, s)
    times = [T0 + timedelta(minutes=m) for m in (5, 20, 40)]
    outs = [
        eng.submit(plan("deployment/payments/payments-api", finding=f"f-{i}", at=t), now=t)
        for i, t in enumerate(times)
    ]
    assert [o.entry.status for o in outs if o.entry] == [
        ActionStatus.SUCCEEDED,
        ActionStatus.SUCCEEDED,
        ActionStatus.REFUSED,
    ]
    assert outs[2].entry is not None
    assert outs[2].entry.reason == (
        "deployment/payments/payments-api: scale refused, budget of 2 actions/hour in namespace "
        "payments spent (next slot 13:05 UTC)"
    )
    # another namespace still has budget
    other = eng.submit(plan("deployment/shop/cart", finding="f-9", at=times[2]), now=times[2])
    assert other.entry is not None and other.entry.status is ActionStatus.SUCCEEDED
    # the slot frees when the oldest action ages out of the rolling hour
    t = T0 + timedelta(minutes=66)
    again = eng.submit(plan("deployment/payments/payments-api", finding="f-10", at=t), now=t)
    assert again.entry is not None and again.entry.status is ActionStatus.SUCCEEDED


def test_cluster_wide_budget(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster, GuardrailSettings(dry_run=False, max_actions_per_hour=2))
    targets = ["deployment/shop/cart", "deployment/payments/payments-api", "deployment/shop/search"]
    outs = [eng.submit(plan(t, finding=f"f-{i}"), now=T0) for i, t in enumerate(targets)]
    assert outs[2].entry is not None and outs[2].entry.status is ActionStatus.REFUSED
    assert "cluster-wide budget of 2 actions/hour spent" in outs[2].entry.reason


def test_playbook_overrides_can_only_tighten_the_budget(journal: Any, cluster: TwinCluster) -> None:
    loose = parse_playbooks(
        """
name: greedy
description: tries to grant itself more budget
when: {anomaly: {}}
steps: [{action: scale, params: {by: 1}}]
verify: {kubernetes: ready_replicas >= replicas}
guardrails: {max_actions_per_namespace_per_hour: 100, max_per_hour: 100, cooldown: 1}
""",
        "test",
    )
    rails = Guardrails(
        journal, GuardrailSettings(dry_run=False, max_actions_per_namespace_per_hour=1)
    )
    eng = PlaybookEngine(rails, cluster=cluster, playbooks=loose)
    a = eng.submit(plan(playbook="greedy", finding="a"), now=T0)
    b = eng.submit(plan("deployment/shop/search", playbook="greedy", finding="b"), now=T0)
    assert a.entry and a.entry.status is ActionStatus.SUCCEEDED
    assert b.entry and b.entry.status is ActionStatus.REFUSED and "budget of 1" in b.entry.reason


def pods(cluster: TwinCluster, ns: str, app: str) -> list[Any]:
    return cluster.list_pods(ns, {"app": app})


def crash_loop(cluster: TwinCluster, *refs: str) -> None:
    for ref in refs:
        cluster.twin.inject(
            Fault("crash-loop", ObjectRef.parse(ref), cluster.twin.now, timedelta(hours=2))
        )
    cluster.twin.run(timedelta(minutes=3))


def test_blast_radius_keeps_min_available_and_max_unavailable(
    journal: Any, cluster: TwinCluster
) -> None:
    eng = engine(journal, cluster)
    (db,) = pods(cluster, "data", "orders-db")  # the database runs one replica
    now = cluster.twin.now
    delete = {"action": "delete-pod", "params": {}, "playbook": "crash-loop-delete-pod"}
    out = eng.submit(plan(str(db.ref), **delete), now=now)  # type: ignore[arg-type]
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert (
        "would leave 0 ready replica(s) of deployment/data/orders-db, below min_available 1"
        in out.entry.reason
    )
    cluster.inner.scale(ObjectRef.parse("deployment/shop/cart"), 10, dry_run=False)
    cluster.twin.run(timedelta(minutes=2))
    now = cluster.twin.now
    down = eng.submit(plan(params={"replicas": 5}, finding="f-2", at=now), now=now)
    assert down.entry is not None and down.entry.status is ActionStatus.REFUSED
    assert "take down 5 of 10 replicas (50 %), more than 25 %" in down.entry.reason
    # a crash-looping (not ready) pod may go: it takes nothing down
    crash_loop(cluster, "deployment/data/orders-db")
    (db,) = pods(cluster, "data", "orders-db")
    assert db.crash_looping and not db.ready
    now = cluster.twin.now
    ok = eng.submit(plan(str(db.ref), finding="f-3", at=now, **delete), now=now)  # type: ignore[arg-type]
    assert ok.entry is not None and ok.entry.status is ActionStatus.SUCCEEDED


def test_cordon_never_takes_the_last_schedulable_node(journal: Any, cluster: TwinCluster) -> None:
    for n in range(1, 6):
        cluster.inner.cordon(f"node-{n}", dry_run=False)
    eng = engine(journal, cluster)
    cordon = {"action": "cordon", "params": {}, "playbook": "node-not-ready-cordon"}
    out = eng.submit(plan("node/node-6", **cordon), now=T0)  # type: ignore[arg-type]
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "leave 0 schedulable ready node(s)" in out.entry.reason
    cluster.inner.uncordon("node-1", dry_run=False)
    cluster.inner.uncordon("node-2", dry_run=False)
    half = eng.submit(plan("node/node-6", finding="f-2", **cordon), now=T0)  # type: ignore[arg-type]
    assert half.entry is not None and "4 of 6 nodes would be cordoned" in half.entry.reason


def test_storm_protection_stops_actions_when_much_is_unhealthy(
    journal: Any, cluster: TwinCluster
) -> None:
    crash_loop(
        cluster, "deployment/shop/cart", "deployment/shop/checkout", "deployment/shop/search"
    )
    eng = engine(journal, cluster)
    now = cluster.twin.now
    out = eng.submit(plan(at=now), now=now)
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "storm: 3 of 4 workloads in namespace shop are unhealthy" in out.entry.reason
    calm = eng.submit(plan("deployment/payments/payments-api", finding="f-2", at=now), now=now)
    assert calm.entry is not None and calm.entry.status is ActionStatus.SUCCEEDED


def test_freeze_windows_block_actions(journal: Any, cluster: TwinCluster) -> None:
    s = GuardrailSettings(dry_run=False, freeze_windows=("* 12 * * mon",))  # T0 is Monday 12:00
    out = engine(journal, cluster, s).submit(plan(), now=T0)
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "freeze window (* 12 * * mon) until 13:00 UTC" in out.entry.reason
    assert cluster.real_calls() == []


def test_approval_mode_waits_for_a_person(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster)
    out = eng.submit(plan(mode=Mode.APPROVE), now=T0)
    assert out.entry is not None and out.entry.status is ActionStatus.PENDING_APPROVAL
    assert out.notifications[0].state == "awaiting-approval"
    assert f"vigil approve {out.entry.id}" in out.notifications[0].text
    assert eng.run_approved(T0) == [] and cluster.calls == []
    approve(journal, out.entry.id, at=T0 + timedelta(minutes=2), by="alice")
    ran = eng.run_approved(T0 + timedelta(minutes=3))
    assert len(ran) == 1 and ran[0].entry is not None
    assert ran[0].entry.status is ActionStatus.SUCCEEDED
    assert f"approved #{out.entry.id}" in ran[0].entry.reason
    assert eng.run_approved(T0 + timedelta(minutes=4)) == []  # runs once
    assert cluster.real_calls() == [("scale", "deployment/shop/cart")]


def test_denied_and_expired_approvals_never_act(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster)
    a = eng.submit(plan(mode=Mode.APPROVE, finding="a"), now=T0)
    b = eng.submit(plan("deployment/shop/search", mode=Mode.APPROVE, finding="b"), now=T0)
    assert a.entry and b.entry
    deny(journal, a.entry.id, at=T0, by="bob", reason="not now")
    expired = eng.expire_approvals(T0 + timedelta(hours=2))
    assert [e.id for e in expired] == [b.entry.id]
    assert "approval expired" in journal.journal_get(b.entry.id).message
    with pytest.raises(Exception, match="not pending-approval"):
        approve(journal, b.entry.id, at=T0 + timedelta(hours=2))
    assert eng.run_approved(T0 + timedelta(hours=2)) == [] and cluster.calls == []


def test_idempotency_a_retried_tick_never_repeats_an_action(
    journal: Any, cluster: TwinCluster
) -> None:
    p = plan()
    first = engine(journal, cluster).submit(p, now=T0)
    again = engine(journal, cluster).submit(p, now=T0 + timedelta(seconds=30))
    assert first.entry is not None and again.decision is not None
    assert again.decision.duplicate and again.decision.guardrail == "idempotency"
    assert cluster.real_calls() == [("scale", "deployment/shop/cart")]
    assert len(journal.journal_list()) == 1


def test_resolved_or_stale_findings_never_act(journal: Any, cluster: TwinCluster) -> None:
    eng = engine(journal, cluster)
    gone = alert("HighLatency", {"namespace": "shop"}, resolved_at=T0)
    out = eng.submit(plan(finding=gone.id), now=T0, finding=gone)
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "finding resolved" in out.entry.reason
    old = condition("NodeNotReady", ObjectRef("node", None, "node-a"), at=T0 - timedelta(hours=2))
    out2 = eng.submit(plan(finding=old.id), now=T0, finding=old)
    assert out2.entry is not None and "finding is stale" in out2.entry.reason
    assert cluster.real_calls() == []


def test_nothing_to_do_is_recorded_not_done(journal: Any, cluster: TwinCluster) -> None:
    out = engine(journal, cluster).submit(plan(params={"by": 1, "max_replicas": 3}), now=T0)
    assert out.entry is not None and out.entry.status is ActionStatus.REFUSED
    assert "nothing to do: already at 3 replicas (max_replicas 3)" in out.entry.reason


def test_a_refusal_is_one_row_and_the_plan_can_act_later(
    journal: Any, cluster: TwinCluster
) -> None:
    eng = engine(journal, cluster, GuardrailSettings(dry_run=False, max_actions_per_hour=0))
    for minute in range(5):
        eng.submit(plan(), now=T0 + timedelta(minutes=minute))
    assert len(journal.journal_list()) == 1
    eng2 = engine(journal, cluster)
    out = eng2.submit(plan(), now=T0 + timedelta(minutes=6))
    assert out.entry is not None and out.entry.status is ActionStatus.SUCCEEDED


EVENT = st.tuples(
    st.integers(min_value=0, max_value=200),  # minutes after T0
    st.sampled_from(["shop", "payments"]),
    st.sampled_from(["cart", "search"]),
    st.sampled_from(["saturation-scale-out", "predictive-scale-up", "manual"]),
    st.sampled_from([Mode.AUTO, Mode.DRY_RUN, Mode.APPROVE]),
    st.booleans(),  # approve everything pending afterwards
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(EVENT, min_size=1, max_size=40),
    per_ns=st.integers(min_value=0, max_value=4),
    per_cluster=st.integers(min_value=0, max_value=6),
)
def test_no_ordering_of_events_lets_more_actions_through_than_the_budget(
    tmp_path_factory: Any, events: list[Any], per_ns: int, per_cluster: int
) -> None:
    with open_journal(tmp_path_factory.mktemp("prop")) as journal:
        check_budget_property(journal, events, per_ns, per_cluster)


def check_budget_property(journal: Any, events: list[Any], per_ns: int, per_cluster: int) -> None:
    cluster = TwinCluster(full_twin())
    current = [T0]
    cluster.time = lambda: current[0]
    s = GuardrailSettings(
        dry_run=False,
        max_actions_per_namespace_per_hour=per_ns,
        max_actions_per_hour=per_cluster,
        cooldown=1,
        max_per_playbook_per_hour=100,
        storm_min_unhealthy=100,
    )
    eng = engine(journal, cluster, s)
    for i, (minute, ns, name, book, mode, yes) in enumerate(sorted(events, key=lambda e: e[0])):
        now = T0 + timedelta(minutes=minute)
        current[0] = now
        workload = (
            name if ns == "shop" else {"cart": "payments-api", "search": "payments-worker"}[name]
        )
        p = plan(f"deployment/{ns}/{workload}", finding=f"f-{i}", playbook=book, mode=mode, at=now)
        out = eng.submit(p, now=now)
        if yes and out.entry is not None and out.entry.status is ActionStatus.PENDING_APPROVAL:
            approve(journal, out.entry.id, at=now)
        eng.run_approved(now)
        eng.verify_due(now)
    hour = timedelta(hours=1)
    rows = journal.journal_list(limit=10_000)
    acted = [
        e
        for e in rows
        if e.action in MUTATING_ACTIONS
        and e.status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.REVERTED)
        and e.params.get("revert_of") is None
    ]
    for e in acted:
        window = [x for x in acted if e.created_at - hour < x.created_at <= e.created_at]
        assert len(window) <= per_cluster
        assert len([x for x in window if x.target.namespace == e.target.namespace]) <= per_ns
    # What reached the cluster: exactly those actions, plus at most one revert of each
    # (restoring the agent's own change, later, is never held back by a budget).
    real = [c for c in cluster.calls if not c[2]]
    reverted = [e.params["revert_of"] for e in rows if e.params.get("revert_of") is not None]
    assert len(reverted) == len(set(reverted)) and set(reverted) <= {e.id for e in acted}
    assert len(real) == len(acted) + len(reverted)
