"""Worker processes for the store concurrency tests (run as a script, never collected).

``python workers.py ROLE PATH N``: ROLE ``writer`` plays the daemon (N loop
iterations of ticks, findings, journal rows and outbox messages), ``reader`` plays a
CLI reader on a read-only store until it sees N finished ticks, ``racer`` journals N
plans whose keys another racer journals too, ``crasher`` commits N ticks and is killed
inside an open write transaction. Each prints ``ready`` once its store is
open (racers open theirs after ``go``, to race the migrations as well), waits for a
``go`` line on stdin, then prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionKind,
    ActionStatus,
    Finding,
    FindingKind,
    IncidentState,
    Mode,
    Notification,
    ObjectRef,
    Plan,
    Severity,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REF = ObjectRef.parse("deployment/shop/cart")


def _plan(i: int) -> Plan:
    return Plan(f"f-{i}", "scale-out", 0, ActionKind.SCALE, REF, {"replicas": 3}, Mode.AUTO, T0)


def _wait_for_go() -> None:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")


def writer(path: Path, n: int) -> dict[str, object]:
    store = SqliteStore.open(path)
    _wait_for_go()
    for i in range(n):
        now = T0 + timedelta(minutes=i)
        tick = store.start_tick(now)
        finding = Finding(FindingKind.ALERT, f"alert-{i}", f"alert {i}", Severity.WARNING, now, now)
        store.record_finding(finding)
        entry = store.journal_plan(_plan(i), ActionStatus.RUNNING, at=now)
        assert entry is not None
        store.journal_transition(
            entry.id, ActionStatus.SUCCEEDED, at=now, expect=[ActionStatus.RUNNING]
        )
        note = Notification(
            finding.id,
            f"{finding.id}:0",
            IncidentState.DETECTED,
            Severity.WARNING,
            finding.title,
            "text",
            now,
        )
        store.enqueue("slack", note, at=now)
        store.finish_tick(tick, now + timedelta(seconds=1), {"all": 1.0}, [])
    store.close()
    return {"written": n}


def reader(path: Path, n: int) -> dict[str, object]:
    store = SqliteStore.open(path, readonly=True)
    _wait_for_go()
    last: dict[str, int] = {}
    seen: set[int] = set()
    reads = 0
    deadline = time.monotonic() + 60
    done = False
    while time.monotonic() < deadline:
        counts = dict(store.stats()["tables"])
        for table, count in counts.items():
            if count < last.get(table, 0):
                raise AssertionError(f"{table} shrank from {last[table]} to {count}")
        last = counts
        seen.add(counts["ticks"])
        reads += 1
        if done:
            break  # this snapshot was taken after the writer's last write
        ticks = store.recent_ticks(limit=1)
        store.journal_list(limit=5)
        store.open_findings(limit=5)
        store.due_messages(T0 + timedelta(days=1), limit=5)
        # finish_tick is the writer's last write of an iteration.
        done = len(ticks) == 1 and ticks[0].id == n and ticks[0].ended_at is not None
    store.close()
    return {"reads": reads, "seen": sorted(seen), "final": last}


def racer(path: Path, n: int) -> dict[str, object]:
    _wait_for_go()
    store = SqliteStore.open(path)
    inserted = [i for i in range(n) if store.journal_plan(_plan(i), ActionStatus.DRY_RUN, at=T0)]
    store.close()
    return {"inserted": inserted}


def crasher(path: Path, n: int) -> dict[str, object]:
    """Commit ``n`` ticks, then hang inside an uncommitted write until killed."""
    store = SqliteStore.open(path)
    for i in range(n):
        store.start_tick(T0 + timedelta(minutes=i))
    with store._write() as conn:
        conn.execute("INSERT INTO ticks (started_at) VALUES ('2099-01-01T00:00:00.000000Z')")
        _wait_for_go()  # the test kills us here, holding the write lock
    return {}


def main() -> None:
    role, path, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    try:
        result = {"writer": writer, "reader": reader, "racer": racer, "crasher": crasher}[role](
            path, n
        )
    except BaseException:
        print(json.dumps({"error": traceback.format_exc()}), flush=True)
        raise SystemExit(1) from None
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
