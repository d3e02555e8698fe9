"""The tick loop: stages recorded in a real SQLite store, failures recorded, loop goes on;
the fetch stage is incremental; ``vigil run`` stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vigil.agent.loop import Loop, TickContext
from vigil.agent.scheduler import scheduler_job_defaults
from vigil.agent.series_cache import SeriesCache
from vigil.agent.stages import FetchStage, target_from_labels
from vigil.agent.store import SqliteStore, StoreError
from vigil.core import (
    ManualClock,
    ObjectRef,
    PermanentError,
    QueryError,
    RetryableError,
    Sample,
    Series,
    SourceUnavailable,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    def __init__(self, name: str, exc: Exception | None = None) -> None:
        self.name = name
        self.exc = exc
        self.calls = 0

    def run(self, ctx: TickContext) -> None:
        self.calls += 1
        if self.exc is not None:
            raise self.exc


class Crash(Recorder):
    def run(self, ctx: TickContext) -> None:
        self.calls += 1
        raise ZeroDivisionError("boom")


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    with SqliteStore.open(tmp_path / "vigil.db") as s:
        yield s


def test_tick_records_every_stage_and_survives_failures(store: SqliteStore) -> None:
    clock = ManualClock(T0)
    stages = [
        Recorder("fetch", SourceUnavailable("prometheus down")),
        Recorder("detect", QueryError("bad query", query="up{")),
        Crash("playbooks"),
        Recorder("notify"),
    ]
    outcome = Loop(store, clock, stages).tick()
    assert [s.calls for s in stages] == [1, 1, 1, 1]
    assert set(outcome.durations) == {"fetch", "detect", "playbooks", "notify"}
    assert outcome.errors == (
        "fetch: prometheus down (retrying next tick)",
        "detect: bad query",
        "playbooks: unexpected ZeroDivisionError: boom",
    )
    (row,) = store.recent_ticks(1)
    assert row.id == outcome.tick_id
    assert row.started_at == T0
    assert list(row.errors) == list(outcome.errors)
    assert set(row.durations) == set(outcome.durations)


def test_clean_tick_has_no_errors(store: SqliteStore) -> None:
    clock = ManualClock(T0)
    loop = Loop(store, clock, [Recorder("a"), Recorder("b")])
    first = loop.tick()
    clock.advance(60)
    second = loop.tick()
    assert first.ok and second.ok
    ticks = store.recent_ticks(5)
    assert [t.started_at for t in ticks] == [T0 + timedelta(minutes=1), T0]


def test_stage_names_must_be_unique(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="unique"):
        Loop(store, ManualClock(T0), [Recorder("a"), Recorder("a")])


class RampSource:
    """A MetricSource at the seam: one series whose value is its minute index."""

    def __init__(self) -> None:
        self.requests: list[tuple[datetime, datetime]] = []
        self.fail: Exception | None = None

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        raise NotImplementedError

    def series(self, selector: str, start: datetime, end: datetime) -> list[dict[str, str]]:
        return []

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        return []

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        self.requests.append((start, end))
        if self.fail is not None:
            raise self.fail
        s = step.total_seconds()
        first = np.ceil(start.timestamp() / s) * s
        ts = first + s * np.arange(int((end.timestamp() - first) // s) + 1)
        return [Series("load", {"namespace": "shop", "service": "cart"}, ts, ts / 60.0)]


def test_fetch_is_incremental_and_keeps_history_through_outages() -> None:
    source = RampSource()
    stage = FetchStage(source, ["load"], lookback=3600, step=60, overlap=120)
    clock = ManualClock(T0)
    ctx = TickContext(1, clock.now())
    stage.run(ctx)
    (first,) = ctx.series
    assert len(first) == 61
    assert source.requests[0][0] == T0 - timedelta(hours=1)

    clock.advance(300)
    ctx = TickContext(2, clock.now())
    stage.run(ctx)
    (second,) = ctx.series
    assert source.requests[1][0] == T0 - timedelta(seconds=120), "asks only for new points"
    assert len(second) == 61, "trimmed to the look-back window"
    assert second.values[-1] == clock.now().timestamp() / 60.0

    source.fail = SourceUnavailable("down")
    clock.advance(60)
    ctx = TickContext(3, clock.now())
    with pytest.raises(RetryableError, match="1 of 1 queries failed: down"):
        stage.run(ctx)
    assert len(ctx.series) == 1, "cached history still reaches the detectors"

    source.fail = QueryError("bad", query="load")
    with pytest.raises(PermanentError):
        stage.run(TickContext(4, clock.now()))


def test_series_cache_prefers_fresh_points() -> None:
    cache = SeriesCache(lookback=600)
    old = Series("m", {}, [0.0, 60.0, 120.0], [1.0, 1.0, 1.0])
    cache.merge([old], now=120.0)
    merged = cache.merge([Series("m", {}, [120.0, 180.0], [5.0, 6.0])], now=180.0)
    (s,) = merged
    assert s.timestamps.tolist() == [0.0, 60.0, 120.0, 180.0]
    assert s.values.tolist() == [1.0, 1.0, 5.0, 6.0]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"namespace": "shop", "service": "cart"}, "deployment/shop/cart"),
        ({"namespace": "shop", "deployment": "cart", "pod": "x"}, "deployment/shop/cart"),
        ({"namespace": "shop", "pod": "cart-1"}, "pod/shop/cart-1"),
        ({"service": "cart"}, None),
        ({"namespace": "Bad NS", "service": "cart"}, None),
    ],
)
def test_target_from_labels(labels: dict[str, str], expected: str | None) -> None:
    ref = target_from_labels(labels)
    assert (str(ref) if ref else None) == expected
    if ref:
        assert isinstance(ref, ObjectRef)


def test_scheduler_never_overlaps_and_coalesces() -> None:
    defaults = scheduler_job_defaults(60)
    assert defaults["max_instances"] == 1
    assert defaults["coalesce"] is True


@pytest.mark.timeout(60)
def test_vigil_run_records_failing_ticks_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "vigil.db"
    env = {
        **os.environ,
        "VIGIL_STORE__PATH": str(db),
        "VIGIL_PROMETHEUS__URL": "http://127.0.0.1:9",  # nobody listens on the discard port
        "VIGIL_PROMETHEUS__RETRIES": "0",
        "VIGIL_PROMETHEUS__TIMEOUT": "1",
        "VIGIL_AGENT__INTERVAL": "0.3",
        "VIGIL_SERVER__HOST": "127.0.0.1",
        "VIGIL_SERVER__PORT": str(free_port()),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "vigil.agent.cli", "--log-format", "json", "run", "--no-kubernetes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 40
            ticks = []
            while time.monotonic() < deadline and proc.poll() is None:
                if db.exists():
                    try:
                        with SqliteStore.open(db, readonly=True) as reader:
                            ticks = [t for t in reader.recent_ticks(10) if t.ended_at]
                    except StoreError:
                        pass  # the daemon is still creating the schema
                if len(ticks) >= 2:
                    break
                time.sleep(0.2)  # waiting on a real process, not on simulated time
            assert len(ticks) >= 2, "the daemon recorded no ticks"
            assert all(any(e.startswith("fetch:") for e in t.errors) for t in ticks)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == 0, err
            assert "received SIGTERM" in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
