"""``vigil backtest``: replay history from a ``MetricSource`` through detection and the
playbooks in dry-run, and report what each playbook would have done.

Detection runs tick by tick over [start, end] with a ``ManualClock`` (each tick sees only
the past), findings go to a throwaway store, then ``vigil.playbooks.backtest`` decides
them under the configured guardrails against an in-memory journal. Nothing is changed
anywhere and the real store is not touched.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.agent.loop import Loop, Stage
from vigil.agent.stages import RefitStage
from vigil.agent.wiring import detect_stage, fetch_stage
from vigil.core import Cluster, ManualClock, MetricSource

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.playbooks import BacktestReport

__all__ = ["run_backtest"]


def run_backtest(
    config: Config,
    source: MetricSource,
    *,
    start: datetime,
    end: datetime,
    cluster: Cluster | None = None,
    progress: Callable[[float], None] | None = None,
) -> BacktestReport:
    """Findings of ``start``..``end`` replayed through the playbooks in dry-run."""
    from vigil.agent.store import SqliteStore
    from vigil.detectors.engine import DetectionEngine
    from vigil.playbooks import backtest, load_playbooks

    if end <= start:
        raise ValueError(f"backtest window is empty: --to {end} is not after --from {start}")
    step = timedelta(seconds=config.agent.interval)
    clock = ManualClock(start)
    with tempfile.TemporaryDirectory(prefix="vigil-backtest-") as tmp:
        store = SqliteStore.open(Path(tmp) / "backtest.db", clock=clock)
        try:
            engine = DetectionEngine(config.detection)
            stages: list[Stage] = [
                fetch_stage(config, source),
                detect_stage(config, engine, store),
                RefitStage([engine], limit=config.detection.max_refits_per_tick),
            ]
            loop = Loop(store, clock, stages)
            total = (end - start) / step
            done = 0
            while clock.now() < end:
                clock.advance(step)
                loop.tick()
                done += 1
                if progress is not None:
                    progress(min(1.0, done / total))
            findings = store.findings_between(start, end)
        finally:
            store.close()
    guardrails = config.guardrails.model_copy(update={"dry_run": True})
    return backtest(
        findings,
        load_playbooks(config.playbooks),
        start=start,
        end=end,
        guardrails=guardrails,
        resources=config.playbooks.resources,
        cluster=cluster,
    )
