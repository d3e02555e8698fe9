"""The twin for playbook tests: ``vigil.sim``'s small scenario (shop/checkout with an HPA,
shop/cart, data/orders-db on three nodes), 20 minutes in, with a real SQLite journal and
a ``PlaybookEngine`` acting on ``twin.cluster`` and verifying through ``twin.metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_journals import open_journal
from vigil.core import ActionResult, ManualClock, ObjectRef, PermanentError
from vigil.playbooks import Guardrails, GuardrailSettings, PlaybookEngine, builtin_playbooks
from vigil.sim import build_twin, small_scenario
from vigil.sim.twin import Twin

CART = ObjectRef("Deployment", "shop", "cart")
CHECKOUT = ObjectRef("Deployment", "shop", "checkout")
DB = ObjectRef("Deployment", "data", "orders-db")
LIVE = GuardrailSettings(dry_run=False)


def auto_books(*extra: Any) -> list[Any]:
    """Built-ins with every mode switched to auto (approval has its own tests)."""
    return [*extra, *(b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks())]


class FaultyCluster:
    """``twin.cluster`` with faults a real API server won't give on cue: the next scale
    raises an error, or applies and then the process dies before returning."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_next: Exception | None = None
        self.die_after_next = False
        self.scales = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        result = self.inner.scale(ref, replicas, dry_run=dry_run)
        if not dry_run:
            self.scales += 1
            if self.die_after_next:
                self.die_after_next = False
                raise SystemExit("killed between the API call and the journal")
        return result


@dataclass
class Rig:
    twin: Twin
    cluster: FaultyCluster
    journal: Any
    engine: PlaybookEngine

    @property
    def now(self) -> Any:
        return self.twin.now

    def run(self, minutes: float) -> None:
        self.twin.run(timedelta(minutes=minutes))

    def tick(self, *findings: Any) -> list[Any]:
        return self.engine.tick(list(findings), self.twin.now)

    def restart(self, settings: GuardrailSettings = LIVE, books: list[Any] | None = None) -> None:
        """A new engine (a restarted daemon): only the journal and the cluster carry over."""
        self.engine = PlaybookEngine(
            Guardrails(self.journal, settings),
            cluster=self.cluster,
            metrics=self.twin.metrics,
            playbooks=books or auto_books(),
        )


@pytest.fixture(name="rig")
def rig_fixture(tmp_path: Path) -> Iterator[Rig]:
    scenario = small_scenario()
    twin = build_twin(scenario, clock=ManualClock(scenario.start))
    twin.run(timedelta(minutes=20))
    cluster = FaultyCluster(twin.cluster)
    with open_journal(tmp_path) as journal:
        rig = Rig(twin, cluster, journal, None)  # type: ignore[arg-type]
        rig.restart()
        yield rig


__all__ = [
    "CART",
    "CHECKOUT",
    "DB",
    "LIVE",
    "FaultyCluster",
    "PermanentError",
    "Rig",
    "auto_books",
    "rig_fixture",
]
