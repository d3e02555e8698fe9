"""The notification outbox: dedupe, due order, retries, dead letters, message refs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.agent.store import SqliteStore
from vigil.core import Delivery, IncidentState, NotFoundError

pytestmark = pytest.mark.timeout(30)


def test_enqueue_dedupes_per_channel(store: SqliteStore, values) -> None:
    note = values.notification()
    assert store.enqueue("slack", note, at=values.T0) is True
    assert store.enqueue("slack", note, at=values.T0 + timedelta(minutes=1)) is False
    assert store.enqueue("webhook", note, at=values.T0) is True  # another channel
    assert store.outbox_depth() == 2
    with pytest.raises(ValueError, match="channel must be a non-empty name"):
        store.enqueue(" ", note, at=values.T0)


def test_due_messages_in_delivery_order_with_retries_and_dead_letters(
    store: SqliteStore, values
) -> None:
    t = values.T0
    ids = []
    for i, state in enumerate(
        [IncidentState.DETECTED, IncidentState.ACTING, IncidentState.VERIFIED]
    ):
        store.enqueue("slack", values.notification(state=state), at=t + timedelta(seconds=i))
        ids.append(store.due_messages(t + timedelta(seconds=i))[-1].id)
    assert [m.id for m in store.due_messages(t + timedelta(seconds=5))] == ids
    assert [m.id for m in store.due_messages(t + timedelta(seconds=1))] == ids[:2]
    assert [m.id for m in store.due_messages(t + timedelta(seconds=5), limit=1)] == ids[:1]

    store.mark_failed(ids[0], "HTTP 503", retry_at=t + timedelta(minutes=1))
    assert [m.id for m in store.due_messages(t + timedelta(seconds=5))] == ids[1:]
    [retried, *_] = store.due_messages(t + timedelta(minutes=1))
    assert (retried.id, retried.attempts, retried.last_error) == (ids[0], 1, "HTTP 503")

    store.mark_failed(ids[1], "HTTP 404 channel_not_found", retry_at=None)
    assert ids[1] not in [m.id for m in store.due_messages(t + timedelta(days=1))]
    assert [m.id for m in store.dead_letters()] == [ids[1]]
    assert store.outbox_depth() == 2

    store.mark_delivered(ids[0], Delivery("slack", "C1/1700.01"), at=t + timedelta(minutes=1))
    assert [m.id for m in store.due_messages(t + timedelta(days=1))] == [ids[2]]
    assert store.outbox_depth() == 1
    with pytest.raises(NotFoundError, match="no outbox message 77"):
        store.mark_delivered(77, Delivery("slack"), at=t)
    with pytest.raises(NotFoundError, match="no outbox message 77"):
        store.mark_failed(77, "x", retry_at=None)


def test_message_ref_is_the_first_delivered_message_of_the_incident(
    store: SqliteStore, values
) -> None:
    t = values.T0
    assert store.message_ref("slack", "inc-1") is None
    store.enqueue("slack", values.notification("inc-1", IncidentState.DETECTED), at=t)
    store.enqueue("slack", values.notification("inc-1", IncidentState.ACTING), at=t)
    store.enqueue("slack", values.notification("inc-2", IncidentState.DETECTED), at=t)
    store.enqueue("webhook", values.notification("inc-1", IncidentState.DETECTED), at=t)
    first, second, other, hook = store.due_messages(t)
    assert store.message_ref("slack", "inc-1") is None  # nothing delivered yet
    store.mark_delivered(first.id, Delivery("slack", "ts-1"), at=t + timedelta(seconds=1))
    store.mark_delivered(second.id, Delivery("slack", "ts-1"), at=t + timedelta(seconds=2))
    store.mark_delivered(other.id, Delivery("slack", "ts-2"), at=t + timedelta(seconds=3))
    store.mark_delivered(hook.id, Delivery("webhook", ""), at=t + timedelta(seconds=3))
    assert store.message_ref("slack", "inc-1") == "ts-1"
    assert store.message_ref("slack", "inc-2") == "ts-2"
    assert store.message_ref("webhook", "inc-1") is None  # delivered, but no ref to edit
