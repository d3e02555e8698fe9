"""The journal the playbook tests decide against, and their shared fixtures.

The real SQLite store (``vigil.agent.store.SqliteStore``) on a temp file, as the agent
runs it; the backtest's in-memory journal is checked against it in
``tests/test_playbook_journal_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_findings import T0
from vigil.agent.store import SqliteStore
from vigil.core import ManualClock


@contextmanager
def open_journal(tmp_path: Path) -> Iterator[Any]:
    with SqliteStore.open(tmp_path / "vigil.db") as store:
        yield store


@pytest.fixture(name="journal")
def journal_fixture(tmp_path: Path) -> Iterator[Any]:
    with open_journal(tmp_path) as j:
        yield j


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock(T0)
