"""Retention: ``prune`` deletes finished history by age and nothing still in flight."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.agent.store import SqliteStore
from vigil.core import ActionStatus, Delivery, FeedbackLabel, Verification

pytestmark = pytest.mark.timeout(30)

S = ActionStatus
DAY = timedelta(days=1)


def test_prune_by_age_with_protections(store: SqliteStore, values) -> None:
    old = values.T0
    new = values.T0 + 40 * DAY
    cutoff = values.T0 + 30 * DAY

    # ticks: one old, one new, one old that never finished (a crash)
    store.finish_tick(store.start_tick(old), old + timedelta(seconds=1), {}, [])
    store.start_tick(old)
    store.finish_tick(store.start_tick(new), new, {}, [])

    # findings: old resolved (goes), old open (stays), old resolved but an approval
    # still waits on it (stays), new resolved (stays)
    gone = values.finding(old, service="gone")
    still_open = values.finding(old, service="open")
    awaited = values.finding(old, service="awaited")
    recent = values.finding(new, service="recent")
    for f in (gone, still_open, awaited, recent):
        store.record_finding(f)
    for f in (gone, awaited):
        store.resolve_finding(f.id, old + DAY)
    store.resolve_finding(recent.id, new)
    store.record_feedback(gone.id, FeedbackLabel.TRUE_POSITIVE, at=old)

    store.record_forecast(values.forecast(old))
    store.record_forecast(values.forecast(new))
    # shadow-mode incidents: by when a tick last reported them
    store.record_shadow("challenger", "cfg", [(gone.anomaly, None)], at=old)
    store.record_shadow("champion", "cfg", [(recent.anomaly, recent.id)], at=new)

    # actions: final old rows go (with their verifications); pending approval,
    # approved and running rows stay however old; recent final rows stay.
    done = store.journal_plan(values.plan(gone.id), S.RUNNING, at=old)
    assert done is not None
    store.journal_transition(done.id, S.SUCCEEDED, at=old, verify_at=old + timedelta(minutes=5))
    store.record_verification(Verification(done.id, True, old + timedelta(minutes=5), "ok"))
    dry = store.journal_plan(values.plan("f-dry"), S.DRY_RUN, at=old)
    waiting = store.journal_plan(values.plan(awaited.id), S.PENDING_APPROVAL, at=old)
    approved = store.journal_plan(values.plan("f-approved"), S.APPROVED, at=old)
    running = store.journal_plan(values.plan("f-running"), S.RUNNING, at=old)
    fresh = store.journal_plan(values.plan("f-fresh"), S.SUCCEEDED, at=new)
    assert None not in (dry, waiting, approved, running, fresh)
    store.record_verification(Verification(running.id, False, old, "x"))

    # outbox: old delivered goes, old dead letter goes, old undelivered stays
    for name in ["delivered", "dead", "pending", "recent"]:
        store.enqueue("slack", values.notification(name), at=new if name == "recent" else old)
    delivered, dead, pending, recent_msg = store.due_messages(new)
    store.mark_delivered(delivered.id, Delivery("slack", "ts"), at=old)
    store.mark_failed(dead.id, "HTTP 404", retry_at=None)
    store.mark_delivered(recent_msg.id, Delivery("slack", "ts2"), at=new)

    counts = store.prune(cutoff)
    assert dict(counts) == {
        "ticks": 2,
        "findings": 1,
        "forecasts": 1,
        "verifications": 1,
        "actions": 2,
        "notifications": 2,
        "shadow_anomalies": 1,
    }
    assert {f.id for f in store.open_findings()} == {still_open.id}
    assert {f.id for f in store.findings_between(old, new)} == {
        still_open.id,
        awaited.id,
        recent.id,
    }
    left = {e.id: e.status for e in store.journal_list()}
    assert left == {
        waiting.id: S.PENDING_APPROVAL,
        approved.id: S.APPROVED,
        running.id: S.RUNNING,
        fresh.id: S.SUCCEEDED,
    }
    assert store.verifications_for(running.id) != []  # a kept action keeps its checks
    assert [m.id for m in store.due_messages(new)] == [pending.id]
    assert store.message_ref("slack", "recent") == "ts2"
    assert store.feedback_for(gone.anomaly.series) == [FeedbackLabel.TRUE_POSITIVE]
    assert len(store.recent_ticks()) == 1
    assert store.latest_forecast(values.forecast(new).series) is not None

    # Pruning again finds nothing more to delete.
    assert sum(store.prune(cutoff).values()) == 0
    stats = store.stats()
    assert stats["tables"]["actions"] == 4 and stats["pending_approvals"] == 1
    assert stats["outbox_depth"] == 1 and stats["open_findings"] == 1
