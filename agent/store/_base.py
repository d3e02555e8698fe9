"""The store's connection: opening a file, pragmas, migrations, transactions, errors (private).

``StoreBase`` is the base of the ``SqliteStore`` mixins. Concurrency model (see
docs/store.md): WAL journal, so readers never block the writer nor each other; every
write is one ``BEGIN IMMEDIATE`` transaction, so a writer takes the lock up front and
waits up to ``busy_timeout`` for it instead of failing on a lock upgrade; one
connection per ``SqliteStore``, serialised by a lock so the daemon's threads can share it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from vigil.agent.store._errors import StoreBusy, StoreError, StoreReadOnly
from vigil.agent.store._migrations import SCHEMA_VERSION, apply_migrations, schema_version
from vigil.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["StoreBase"]

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14

Params = Sequence[Any] | Mapping[str, Any]


class StoreBase:
    """One connection to one store file, with the transaction and error discipline."""

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout}")
        if str(path) in {"", ":memory:"} or str(path).startswith("file:"):
            raise ValueError(
                f"store path {str(path)!r}: give the path of a file (WAL mode needs one), "
                "e.g. /var/lib/vigil/vigil.db or a temporary file in tests"
            )
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self.busy_timeout = float(busy_timeout)
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._conn = self._connect()
        try:
            with self._guard():
                self._configure()
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        readonly: bool = False,
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> Self:
        """Open (and for writers create and migrate) the store at ``path``."""
        return cls(path, readonly=readonly, busy_timeout=busy_timeout, clock=clock)

    # ------------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the driver opens no implicit transactions; every
        # transaction here is explicit (BEGIN IMMEDIATE for writes).
        options: dict[str, Any] = {
            "timeout": self.busy_timeout,
            "isolation_level": None,
            "check_same_thread": False,
        }
        if self.readonly:
            if not self.path.is_file():
                raise StoreError(f"no store at {self.path}: run `vigil run` or `vigil demo` first")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            try:
                return sqlite3.connect(uri, uri=True, **options)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open store {self.path} read-only: {exc}") from exc
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a file name")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(str(self.path), **options)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    def _configure(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        if self.readonly:
            conn.execute("PRAGMA query_only = ON")
            # Touch the schema now, so a file that is not a database fails at open.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return
        mode = self._enable_wal()
        if str(mode).lower() != "wal":
            raise StoreError(
                f"store {self.path}: cannot switch to WAL journal mode (got {mode}); "
                "WAL needs a local file system with shared memory (not NFS)"
            )
        # NORMAL in WAL mode: a power cut may lose the last commits, never corrupts.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _enable_wal(self) -> str:
        """Switch the file to WAL (a property of the file: it persists, readers need no
        pragma). Two processes creating one new file may both try: the switch needs an
        exclusive lock and SQLite answers BUSY at once instead of waiting (it would be a
        deadlock), so retry briefly until the other one has done it or the timeout ends."""
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.005
        while True:
            try:
                mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() == "wal":
                    return "wal"
                return str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code not in (_SQLITE_BUSY, _SQLITE_LOCKED) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _migrate(self) -> None:
        current = schema_version(self._conn)
        if current == SCHEMA_VERSION:
            return
        if self.readonly:
            if current == 0:
                raise StoreError(
                    f"no store at {self.path} (the file holds no vigil schema): "
                    "run `vigil run` or `vigil demo` first"
                )
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {current}, newer than the "
                    f"{SCHEMA_VERSION} this vigil knows: upgrade vigil"
                )
            raise StoreError(
                f"store {self.path} has schema version {current}, this vigil needs "
                f"{SCHEMA_VERSION}: start the daemon (`vigil run`) once to migrate it"
            )
        with self._transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            apply_migrations(self._conn, path=str(self.path), now=self._clock.now())

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        return f"<{type(self).__name__} {self.path} {mode}>"

    # ------------------------------------------------------------------ transactions

    def _wrap(self, exc: sqlite3.Error) -> Exception:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return StoreBusy(
                f"store {self.path}: still locked by another writer after "
                f"{self.busy_timeout:g} s ({exc}); try again",
                delay=max(1.0, self.busy_timeout),
            )
        if code == _SQLITE_READONLY:
            return StoreReadOnly(f"store {self.path} cannot be written: {exc}")
        if code == _SQLITE_CANTOPEN:
            return StoreError(f"cannot open store {self.path}: {exc}")
        return StoreError(f"store {self.path}: {exc}")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn sqlite3 errors into the store's ``StoreBusy``/``StoreError``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT (disk full, I/O error) leaves the transaction open; close
            # it, or every later write would fail on "transaction within a transaction".
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the file's write lock from its first statement."""
        if self.readonly:
            raise StoreReadOnly(
                f"store {self.path} is open read-only (CLI readers); only the daemon writes"
            )
        with self._lock, self._guard(), self._transaction() as db:
            yield db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every statement in it sees the same snapshot."""
        with self._lock, self._guard():
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows as dicts (also for ``INSERT/UPDATE … RETURNING``); call inside a transaction."""
        cur = self._conn.execute(sql, params)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def _scalar(self, sql: str, params: Params = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]
