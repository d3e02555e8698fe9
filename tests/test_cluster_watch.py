"""The cluster watch on the twin: a NotReady node is cordoned, and uncordoned by the
``node-recovered-uncordon`` playbook once it has been healthy for 10 minutes — journaled
and verified like any action; a node a person cordoned is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from vigil.agent.cluster_watch import ClusterWatchStage
from vigil.agent.loop import TickContext
from vigil.agent.playbook_stage import PlaybookStage
from vigil.agent.store import SqliteStore
from vigil.core import ActionKind, ActionStatus, ManualClock, ObjectRef
from vigil.playbooks import Guardrails, GuardrailSettings, PlaybookEngine, builtin_playbooks
from vigil.sim import build_twin, small_scenario
from vigil.sim.faults import Fault
from vigil.sim.twin import Twin

pytestmark = pytest.mark.timeout(60)

NODE = ObjectRef("Node", None, "node-2")


@pytest.fixture(name="store")
def store_fixture(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "vigil.db") as store:
        yield store


def rig(twin: Twin, store: SqliteStore) -> tuple[ClusterWatchStage, PlaybookStage]:
    books = [b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()]
    engine = PlaybookEngine(
        Guardrails(store, GuardrailSettings(dry_run=False)),
        cluster=twin.cluster,
        metrics=twin.metrics,
        playbooks=books,
    )
    return ClusterWatchStage(twin.cluster, store), PlaybookStage(engine, store, twin.clock)


def run(twin: Twin, stages: tuple[ClusterWatchStage, PlaybookStage], minutes: int) -> None:
    for i in range(minutes):
        twin.run(timedelta(minutes=1))
        ctx = TickContext(i, twin.now)
        for stage in stages:
            stage.run(ctx)


def node(twin: Twin, name: str = "node-2") -> object:
    return next(n for n in twin.cluster.list_nodes() if n.name == name)


def test_a_node_vigil_cordoned_is_uncordoned_after_it_recovers(store: SqliteStore) -> None:
    scenario = small_scenario()
    start = scenario.start + timedelta(minutes=20)
    fault = Fault("node-not-ready", NODE, start, timedelta(minutes=30))
    twin = build_twin(scenario, clock=ManualClock(scenario.start))
    twin.inject(fault)
    twin.run(timedelta(minutes=15))
    stages = rig(twin, store)
    run(twin, stages, 5 + 30 + 5)  # through the outage, five minutes after it
    assert node(twin).unschedulable, "still cordoned: healthy for only five minutes"
    run(twin, stages, 10)
    assert not node(twin).unschedulable
    changes = [
        e
        for e in store.journal_list(limit=100)
        if e.action in (ActionKind.CORDON, ActionKind.UNCORDON)
    ]
    cordon, uncordon = sorted(changes, key=lambda e: e.id)
    assert (cordon.action, cordon.playbook) == (ActionKind.CORDON, "node-not-ready-cordon")
    assert (uncordon.action, uncordon.playbook) == (ActionKind.UNCORDON, "node-recovered-uncordon")
    assert cordon.status is uncordon.status is ActionStatus.SUCCEEDED
    assert start <= cordon.created_at < fault.end
    assert uncordon.created_at >= fault.end + timedelta(minutes=10)
    (check,) = store.verifications_for(uncordon.id)
    assert check.ok and "unschedulable=0" in check.observed
    run(twin, stages, 30)
    uncordons = [e for e in store.journal_list(limit=100) if e.action is ActionKind.UNCORDON]
    assert [e.id for e in uncordons] == [uncordon.id], "uncordoned once"
    assert all(f.resolved for f in store.open_findings(limit=100)) or not any(
        f.details.get("condition") == "NodeRecovered" for f in store.open_findings(limit=100)
    ), "the recovered condition cleared once the node was schedulable"


def test_a_node_a_person_cordoned_stays_cordoned(store: SqliteStore) -> None:
    scenario = small_scenario()
    twin = build_twin(scenario, clock=ManualClock(scenario.start))
    twin.run(timedelta(minutes=15))
    twin.cluster.cordon("node-3", dry_run=False)  # maintenance, not vigil
    stages = rig(twin, store)
    run(twin, stages, 30)
    assert node(twin, "node-3").unschedulable
    assert store.journal_list(limit=10) == []


def test_repeated_oom_kills_raise_the_memory_limit_once(store: SqliteStore) -> None:
    cart = ObjectRef("Deployment", "shop", "cart")
    scenario = small_scenario()
    start = scenario.start + timedelta(minutes=20)
    twin = build_twin(scenario, clock=ManualClock(scenario.start))
    # 400 kB/s per pod: the 512 MiB limit is hit in about 20 minutes, 768 MiB in 35.
    twin.inject(Fault("memory-leak", cart, start, timedelta(hours=2), 400_000.0))
    twin.run(timedelta(minutes=15))
    limit = twin.cluster.get_workload(cart).containers[0].memory_limit
    stages = rig(twin, store)
    run(twin, stages, 60)
    patches = [e for e in store.journal_list(limit=200) if e.action is ActionKind.PATCH_RESOURCES]
    (patch,) = patches
    assert patch.playbook == "oom-raise-memory-limit" and patch.status is ActionStatus.SUCCEEDED
    (check,) = store.verifications_for(patch.id)
    assert check.ok, check.observed
    assert patch.target == cart or patch.params.get("workload") == str(cart)
    raised = twin.cluster.get_workload(cart).containers[0].memory_limit
    assert limit is not None and raised is not None and raised > limit
    oom = [
        f for f in store.findings_between(start, twin.now) if f.details["condition"] == "OOMKilled"
    ]
    assert oom and max(int(f.details["count"]) for f in oom) >= 3
