"""Detect, prune and status: one finding per ongoing anomaly, resolution after quiet,
daily pruning, and `vigil status` reading a store the daemon wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.agent.cli import app
from vigil.agent.loop import TickContext
from vigil.agent.stages import DetectStage, PruneStage
from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionKind,
    ActionStatus,
    Anomaly,
    FindingKind,
    Mode,
    ObjectRef,
    Plan,
    Series,
    Severity,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LABELS = {"namespace": "shop", "service": "cart"}


@dataclass
class Report:
    anomalies: list[Anomaly]
    warming_up: dict[str, tuple[int, int]] = field(default_factory=dict)


class ScriptedEngine:
    """An engine at the seam: flags the series at the ticks it is told to."""

    def __init__(self, flagged_at: set[datetime]) -> None:
        self.flagged_at = flagged_at

    def observe(self, series: Sequence[Series], now: datetime, *, refit: bool = True) -> Report:
        if now not in self.flagged_at:
            return Report([])
        anomaly = Anomaly(
            metric="http_errors", labels=LABELS, start=now - timedelta(minutes=1), end=now,
            score=0.9, severity=Severity.CRITICAL, value=0.2, expected_low=0.0,
            expected_high=0.01, detector="scripted", detector_version="1", unit="ratio",
        )  # fmt: skip
        return Report([anomaly])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "vigil.db") as s:
        yield s


def series() -> list[Series]:
    return [Series("http_errors", LABELS, [T0.timestamp()], [0.2])]


def test_an_ongoing_anomaly_is_one_finding_resolved_after_quiet(store: SqliteStore) -> None:
    ticks = [T0 + timedelta(minutes=5 * i) for i in range(10)]
    engine = ScriptedEngine(set(ticks[0:4]) | {ticks[9]})
    stage = DetectStage(engine, store, min_severity=Severity.WARNING, resolve_after=900)
    for i, now in enumerate(ticks):
        stage.run(TickContext(i, now, series=series()))
    findings = store.findings_between(T0 - timedelta(hours=1), T0 + timedelta(hours=2))
    assert len(findings) == 2, "ticks 0-3 are one incident, tick 9 a new one"
    first, second = sorted(findings, key=lambda f: f.started_at)
    assert first.kind is FindingKind.ANOMALY
    assert first.started_at == ticks[0] - timedelta(minutes=1)
    assert first.resolved_at == ticks[3] + timedelta(minutes=15)
    assert second.resolved_at is None
    assert str(first.target) == "deployment/shop/cart"


def test_a_restarted_stage_continues_the_open_finding(store: SqliteStore) -> None:
    engine = ScriptedEngine({T0, T0 + timedelta(minutes=5)})
    DetectStage(engine, store, min_severity=Severity.WARNING).run(
        TickContext(1, T0, series=series())
    )
    restarted = DetectStage(engine, store, min_severity=Severity.WARNING)
    restarted.run(TickContext(2, T0 + timedelta(minutes=5), series=series()))
    assert len(store.open_findings()) == 1


def test_quiet_series_resolve_and_low_severity_opens_nothing(store: SqliteStore) -> None:
    engine = ScriptedEngine({T0})
    DetectStage(engine, store, min_severity=Severity.CRITICAL).run(
        TickContext(1, T0, series=series())
    )
    assert len(store.open_findings()) == 1  # the scripted anomaly is critical
    engine.flagged_at = set()
    later = DetectStage(engine, store, min_severity=Severity.CRITICAL)
    later.run(TickContext(2, T0 + timedelta(hours=1), series=series()))
    assert store.open_findings() == [], "quiet past resolve_after resolves it"


def test_prune_runs_once_a_day(store: SqliteStore) -> None:
    old = T0 - timedelta(days=40)
    tick = store.start_tick(old)
    store.finish_tick(tick, old, {"fetch": 0.1}, [])
    stage = PruneStage(store, retention=30 * 86_400.0)
    stage.run(TickContext(1, T0))
    assert stage.pruned.get("ticks") == 1
    store.finish_tick(store.start_tick(old), old, {}, [])
    stage.run(TickContext(2, T0 + timedelta(hours=1)))
    assert len(store.recent_ticks(10)) == 1, "not again within a day"
    stage.run(TickContext(3, T0 + timedelta(days=1)))
    assert store.recent_ticks(10) == []


def test_vigil_status_reads_what_the_daemon_wrote(tmp_path: Path) -> None:
    db = tmp_path / "vigil.db"
    with SqliteStore.open(db) as store:
        tick = store.start_tick(T0)
        store.finish_tick(tick, T0 + timedelta(seconds=2), {"fetch": 1.5}, ["fetch: down"])
        engine = ScriptedEngine({T0})
        DetectStage(engine, store, min_severity=Severity.WARNING).run(
            TickContext(1, T0, series=series())
        )
        (finding,) = store.open_findings()
        plan = Plan(finding.id, "oom-raise-memory-limit", 0, ActionKind.PATCH_RESOURCES,
                    ObjectRef.parse("deployment/shop/cart"), {"memory": "768Mi"},
                    Mode.APPROVE, T0)  # fmt: skip
        store.journal_plan(plan, ActionStatus.PENDING_APPROVAL, at=T0)
    result = CliRunner().invoke(app, ["status", "--json"], env={"VIGIL_STORE__PATH": str(db)})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ticks"][0]["errors"] == ["fetch: down"]
    assert data["open_findings"][0]["id"] == finding.id
    assert data["pending_approvals"][0]["target"] == "deployment/shop/cart"
    text = CliRunner().invoke(app, ["status"], env={"VIGIL_STORE__PATH": str(db)})
    assert "fetch: down" in text.output and "Pending approvals" in text.output


def test_vigil_status_without_a_store_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["status"], env={"VIGIL_STORE__PATH": str(tmp_path / "none.db")}
    )
    assert result.exit_code == 1
    assert "run `vigil run` or `vigil demo` first" in result.output
