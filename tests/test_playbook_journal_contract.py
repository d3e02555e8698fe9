"""The backtest's ``MemoryJournal`` behaves as the SQLite store does, on the journal
operations guardrails and the engine use (one scenario, both implementations)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_findings import T0
from tests.playbook_journals import open_journal
from vigil.core import (
    ActionKind,
    ActionResult,
    ActionStatus,
    Mode,
    ObjectRef,
    Plan,
    TransitionConflict,
    Verification,
)
from vigil.playbooks import MemoryJournal

API = ObjectRef.parse("deployment/shop/api")
NODE = ObjectRef("node", None, "node-a")


@pytest.fixture(params=["sqlite", "memory"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryJournal()
    else:
        with open_journal(tmp_path) as store:
            yield store


def plan(key: str, target: ObjectRef = API, playbook: str = "p") -> Plan:
    return Plan(
        finding_id="f",
        playbook=playbook,
        step=0,
        action=ActionKind.SCALE,
        target=target,
        params={"replicas": 3},
        mode=Mode.AUTO,
        created_at=T0,
        idempotency_key=key,
    )


def test_the_journal_contract(journal: Any) -> None:
    a = journal.journal_plan(plan("a"), ActionStatus.RUNNING, reason="why", at=T0)
    assert a is not None and a.reason == "why" and a.status is ActionStatus.RUNNING
    assert journal.journal_plan(plan("a"), ActionStatus.RUNNING, at=T0) is None
    assert journal.journal_by_key("a").id == a.id
    pending = journal.journal_plan(plan("b"), ActionStatus.PENDING_APPROVAL, at=T0)
    node = journal.journal_plan(plan("c", NODE), ActionStatus.REFUSED, at=T0 + timedelta(minutes=5))
    assert pending is not None and node is not None
    with pytest.raises(TransitionConflict):
        journal.journal_transition(
            a.id, ActionStatus.SUCCEEDED, at=T0, expect=[ActionStatus.FAILED]
        )
    result = ActionResult(
        ActionKind.SCALE,
        API,
        ActionStatus.SUCCEEDED,
        T0,
        T0,
        False,
        "scaled",
        {"replicas": 2},
        {"replicas": 3},
    )
    done = journal.journal_transition(
        a.id,
        ActionStatus.SUCCEEDED,
        at=T0 + timedelta(minutes=1),
        expect=[ActionStatus.RUNNING],
        result=result,
        verify_at=T0 + timedelta(minutes=10),
    )
    assert (done.message, dict(done.before), dict(done.after)) == (
        "scaled",
        {"replicas": 2},
        {"replicas": 3},
    )
    # an approval that runs later counts at the time it ran
    late = T0 + timedelta(hours=2)
    journal.journal_transition(pending.id, ActionStatus.APPROVED, at=late)
    journal.journal_transition(pending.id, ActionStatus.RUNNING, at=late)
    counted = [ActionStatus.RUNNING, ActionStatus.SUCCEEDED]
    assert journal.count_actions(since=T0, statuses=counted) == 2
    assert journal.count_actions(since=T0 + timedelta(hours=1), statuses=counted) == 1
    assert (
        journal.count_actions(
            since=T0, statuses=counted, namespace="shop", playbook="p", target=API
        )
        == 2
    )
    assert journal.last_action_at(playbook="p", target=API, statuses=counted) == late
    assert journal.last_action_at(playbook="p", target=NODE, statuses=counted) is None
    listed = journal.journal_list(since=T0, until=late, limit=10)
    assert [e.id for e in listed] == [node.id, a.id]  # newest first, until exclusive
    assert [e.id for e in journal.journal_list(namespace="shop")] == [pending.id, a.id]
    assert journal.due_verifications(T0 + timedelta(minutes=9)) == []
    assert [e.id for e in journal.due_verifications(T0 + timedelta(minutes=10))] == [a.id]
    journal.record_verification(Verification(a.id, True, T0 + timedelta(minutes=10), "c"))
    assert journal.due_verifications(T0 + timedelta(minutes=11)) == []
