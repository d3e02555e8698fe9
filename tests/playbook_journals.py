"""The journal the playbook tests decide against, and their shared fixtures.

Until the SQLite store (``vigil.agent.store.SqliteStore``) is on main, this is the
in-memory ``MemoryJournal`` the backtest uses; then the real store on a temp file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_findings import T0
from vigil.core import ManualClock
from vigil.playbooks import MemoryJournal


@contextmanager
def open_journal(tmp_path: Path) -> Iterator[Any]:
    yield MemoryJournal()


@pytest.fixture(name="journal")
def journal_fixture(tmp_path: Path) -> Iterator[Any]:
    with open_journal(tmp_path) as j:
        yield j


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock(T0)
