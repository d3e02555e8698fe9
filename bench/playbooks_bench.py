"""Playbook figures: guardrail decision latency on the real SQLite store, and backtest
throughput over a day of findings.

Run: ``.venv/bin/python bench/playbooks_bench.py [--plans 2000] [--findings 20000]``.
Prints one line per figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.playbook_findings import anomaly
from tests.playbook_twin import TwinCluster, full_twin
from vigil.agent.store import SqliteStore
from vigil.core import ActionKind, Mode, Plan, Severity
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    backtest,
    builtin_playbooks,
)

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
NAMESPACES = [f"ns-{i}" for i in range(10)]


def decisions(n: int) -> None:
    books = builtin_playbooks()
    cluster = TwinCluster(full_twin(T0))  # 12 workloads in 4 namespaces
    refs = [w.ref for w in cluster.list_workloads()]
    settings = GuardrailSettings(
        dry_run=False,
        max_actions_per_hour=10_000,
        max_actions_per_namespace_per_hour=50,
        max_per_playbook_per_hour=10_000,
        cooldown=60,
    )
    with tempfile.TemporaryDirectory() as tmp, SqliteStore.open(Path(tmp) / "b.db") as store:
        engine = PlaybookEngine(Guardrails(store, settings), cluster=cluster, playbooks=books)
        times = []
        acted = 0
        for i in range(n):
            now = T0 + timedelta(seconds=20 * i)
            target = refs[i % len(refs)]
            plan = Plan(
                f"f-{i}",
                "saturation-scale-out",
                0,
                ActionKind.SCALE,
                target,
                {"by": 1, "max_replicas": 10**6},
                Mode.AUTO,
                now,
            )
            began = time.perf_counter()
            out = engine.submit(plan, now=now)
            times.append(time.perf_counter() - began)
            acted += bool(out.entry and out.entry.status == "succeeded")
        times.sort()
        print(
            f"submit (decide + act + journal) on SQLite, {n} plans: "
            f"median {statistics.median(times) * 1000:.2f} ms, "
            f"p99 {times[int(len(times) * 0.99)] * 1000:.2f} ms ({acted} acted, the rest refused)"
        )


def backtest_speed(n: int) -> None:
    findings = [
        anomaly(
            "container_cpu_usage_seconds:rate5m",
            {"namespace": NAMESPACES[i % 10], "deployment": f"app-{i % 7}"},
            severity=Severity.CRITICAL if i % 3 else Severity.WARNING,
            at=T0 + timedelta(seconds=86400 * i / n),
        )
        for i in range(n)
    ]
    began = time.perf_counter()
    report = backtest(findings, builtin_playbooks(), start=T0, end=T0 + timedelta(days=1))
    took = time.perf_counter() - began
    fired = sum(s.fired for s in report.playbooks)
    print(
        f"backtest of {n} findings over a day: {took:.2f} s ({n / took:.0f} findings/s), "
        f"{fired} firings"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--findings", type=int, default=20000)
    args = parser.parse_args()
    decisions(args.plans)
    backtest_speed(args.findings)


if __name__ == "__main__":
    main()
