"""The tick's playbook stage: findings → plans → guardrails → act → verify → revert.

Wraps ``vigil.playbooks.PlaybookEngine``: each tick it runs ``engine.tick`` over this
tick's findings plus the open ones recorded between ticks (Alertmanager alerts), and
hands the journal rows and messages of the tick to the notify stage through
``TickContext.extras``. ``reconcile`` runs once when the stage is built, so rows a killed
daemon left ``running`` are settled from the cluster's state before anything new runs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vigil.agent.loop import TickContext
from vigil.agent.metrics import JOURNAL_KEY
from vigil.agent.notifying import NOTIFICATIONS_KEY
from vigil.core import Clock, Cluster, Finding, MetricSource, Store

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.playbooks import Outcome, PlaybookEngine

__all__ = ["PlaybookStage", "build_playbook_engine"]

log = logging.getLogger(__name__)


def build_playbook_engine(
    config: Config, *, store: Store, cluster: Cluster | None, metrics: MetricSource | None
) -> PlaybookEngine:
    """Playbooks (built-ins plus ``playbooks.directories``) under the configured guardrails."""
    from vigil.playbooks import Guardrails, PlaybookEngine, load_playbooks

    books = load_playbooks(config.playbooks)
    guardrails = Guardrails(
        store,
        config.guardrails,
        {b.name: b for b in books},
        resources=config.playbooks.resources,
    )
    return PlaybookEngine(guardrails, cluster=cluster, metrics=metrics, playbooks=books)


def _flatten(outcomes: list[Outcome]) -> list[Outcome]:
    out: list[Outcome] = []
    for o in outcomes:
        out.append(o)
        out.extend(_flatten(list(o.follow_up)))
    return out


class PlaybookStage:
    """Runs the playbook engine once per tick."""

    name = "playbooks"

    def __init__(
        self, engine: PlaybookEngine, store: Store, clock: Clock, *, open_scan: int = 500
    ) -> None:
        self._engine = engine
        self._store = store
        self._open_scan = open_scan
        settled = engine.reconcile(clock.now())
        if settled:
            log.warning("settled %d action(s) a previous run left running", len(settled))

    def run(self, ctx: TickContext) -> None:
        seen = {f.id for f in ctx.findings}
        findings: list[Finding] = list(ctx.findings)
        findings += [
            f for f in self._store.open_findings(limit=self._open_scan) if f.id not in seen
        ]
        outcomes = _flatten(self._engine.tick(findings, ctx.now))
        entries = [o.entry for o in outcomes if o.entry is not None]
        ctx.extras.setdefault(JOURNAL_KEY, []).extend(entries)
        notes = ctx.extras.setdefault(NOTIFICATIONS_KEY, [])
        for o in outcomes:
            notes.extend(o.notifications)
