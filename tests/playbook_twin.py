"""The twin for playbook tests: ``vigil.sim`` with a real SQLite journal and a
``PlaybookEngine`` acting on ``twin.cluster`` and verifying through ``twin.metrics``.

``TwinCluster`` wraps ``twin.cluster`` to record every mutating call (so a test can
prove an action ran once, or never) and to add faults a real API server won't give on
cue: the next call raises, or applies and then the process dies before returning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.playbook_findings import T0
from tests.playbook_journals import open_journal
from vigil.core import ManualClock, ObjectRef
from vigil.playbooks import Guardrails, GuardrailSettings, PlaybookEngine, builtin_playbooks
from vigil.sim import Scenario, build_twin, default_workloads, small_scenario
from vigil.sim.scenario import default_nodes
from vigil.sim.twin import Twin

CART = ObjectRef("Deployment", "shop", "cart")
LIVE = GuardrailSettings(dry_run=False)
MUTATING = (
    "scale",
    "rollout_restart",
    "rollout_undo",
    "delete_pod",
    "evict_pod",
    "cordon",
    "uncordon",
    "patch_hpa",
    "patch_resources",
)


def auto_books(*extra: Any) -> list[Any]:
    """Built-ins with every mode switched to auto (approval has its own tests)."""
    return [*extra, *(b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks())]


def full_twin(start: datetime = T0, days: float = 1.0) -> Twin:
    """The default 12 workloads in shop, payments, platform and data on 6 nodes, no faults."""
    scenario = Scenario(
        1, start, days, timedelta(seconds=30), tuple(default_workloads()), tuple(default_nodes())
    )
    return build_twin(scenario, clock=ManualClock(start))


def small_twin() -> Twin:
    """shop/checkout (HPA), shop/cart, data/orders-db on 3 nodes, 20 minutes in."""
    scenario = small_scenario()
    twin = build_twin(scenario, clock=ManualClock(scenario.start))
    twin.run(timedelta(minutes=20))
    return twin


class TwinCluster:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.inner = twin.cluster
        self.calls: list[tuple[str, str, bool, datetime]] = []
        self.fail_next: Exception | None = None
        self.die_after_next = False
        self.time: Callable[[], datetime] = lambda: twin.now  # when a call is recorded
        self.after_apply: Callable[[], None] | None = None  # e.g. a process dying here

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        return self._recorded(name, attr) if name in MUTATING else attr

    def _recorded(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(target: Any, *args: Any, dry_run: bool, **kwargs: Any) -> Any:
            self.calls.append((name, str(target), dry_run, self.time()))
            if self.fail_next is not None:
                exc, self.fail_next = self.fail_next, None
                raise exc
            result = method(target, *args, dry_run=dry_run, **kwargs)
            if self.after_apply is not None and not dry_run:
                self.after_apply()
            if self.die_after_next and not dry_run:
                self.die_after_next = False
                raise SystemExit("killed between the API call and the journal")
            return result

        return call

    def real_calls(self) -> list[tuple[str, str]]:
        return [(name, target) for name, target, dry, _ in self.calls if not dry]


@dataclass
class Rig:
    twin: Twin
    cluster: TwinCluster
    journal: Any
    engine: PlaybookEngine

    @property
    def now(self) -> datetime:
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
            playbooks=books if books is not None else auto_books(),
        )


def make_rig(
    twin: Twin, journal: Any, settings: GuardrailSettings = LIVE, books: list[Any] | None = None
) -> Rig:
    rig = Rig(twin, TwinCluster(twin), journal, None)  # type: ignore[arg-type]
    rig.restart(settings, books)
    return rig


@pytest.fixture(name="rig")
def rig_fixture(tmp_path: Path) -> Iterator[Rig]:
    """The small twin, 20 minutes in, every built-in on auto."""
    with open_journal(tmp_path) as journal:
        yield make_rig(small_twin(), journal)
