"""The action journal: idempotency, compare-and-set transitions, guardrail queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.agent.store import SqliteStore, TransitionConflict
from vigil.core import ActionStatus, NotFoundError, ObjectRef, Verification

pytestmark = pytest.mark.timeout(60)

S = ActionStatus
EXECUTED = [S.RUNNING, S.SUCCEEDED, S.FAILED, S.REVERTED]


def test_duplicate_idempotency_key_inserts_nothing(store: SqliteStore, values) -> None:
    plan = values.plan()
    first = store.journal_plan(plan, S.DRY_RUN, at=values.T0)
    assert first is not None and first.status is S.DRY_RUN
    assert store.journal_plan(plan, S.RUNNING, at=values.T0 + timedelta(minutes=1)) is None
    assert store.journal_by_key(plan.idempotency_key) == first
    assert store.journal_by_key("nope") is None
    assert len(store.journal_list()) == 1


def test_refused_rows_carry_the_reason(store: SqliteStore, values) -> None:
    entry = store.journal_plan(values.plan(), S.REFUSED, reason="budget of 5/h spent", at=values.T0)
    assert entry is not None and entry.reason == "budget of 5/h spent"
    other = store.journal_plan(values.plan("f-2"), S.DRY_RUN, at=values.T0)
    assert other is not None and other.reason.startswith("p99 latency")  # the plan's reason


def test_compare_and_set_moves_only_from_expected(store: SqliteStore, values) -> None:
    t = values.T0
    entry = store.journal_plan(values.plan(), S.PENDING_APPROVAL, at=t)
    assert entry is not None
    approved = store.journal_transition(
        entry.id,
        S.APPROVED,
        at=t + timedelta(minutes=1),
        expect=[S.PENDING_APPROVAL],
        message="by alice",
    )
    assert (approved.status, approved.message) == (S.APPROVED, "by alice")
    with pytest.raises(TransitionConflict) as err:
        store.journal_transition(
            entry.id, S.DENIED, at=t + timedelta(minutes=2), expect=[S.PENDING_APPROVAL]
        )
    text = str(err.value)
    assert f"action {entry.id}" in text and "it is approved" in text
    assert "expected one of pending-approval" in text and "denied" in text
    assert store.journal_get(entry.id).status is S.APPROVED  # unchanged
    # Without expect the move is unconditional.
    assert store.journal_transition(entry.id, S.RUNNING, at=t).status is S.RUNNING
    with pytest.raises(NotFoundError, match="no action 999"):
        store.journal_transition(999, S.RUNNING, at=t, expect=[S.APPROVED])
    with pytest.raises(NotFoundError, match="no action 999"):
        store.journal_get(999)
    with pytest.raises(TypeError, match="list of ActionStatus"):
        store.journal_transition(entry.id, S.RUNNING, at=t, expect="running")  # type: ignore[arg-type]


def test_budget_counts_by_time_namespace_playbook_and_target(store: SqliteStore, values) -> None:
    t = values.T0
    pay = ObjectRef.parse("deployment/payments/api")
    node = ObjectRef("node", None, "node-a")
    rows = [
        (values.plan("f-1"), S.SUCCEEDED, t),
        (values.plan("f-2", replicas=5), S.FAILED, t + timedelta(minutes=10)),
        (values.plan("f-3", target=pay), S.SUCCEEDED, t + timedelta(minutes=20)),
        (values.plan("f-4", playbook="restart", target=pay), S.RUNNING, t + timedelta(minutes=30)),
        (values.plan("f-5"), S.DRY_RUN, t + timedelta(minutes=40)),
        (values.plan("f-6", target=node), S.SUCCEEDED, t + timedelta(minutes=50)),
    ]
    for plan, status, at in rows:
        assert store.journal_plan(plan, status, at=at) is not None
    hour = t + timedelta(minutes=50) - timedelta(hours=1)
    assert store.count_actions(since=hour, statuses=EXECUTED) == 5
    assert store.count_actions(since=t + timedelta(minutes=15), statuses=EXECUTED) == 3
    assert store.count_actions(since=hour, statuses=EXECUTED, namespace="payments") == 2
    assert store.count_actions(since=hour, statuses=EXECUTED, playbook="restart") == 1
    assert store.count_actions(since=hour, statuses=EXECUTED, target=values.CART) == 2
    assert store.count_actions(since=hour, statuses=EXECUTED, target=node) == 1
    assert store.count_actions(since=hour, statuses=[S.DRY_RUN]) == 1
    assert store.count_actions(since=hour, statuses=[]) == 0
    assert store.last_action_at(
        playbook="scale-out", target=values.CART, statuses=EXECUTED
    ) == t + timedelta(minutes=10)
    assert store.last_action_at(
        playbook="scale-out", target=node, statuses=EXECUTED
    ) == t + timedelta(minutes=50)
    assert store.last_action_at(playbook="restart", target=values.CART, statuses=EXECUTED) is None
    listed = store.journal_list(since=t + timedelta(minutes=10), until=t + timedelta(minutes=40))
    assert [e.finding_id for e in listed] == ["f-4", "f-3", "f-2"]  # newest first
    assert [
        e.finding_id for e in store.journal_list(namespace="payments", statuses=[S.RUNNING])
    ] == ["f-4"]
    assert [e.finding_id for e in store.journal_list(playbook="scale-out", limit=2)] == [
        "f-6",
        "f-5",
    ]


def test_an_approved_action_counts_when_it_runs(store: SqliteStore, values) -> None:
    t = values.T0
    entry = store.journal_plan(values.plan(), S.PENDING_APPROVAL, at=t)
    assert entry is not None
    store.journal_transition(entry.id, S.APPROVED, at=t + timedelta(hours=3))
    ran = t + timedelta(hours=3, minutes=1)
    store.journal_transition(entry.id, S.RUNNING, at=ran, expect=[S.APPROVED])
    store.journal_transition(entry.id, S.SUCCEEDED, at=ran + timedelta(minutes=1))
    # The hour budget it spends is the hour it ran in, not the hour it was proposed in.
    assert store.count_actions(since=ran - timedelta(hours=1), statuses=EXECUTED) == 1
    assert store.count_actions(since=t, statuses=EXECUTED) == 1
    assert store.last_action_at(playbook="scale-out", target=values.CART, statuses=EXECUTED) == ran


def test_due_verifications(store: SqliteStore, values) -> None:
    t = values.T0
    a = store.journal_plan(values.plan("f-1"), S.RUNNING, at=t)
    b = store.journal_plan(values.plan("f-2"), S.RUNNING, at=t)
    assert a is not None and b is not None
    store.journal_transition(a.id, S.SUCCEEDED, at=t, verify_at=t + timedelta(minutes=5))
    store.journal_transition(b.id, S.SUCCEEDED, at=t, verify_at=t + timedelta(minutes=10))
    assert store.due_verifications(t + timedelta(minutes=4)) == []
    assert [e.id for e in store.due_verifications(t + timedelta(minutes=5))] == [a.id]
    assert [e.id for e in store.due_verifications(t + timedelta(minutes=11))] == [a.id, b.id]
    store.record_verification(Verification(a.id, True, t + timedelta(minutes=6), "ok"))
    assert [e.id for e in store.due_verifications(t + timedelta(minutes=11))] == [b.id]
    # A later verify_at (re-check after a revert) makes it due again.
    store.journal_transition(a.id, S.REVERTED, at=t, verify_at=t + timedelta(minutes=20))
    assert [e.id for e in store.due_verifications(t + timedelta(minutes=21))] == [b.id, a.id]
    # A row still running is never due.
    c = store.journal_plan(values.plan("f-3"), S.RUNNING, at=t)
    assert c is not None
    store.journal_transition(c.id, S.RUNNING, at=t, verify_at=t)
    assert c.id not in [e.id for e in store.due_verifications(t + timedelta(hours=1))]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.sampled_from(list(ActionStatus))), max_size=25))
def test_count_matches_a_plain_count(tmp_path_factory, values, events) -> None:
    """Whatever the order of events, the count equals a count done by hand."""
    path = tmp_path_factory.mktemp("prop") / "vigil.db"
    with SqliteStore.open(path) as store:
        for i, (minute, status) in enumerate(events):
            store.journal_plan(
                values.plan(f"f-{i}"), status, at=values.T0 + timedelta(minutes=minute)
            )
        since = values.T0 + timedelta(minutes=60)
        want = sum(1 for m, s in events if m >= 60 and s in EXECUTED)
        assert store.count_actions(since=since, statuses=EXECUTED) == want
