"""One store shared by the daemon's threads; compare-and-set races between connections;
the guardrail queries served by indexes."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from vigil.agent.store import SqliteStore, TransitionConflict
from vigil.core import ActionStatus

pytestmark = pytest.mark.timeout(60)

S = ActionStatus


def test_threads_share_one_store(store: SqliteStore, values) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(40):
                at = values.T0 + timedelta(seconds=i)
                tick = store.start_tick(at)
                store.journal_plan(values.plan(f"f-{worker}-{i}"), S.DRY_RUN, at=at)
                store.count_actions(since=values.T0, statuses=[S.DRY_RUN])
                store.finish_tick(tick, at, {"all": 0.1}, [])
        except BaseException as exc:  # collected and re-raised by the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert errors == []
    assert store.count_actions(since=values.T0, statuses=[S.DRY_RUN]) == 160
    assert store.stats()["tables"]["ticks"] == 160


def test_approve_and_deny_race_has_one_winner(db_path: Path, values) -> None:
    """Two people (two connections, as two CLI processes) answer one approval at once."""
    with SqliteStore.open(db_path) as store:
        ids = []
        for i in range(20):
            entry = store.journal_plan(values.plan(f"f-{i}"), S.PENDING_APPROVAL, at=values.T0)
            assert entry is not None
            ids.append(entry.id)
    outcomes: dict[str, list[int]] = {"approved": [], "denied": [], "conflict": []}
    lock = threading.Lock()
    start = threading.Barrier(2)

    def answer(status: ActionStatus) -> None:
        with SqliteStore.open(db_path) as own:
            start.wait(timeout=10)
            for action_id in ids:
                try:
                    own.journal_transition(
                        action_id, status, at=values.T0, expect=[S.PENDING_APPROVAL]
                    )
                    key = status.value
                except TransitionConflict:
                    key = "conflict"
                with lock:
                    outcomes[key].append(action_id)

    threads = [threading.Thread(target=answer, args=(s,)) for s in (S.APPROVED, S.DENIED)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert sorted(outcomes["approved"] + outcomes["denied"]) == ids  # one winner each
    assert len(outcomes["conflict"]) == len(ids)
    with SqliteStore.open(db_path, readonly=True) as reader:
        for action_id in ids:
            status = reader.journal_get(action_id).status
            assert action_id in outcomes[status.value]


def test_guardrail_and_poll_queries_use_indexes(store: SqliteStore, values) -> None:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    t = values.T0
    store.count_actions(since=t, statuses=[S.RUNNING])
    store.count_actions(since=t, statuses=[S.RUNNING], namespace="shop")
    store.count_actions(since=t, statuses=[S.RUNNING], playbook="scale-out")
    store.count_actions(since=t, statuses=[S.RUNNING], target=values.CART)
    store.last_action_at(playbook="scale-out", target=values.CART, statuses=[S.RUNNING])
    store.due_verifications(t)
    store.due_messages(t)
    store.message_ref("slack", "inc-1")
    store.open_findings()
    store._conn.set_trace_callback(None)
    queries = [s for s in statements if s.startswith("SELECT")]
    assert len(queries) == 9
    for sql in queries:
        steps = [r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql)]
        ours = [
            step
            for step in steps
            if step.startswith(("SCAN", "SEARCH")) and "json_each" not in step
        ]
        assert ours, (sql, steps)
        # Every step over one of our tables goes through an index, never a full scan.
        assert all("INDEX" in step for step in ours), (sql, steps)
