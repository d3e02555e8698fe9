"""The daemon writes while CLI readers read, in real separate processes, without
"database is locked"; racing writers journal each idempotency key exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from vigil.agent.store import SqliteStore

pytestmark = pytest.mark.timeout(90)

WORKERS = Path(__file__).with_name("workers.py")


def _start(role: str, path: Path, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), role, str(path), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_together(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    """Wait until every worker is ready, release them at once, collect their results."""
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", (line, proc.stderr.read() if proc.stderr else "")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=80)
            assert proc.returncode == 0, out + err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_writer_and_readers_run_concurrently(db_path: Path) -> None:
    n = 100
    SqliteStore.open(db_path).close()  # the daemon created the store before readers came
    procs = [_start("writer", db_path, n)] + [_start("reader", db_path, n) for _ in range(3)]
    writer, *readers = _run_together(procs)
    assert writer == {"written": n}
    for result in readers:
        final = result["final"]
        assert isinstance(final, dict)
        assert final["ticks"] == n and final["actions"] == n and final["notifications"] == n
        seen = result["seen"]
        assert isinstance(seen, list) and seen == sorted(seen)
    # The readers read while the writer wrote: between them they saw it half-way.
    assert any(0 < count < n for r in readers for count in r["seen"])  # type: ignore[attr-defined]
    with SqliteStore.open(db_path, readonly=True) as store:
        assert store.stats()["tables"]["findings"] == n


def test_racing_writers_journal_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"  # does not exist yet: both racers also migrate it
    n = 60
    first, second = _run_together([_start("racer", path, n), _start("racer", path, n)])
    won = sorted(first["inserted"] + second["inserted"])  # type: ignore[operator]
    assert won == list(range(n))  # every key once, none twice
    with SqliteStore.open(path, readonly=True) as store:
        assert store.stats()["tables"]["actions"] == n
        assert store.stats()["schema_version"] >= 1
    import sqlite3

    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions))


def test_a_killed_writer_loses_only_its_open_transaction(db_path: Path, values) -> None:
    proc = _start("crasher", db_path, 5)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        with SqliteStore.open(db_path, readonly=True) as reader:
            assert len(reader.recent_ticks()) == 5  # readers go on while it holds the lock
    finally:
        proc.kill()  # SIGKILL: no cleanup, as an OOM kill or a node loss
        proc.communicate(timeout=30)
    with SqliteStore.open(db_path, busy_timeout=5) as store:
        ticks = store.recent_ticks(limit=10)
        assert len(ticks) == 5  # committed ticks kept, the open transaction gone
        store.start_tick(values.T0 + timedelta(hours=1))  # and the lock is free again
        assert len(store.recent_ticks(limit=10)) == 6
