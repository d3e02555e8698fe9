"""The outbox delivery worker: order per incident, backoff, rate limit, dead letters, outage."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakereceiver import running_receiver
from outage import run_outage

from vigil.actions.webhook import WebhookNotifier
from vigil.agent.delivery import DeliveryWorker, RateLimiter
from vigil.agent.store import SqliteStore
from vigil.core import IncidentState, ManualClock, Notification, Severity

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def note(incident: str, state: IncidentState) -> Notification:
    return Notification(incident, f"{incident}:{state}", state, Severity.WARNING, incident, "", T0)


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_an_hour_long_outage_loses_nothing_and_keeps_order(tmp_path: Path, kind: str) -> None:
    with running_receiver() as (url, st):
        figures = run_outage(tmp_path / "v.db", url, st, kind=kind, incidents=25, lost_responses=2)
    print(figures)
    assert figures["lost"] == 0 and figures["left_in_outbox"] == 0 and figures["dead_letters"] == 0
    assert figures["in_order"]
    assert figures["received_unique"] == figures["queued"] == 100
    # the two lost responses were resent and dropped by the receiver (on Slack a lost
    # answer to chat.update repeats an edit, which is not a new message)
    assert (
        figures["duplicates_suppressed"] == 2
        if kind == "webhook"
        else 1 <= figures["duplicates_suppressed"] <= 2
    )
    # one attempt per backoff step while down, not one per message
    assert figures["retried"] < 25
    assert figures["delivered"] == figures["queued"]


def test_a_failed_message_holds_back_its_incident_but_not_others(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with running_receiver() as (url, st), SqliteStore.open(tmp_path / "v.db") as store:
        hook = WebhookNotifier(url + "/hook", timeout=0.5, clock=clock)
        worker = DeliveryWorker(store, {"webhook": hook}, clock, rng=random.Random(1))
        for n in (
            note("a", IncidentState.DETECTED),
            note("a", IncidentState.ACTING),
            note("b", IncidentState.DETECTED),
        ):
            store.enqueue("webhook", n, at=T0)
        st.faults.append("429:30")
        stats = worker.drain()
        assert (stats.attempts, stats.retried, stats.delivered) == (1, 1, 0)
        assert worker.paused_until("webhook") == T0 + timedelta(seconds=30)
        clock.advance(10)
        assert worker.drain().attempts == 0  # channel paused: the receiver asked for 30 s
        clock.advance(20)
        stats = worker.drain()
        assert stats.delivered == 3
        assert [r.dedupe_key for r in st.accepted] == ["a:detected", "a:acting", "b:detected"]


def test_permanent_refusal_dead_letters_and_the_next_message_goes(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with running_receiver() as (url, st), SqliteStore.open(tmp_path / "v.db") as store:
        hook = WebhookNotifier(url + "/hook", timeout=0.5, clock=clock)
        worker = DeliveryWorker(store, {"webhook": hook}, clock, max_attempts=3)
        store.enqueue("webhook", note("a", IncidentState.DETECTED), at=T0)
        store.enqueue("webhook", note("a", IncidentState.RESOLVED), at=T0)
        store.enqueue("gone", note("c", IncidentState.DETECTED), at=T0)
        st.faults.append("500")
        worker.drain()
        st.faults.extend(["500", "500"])
        for _ in range(2):
            clock.advance(700)
            worker.drain()
        dead = {d.notification.dedupe_key: d.last_error for d in store.dead_letters()}
        assert "gave up after 3 attempts" in dead["a:detected"]
        assert "channel gone is not configured" in dead["c:detected"]
        clock.advance(1)
        worker.drain()
        assert [r.dedupe_key for r in st.accepted] == ["a:resolved"]
        assert store.outbox_depth() == 0


def test_rate_limit_defers_without_losing(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with running_receiver() as (url, st), SqliteStore.open(tmp_path / "v.db") as store:
        hook = WebhookNotifier(url + "/hook", timeout=0.5, clock=clock)
        worker = DeliveryWorker(store, {"webhook": hook}, clock, rate_limit_per_minute=4)
        for i in range(10):
            store.enqueue("webhook", note(f"i{i}", IncidentState.DETECTED), at=T0)
        assert worker.drain().delivered == 4
        clock.advance(30)
        assert worker.drain().delivered == 2
        clock.advance(60)
        assert worker.drain().delivered == 4
        assert len(st.accepted) == 10 and st.duplicates == 0


def test_backoff_grows_is_capped_and_honours_the_receivers_delay() -> None:
    clock = ManualClock(T0)
    worker = DeliveryWorker(None, {}, clock, base_delay=5, max_delay=600, rng=random.Random(3))  # type: ignore[arg-type]
    delays = [worker.backoff(n, 0) for n in range(12)]
    assert all(0.9 <= d / min(600, 5 * 2**n) <= 1.1 for n, d in enumerate(delays))
    assert max(delays) <= 660
    assert worker.backoff(0, 120) == 120


def test_rate_limiter_refills_with_time() -> None:
    limiter = RateLimiter(2)
    assert [limiter.take("s", T0) for _ in range(3)] == [True, True, False]
    assert limiter.take("s", T0 + timedelta(seconds=30))
    assert limiter.take("other", T0)
