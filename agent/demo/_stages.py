"""The demo's detection engine and extra tick stages, composed from what vigil has.

Detection (``vigil.detectors``), the cluster watch (node conditions as findings), the
playbook engine with every guardrail acting on the twin's ``Cluster`` (auto mode: the
cluster is simulated), and notifications to a local JSON-lines file. The same builders
serve ``vigil run``; only the ports differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.agent.loop import Stage
from vigil.agent.stages import AnomalyEngine

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.agent.store import SqliteStore
    from vigil.core import ManualClock
    from vigil.sim import Twin

__all__ = ["demo_stages"]


def demo_stages(
    config: Config, *, twin: Twin, store: SqliteStore, clock: ManualClock
) -> tuple[AnomalyEngine | None, list[Stage]]:
    """The detection engine (or ``None``) and the stages after detection."""
    from vigil.agent.cluster_watch import ClusterWatchStage
    from vigil.agent.daemon import build_notify
    from vigil.agent.playbook_stage import PlaybookStage, build_playbook_engine
    from vigil.agent.wiring import detection_engine

    engine = build_playbook_engine(config, store=store, cluster=twin.cluster, metrics=twin.metrics)
    notify, _worker = build_notify(config, store, clock)
    watch = ClusterWatchStage(twin.cluster, store)
    return detection_engine(config), [watch, PlaybookStage(engine, store, clock), notify]
