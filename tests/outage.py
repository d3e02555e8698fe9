"""The outage scenario shared by tests/test_delivery.py and bench/notify_outage.py.

Incidents move through their states while the receiver answers 503 for an hour
(simulated on a ``ManualClock``; the HTTP is real), then the receiver recovers, with a
few responses lost after the receiver processed them (so vigil retries messages that
did arrive). Returns the figures: queued, attempts, retried, delivered, duplicates the
receiver suppressed, lost, and whether every incident arrived in order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakereceiver import ReceiverState

from vigil.actions.slack import SlackNotifier
from vigil.actions.webhook import WebhookNotifier
from vigil.agent.delivery import DeliveryStats, DeliveryWorker
from vigil.agent.store import SqliteStore
from vigil.core import IncidentState, ManualClock, Notification, Notifier, Severity

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STATES = (
    IncidentState.DETECTED,
    IncidentState.ACTING,
    IncidentState.VERIFIED,
    IncidentState.RESOLVED,
)


def _note(incident: int, state: IncidentState, now: datetime) -> Notification:
    key = f"f-{incident:04d}"
    return Notification(
        incident_key=key,
        dedupe_key=f"{key}:{state}",
        state=state,
        severity=Severity.WARNING,
        title=f"incident {incident}",
        text=f"state {state}",
        created_at=now,
        namespace="shop",
    )


def run_outage(
    db: Path,
    base_url: str,
    receiver: ReceiverState,
    *,
    kind: str = "webhook",
    incidents: int = 30,
    outage_minutes: int = 60,
    lost_responses: int = 2,
    rate_limit_per_minute: int = 60,
) -> dict[str, Any]:
    clock = ManualClock(T0)
    store = SqliteStore.open(db)
    notifier: Notifier
    if kind == "webhook":
        notifier = WebhookNotifier(base_url + "/hook", secret="s" * 20, timeout=0.5, clock=clock)
    else:
        notifier = SlackNotifier(
            receiver.token, "#ops", base_url=base_url + "/api/", timeout=0.5, clock=clock
        )
    worker = DeliveryWorker(
        store,
        {notifier.name: notifier},
        clock,
        rate_limit_per_minute=rate_limit_per_minute,
        rng=random.Random(7),
    )
    totals = DeliveryStats()
    queued: dict[str, list[str]] = defaultdict(list)
    rng = random.Random(11)
    # Each incident starts at a random minute of the outage and moves one state every
    # few minutes, all before the receiver is back: the whole history is the backlog.
    plan: list[tuple[int, int, IncidentState]] = []
    span = max(1, outage_minutes - 3 * 14)
    for i in range(incidents):
        minute = rng.randrange(span)
        for state in STATES:
            plan.append((minute, i, state))
            minute += rng.randrange(1, 15)
    plan.sort(key=lambda p: (p[0], p[1], STATES.index(p[2])))
    receiver.down = True
    step = 0
    end = max(outage_minutes, plan[-1][0]) + 30
    recovered = False
    drained_at = None
    backlog_at_recovery = 0
    for minute in range(end):
        now = clock.now()
        while step < len(plan) and plan[step][0] <= minute:
            _, i, state = plan[step]
            n = _note(i, state, now)
            if store.enqueue(notifier.name, n, at=now):
                queued[n.incident_key].append(n.dedupe_key)
            step += 1
        if minute >= outage_minutes and not recovered:
            recovered = True
            backlog_at_recovery = store.outbox_depth()
            receiver.down = False
            # a few answers lost among the first deliveries after recovery
            for _ in range(lost_responses):
                receiver.faults.extend(["", "", "", "late"])
        # the daemon's delivery thread drains every second; 5 s steps are close enough
        for _ in range(12):
            totals += worker.drain()
            if recovered and drained_at is None and step == len(plan) and store.outbox_depth() == 0:
                drained_at = clock.now()
            clock.advance(5)
    drained_at = drained_at or clock.now()
    depth = store.outbox_depth()
    dead = len(store.dead_letters())
    store.close()
    kinds = {"webhook": ("webhook",), "slack": ("post", "reply")}[kind]
    arrived: dict[str, list[str]] = defaultdict(list)
    for r in receiver.accepted:
        if r.kind in kinds:
            arrived[r.incident_key].append(r.dedupe_key)
    sent = sum(len(v) for v in queued.values())
    unique = sum(len(v) for v in arrived.values())
    return {
        "channel": kind,
        "incidents": incidents,
        "queued": sent,
        "attempts": totals.attempts,
        "retried": totals.retried,
        "delivered": totals.delivered,
        "duplicates_suppressed": receiver.duplicates,
        "received_unique": unique,
        "lost": sent - unique,
        "dead_letters": dead,
        "left_in_outbox": depth,
        "in_order": dict(arrived) == dict(queued),
        "backlog_at_recovery": backlog_at_recovery,
        "backlog_cleared_s_after_recovery": (
            drained_at - (T0 + timedelta(minutes=outage_minutes))
        ).total_seconds(),
        "http_requests": receiver.requests,
    }
