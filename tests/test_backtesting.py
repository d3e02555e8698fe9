"""`vigil backtest`'s replay: history through detection and playbooks in dry-run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.agent.backtesting import run_backtest
from vigil.agent.config import load_config
from vigil.core import ManualClock, ObjectRef
from vigil.sim import build_twin, small_scenario
from vigil.sim.faults import Fault
from vigil.sim.scenario import DEFAULT_START


@pytest.mark.timeout(300)
def test_backtest_replays_history_in_dry_run_and_changes_nothing() -> None:
    # A bad deploy at 20:00 gives detection something real to find (a quiet day of the
    # twin pages nobody).
    bad = Fault(
        "bad-deploy",
        ObjectRef("Deployment", "shop", "checkout"),
        DEFAULT_START + timedelta(hours=20),
        timedelta(hours=2),
    )
    scenario = small_scenario(days=1.0, faults=(bad,))
    clock = ManualClock(scenario.start)
    twin = build_twin(scenario, clock=clock)
    twin.advance_to(scenario.end)
    before = [(w.ref, w.replicas, w.revision) for w in twin.cluster.list_workloads()]
    cfg = load_config(None, {"VIGIL_AGENT__INTERVAL": "900"})
    fractions: list[float] = []
    start = scenario.start + timedelta(hours=18)
    report = run_backtest(
        cfg, twin.metrics, start=start, end=scenario.end, progress=fractions.append
    )
    assert fractions and fractions[-1] == pytest.approx(1.0)
    assert report.start == start and report.end == scenario.end
    assert report.findings > 0, "the bad deploy is found"
    fired = sum(p.fired for p in report.playbooks)
    assert fired + report.unmatched == report.findings
    after = [(w.ref, w.replicas, w.revision) for w in twin.cluster.list_workloads()]
    assert after == before, "a backtest never changes the cluster"
    text = report.render()
    assert text.startswith("Backtest 2026-11-02 18:00")
    assert f"{report.findings} findings" in text


def test_backtest_refuses_an_empty_window() -> None:
    cfg = load_config(None, {})
    scenario = small_scenario(days=1.0)
    twin = build_twin(scenario)
    with pytest.raises(ValueError, match="window is empty"):
        run_backtest(cfg, twin.metrics, start=scenario.start, end=scenario.start)
