"""The demo's detection engine and extra tick stages, composed from what vigil has.

Kept apart from ``run_demo`` so the demo grows stage by stage as packages land:
detection (``vigil.detectors``), playbooks and guardrails (``vigil.playbooks``) acting
on the twin's ``Cluster``, and notifications to a local file sink.
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
    from vigil.agent.wiring import detection_engine

    del twin, store, clock
    return detection_engine(config), []
