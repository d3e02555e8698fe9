"""Store figures: write throughput, guardrail-query latency on a large journal, and
read latency while another process writes.

Run: ``.venv/bin/python bench/store_bench.py [--rows 50000]``. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.agent.store import SqliteStore
from vigil.core import ActionKind, ActionStatus, Mode, ObjectRef, Plan

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NAMESPACES = [f"ns-{i}" for i in range(20)]
STATUSES = [ActionStatus.SUCCEEDED, ActionStatus.DRY_RUN, ActionStatus.REFUSED]

WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from vigil.agent.store import SqliteStore
from vigil.core import ActionKind, ActionStatus, Mode, ObjectRef, Plan
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
store = SqliteStore.open(sys.argv[1])
ref = ObjectRef.parse("deployment/shop/cart")
for i in range(int(sys.argv[2])):
    at = T0 + timedelta(days=30, seconds=i)
    tick = store.start_tick(at)
    plan = Plan(f"w-{i}", "scale-out", 0, ActionKind.SCALE, ref, {}, Mode.AUTO, at)
    store.journal_plan(plan, ActionStatus.DRY_RUN, at=at)
    store.finish_tick(tick, at, {"all": 0.1}, [])
"""


def _plan(i: int) -> Plan:
    ref = ObjectRef("deployment", NAMESPACES[i % len(NAMESPACES)], f"app-{i % 200}")
    return Plan(
        f"f-{i}", f"pb-{i % 7}", 0, ActionKind.SCALE, ref, {"replicas": i % 9}, Mode.AUTO, T0
    )


def _ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1e3:.2f} ms, p99 {q[98] * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="journal rows to load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp) / "bench.db", args.rows)


def run(path: Path, rows: int) -> None:
    store = SqliteStore.open(path)

    start = time.perf_counter()
    for i in range(rows):
        store.journal_plan(_plan(i), STATUSES[i % 3], at=T0 + timedelta(seconds=i * 50))
    took = time.perf_counter() - start
    print(
        f"journal_plan: {rows} rows in {took:.1f} s = {rows / took:,.0f} "
        "transactions/s (one transaction each, WAL, synchronous=NORMAL)"
    )
    store.prune(T0 - timedelta(days=1))  # runs PRAGMA optimize, as the daily prune does

    end = T0 + timedelta(seconds=rows * 50)
    executed = [ActionStatus.SUCCEEDED]
    queries = {
        "count_actions cluster-wide, last hour": lambda: store.count_actions(
            since=end - timedelta(hours=1), statuses=executed
        ),
        "count_actions per namespace, last hour": lambda: store.count_actions(
            since=end - timedelta(hours=1), statuses=executed, namespace="ns-3"
        ),
        "count_actions per playbook, last day": lambda: store.count_actions(
            since=end - timedelta(days=1), statuses=executed, playbook="pb-2"
        ),
        "last_action_at playbook+target": lambda: store.last_action_at(
            playbook="pb-3", target=_plan(3).target, statuses=executed
        ),
    }
    for name, query in queries.items():
        samples = []
        for _ in range(300):
            t = time.perf_counter()
            query()
            samples.append(time.perf_counter() - t)
        print(f"{name} over {rows} rows: {_ms(samples)}")
    store.close()

    writes = 2000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(writes)])
    reader = SqliteStore.open(path, readonly=True)
    samples = []
    errors = 0
    while writer.poll() is None:
        t = time.perf_counter()
        try:
            reader.stats()
            reader.recent_ticks(limit=5)
            reader.journal_list(statuses=[ActionStatus.PENDING_APPROVAL], limit=20)
        except Exception:  # counted: the figure is "how many reads failed"
            errors += 1
        samples.append(time.perf_counter() - t)
    writer.wait()
    print(
        f"reader while a writer process made {writes} ticks: {len(samples)} status reads, "
        f"{errors} errors, {_ms(samples)} (stats + ticks + pending approvals)"
    )
    reader.close()
    print(f"file size: {path.stat().st_size / 1e6:.1f} MB for {rows + writes} journal rows")


if __name__ == "__main__":
    main()
