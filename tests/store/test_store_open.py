"""Opening the store: migrations, reopening, newer schemas, read-only readers, bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vigil.agent.store import SCHEMA_VERSION, TABLES, SqliteStore, StoreError, StoreReadOnly
from vigil.core import PermanentError, RetryableError

pytestmark = pytest.mark.timeout(30)


def _migrations(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_empty_file_gets_every_migration_and_wal(db_path: Path, clock) -> None:
    assert not db_path.parent.exists()
    with SqliteStore.open(db_path, clock=clock) as store:
        stats = store.stats()
    assert db_path.is_file()  # parent directories were created
    assert [v for v, _ in _migrations(db_path)] == list(range(1, SCHEMA_VERSION + 1))
    assert stats["schema_version"] == SCHEMA_VERSION
    assert set(stats["tables"]) == set(TABLES)
    assert all(n == 0 for n in stats["tables"].values())
    assert stats["size_bytes"] > 0
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        applied_at = conn.execute("SELECT applied_at FROM schema_migrations").fetchone()[0]
    assert "idx_actions_idempotency_key" in indexes
    assert "idx_actions_playbook_target_kind_target_namespace_target_name_acted_at" in indexes
    assert applied_at == "2026-11-23T12:00:00.000000Z"  # from the injected clock


def test_an_existing_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with SqliteStore.open(path) as store:
        assert store.stats()["schema_version"] == SCHEMA_VERSION


def test_reopening_is_idempotent_and_keeps_data(db_path: Path, values) -> None:
    with SqliteStore.open(db_path) as store:
        store.start_tick(values.T0)
    before = _migrations(db_path)
    for _ in range(3):
        with SqliteStore.open(db_path) as store:
            assert len(store.recent_ticks()) == 1
    assert _migrations(db_path) == before


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStore.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from-the-future', 'x')",
            (SCHEMA_VERSION + 1,),
        )
    for readonly in (False, True):
        with pytest.raises(PermanentError, match=rf"schema version {SCHEMA_VERSION + 1}, newer"):
            SqliteStore.open(db_path, readonly=readonly)


def test_a_foreign_sqlite_file_or_garbage_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(StoreError, match="not a vigil store"):
        SqliteStore.open(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        SqliteStore.open(junk)
    with pytest.raises(StoreError, match="is a directory"):
        SqliteStore.open(tmp_path)


def test_readonly_needs_an_existing_store(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "vigil.db"
    with pytest.raises(
        StoreError, match=r"no store at .*nope/vigil.db: run `vigil run` or `vigil demo` first"
    ):
        SqliteStore.open(missing, readonly=True)
    assert not missing.parent.exists()  # a reader creates nothing
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="no store at"):
        SqliteStore.open(empty, readonly=True)


def test_readonly_reads_and_refuses_writes(db_path: Path, values) -> None:
    with SqliteStore.open(db_path) as store:
        store.record_finding(values.finding())
        store.start_tick(values.T0)
    with SqliteStore.open(db_path, readonly=True) as reader:
        assert len(reader.open_findings()) == 1
        assert reader.stats()["readonly"] is True
        with pytest.raises(StoreReadOnly, match="read-only"):
            reader.start_tick(values.T0)
        with pytest.raises(StoreReadOnly):
            reader.prune(values.T0)
        # Even SQL that slips past the check cannot write (query_only + mode=ro).
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("DELETE FROM ticks")


def test_busy_writer_gets_a_retryable_error(db_path: Path, values) -> None:
    SqliteStore.open(db_path).close()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with SqliteStore.open(db_path, busy_timeout=0.05) as store:
            with pytest.raises(RetryableError, match="locked by another writer"):
                store.start_tick(values.T0)
            assert store.recent_ticks() == []  # reads still work in WAL mode
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_bad_arguments(tmp_path: Path) -> None:
    for bad in (":memory:", "", "file:x.db?mode=ro"):
        with pytest.raises(ValueError, match="give the path of a file"):
            SqliteStore.open(bad)
    with pytest.raises(ValueError, match="busy_timeout must be >= 0"):
        SqliteStore.open(tmp_path / "x.db", busy_timeout=-1)
    with SqliteStore.open(tmp_path / "y.db") as store:
        assert repr(store).endswith("y.db read-write>")


def test_readers_of_a_current_store_import_neither_sqlite_utils_nor_pandas(db_path: Path) -> None:
    """sqlite-utils imports pandas (~0.5 s) when installed: CLI readers must not pay it."""
    import subprocess
    import sys

    SqliteStore.open(db_path).close()
    code = (
        "import sys\n"
        "from vigil.agent.store import SqliteStore\n"
        f"with SqliteStore.open({str(db_path)!r}, readonly=True) as s:\n"
        "    s.stats(); s.open_findings(); s.recent_ticks()\n"
        "print(sorted(m for m in ('pandas', 'sqlite_utils') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
