"""The default demo cluster and its seeded incident schedule.

``default_scenario(seed, days)`` describes 12 workloads in 4 namespaces (shop,
payments, platform, data) on 6 nodes, and a schedule of incidents (at least one of
every fault kind) spread over the simulated days after a quiet warm-up.
``build_twin(scenario)`` makes the ``Twin``; ``replay_without_agent(scenario)`` runs the
same seed to the end with nobody acting but the on-call people — the "vigil off"
baseline the demo report compares against. Called by ``vigil demo`` and backtests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from vigil.core import ManualClock, ObjectRef
from vigil.sim.faults import Fault, FaultKind
from vigil.sim.settings import SimSettings
from vigil.sim.twin import NodeSpec, Twin
from vigil.sim.workload import WorkloadSpec

__all__ = [
    "DEFAULT_START",
    "Scenario",
    "build_twin",
    "default_scenario",
    "default_workloads",
    "replay_without_agent",
    "scenario_from_settings",
    "small_scenario",
]

DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
_MI = 2.0**20
# Peak demand needs about this share of a workload's capacity across its replicas.
_LOAD = 0.4


def _workload(
    key: str, sizing: tuple[int, float, float, float, float], **extra: Any
) -> WorkloadSpec:
    """``sizing``: replicas, capacity (req/s per pod), median latency (s), CPU request
    (cores), memory request (MiB); limits are twice the requests."""
    namespace, name = key.split("/")
    replicas, capacity, latency, cpu, memory_mi = sizing
    return WorkloadSpec(
        namespace=namespace,
        name=name,
        replicas=replicas,
        base_rps=_LOAD * capacity * replicas,
        capacity_rps=capacity,
        latency_s=latency,
        cpu_request=cpu,
        cpu_limit=2 * cpu,
        memory_request=memory_mi * _MI,
        memory_limit=2 * memory_mi * _MI,
        **extra,
    )


def default_workloads() -> list[WorkloadSpec]:
    """12 workloads in 4 namespaces, 8 of them HTTP services, 6 with an HPA."""
    specs = [
        _workload(
            "shop/frontend",
            (4, 120, 0.03, 0.5, 256),
            hpa=(3, 12, 0.7),
            deps=("platform/api", "shop/search", "shop/cart", "shop/checkout"),
            slo_p99_s=1.5,
        ),
        _workload(
            "shop/checkout",
            (3, 40, 0.12, 0.5, 384),
            method="POST",
            hpa=(2, 10, 0.7),
            deps=("payments/payments-api", "shop/cart", "data/orders-db"),
            slo_p99_s=1.5,
        ),
        _workload("shop/cart", (3, 80, 0.04, 0.25, 256), deps=("payments/payments-redis",)),
        _workload("shop/search", (3, 60, 0.08, 0.5, 512), hpa=(2, 8, 0.7)),
        _workload(
            "payments/payments-api",
            (3, 50, 0.09, 0.5, 384),
            method="POST",
            hpa=(2, 8, 0.7),
            deps=("payments/payments-redis", "data/orders-db"),
            slo_p99_s=1.5,
        ),
        _workload(
            "payments/payments-worker",
            (2, 30, 0.2, 0.25, 256),
            http=False,
            deps=("payments/payments-redis",),
        ),
        _workload("payments/payments-redis", (1, 4000, 0.001, 0.5, 1024), http=False),
        _workload(
            "platform/api",
            (3, 100, 0.05, 0.5, 256),
            hpa=(2, 10, 0.7),
            deps=("platform/auth", "data/orders-db"),
        ),
        _workload("platform/auth", (2, 150, 0.02, 0.25, 128), startup_s=20.0),
        _workload(
            "platform/gateway",
            (3, 200, 0.01, 0.25, 128),
            hpa=(2, 8, 0.7),
            deps=("platform/auth",),
            startup_s=15.0,
        ),
        _workload("data/orders-db", (1, 2000, 0.004, 1.0, 2048), http=False, startup_s=90.0),
        _workload("data/etl-runner", (1, 10, 1.0, 0.5, 512), http=False),
    ]
    # Each workload follows a different week of the trace: same seasonality, own wiggles.
    return [replace(spec, trace_week=i) for i, spec in enumerate(specs)]


def default_nodes() -> list[NodeSpec]:
    zones = ("zone-a", "zone-b", "zone-c")
    return [NodeSpec(f"node-{i + 1}", zone=zones[i % 3]) for i in range(6)]


# Per kind: candidate targets, duration and magnitude (None: the kind's default).
_PLAN: dict[FaultKind, tuple[tuple[str, ...], timedelta, float | None]] = {
    FaultKind.TRAFFIC_SURGE: (
        ("shop/checkout", "shop/frontend", "shop/search", "platform/api"),
        timedelta(minutes=90),
        6.0,
    ),
    FaultKind.MEMORY_LEAK: (
        ("payments/payments-api", "shop/cart", "platform/auth"),
        timedelta(hours=4),
        None,
    ),
    FaultKind.BAD_DEPLOY: (
        ("shop/checkout", "payments/payments-api", "shop/search", "platform/api"),
        timedelta(hours=2),
        None,
    ),
    FaultKind.CRASH_LOOP: (
        ("payments/payments-worker", "shop/cart", "data/etl-runner"),
        timedelta(hours=1),
        None,
    ),
    FaultKind.NODE_NOT_READY: ((), timedelta(minutes=45), None),
    FaultKind.SLOW_DEPENDENCY: (
        ("data/orders-db", "payments/payments-redis", "platform/auth"),
        timedelta(minutes=40),
        None,
    ),
}


@dataclass(frozen=True)
class Scenario:
    """Everything needed to build (and replay) one simulated run."""

    seed: int
    start: datetime
    days: float
    step: timedelta
    workloads: tuple[WorkloadSpec, ...]
    nodes: tuple[NodeSpec, ...]
    faults: tuple[Fault, ...] = field(default=())

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def _schedule(
    rng: np.random.Generator,
    *,
    start: datetime,
    days: float,
    quiet: timedelta,
    count: int,
    nodes: list[NodeSpec],
) -> list[Fault]:
    kinds = list(FaultKind)
    extra = [kinds[int(i)] for i in rng.integers(0, len(kinds), max(0, count - len(kinds)))]
    order = kinds + extra
    rng.shuffle(order)
    first = start + quiet
    span = (start + timedelta(days=days) - first).total_seconds()
    slot = span / len(order)
    faults = []
    for i, kind in enumerate(order):
        targets, duration, magnitude = _PLAN[kind]
        # Start somewhere in the first half of this incident's slot, on a whole minute.
        offset = slot * i + float(rng.uniform(0.05, 0.5)) * slot
        begin = first + timedelta(seconds=offset // 60 * 60)
        duration = min(duration, timedelta(seconds=slot * 0.45))
        if kind is FaultKind.NODE_NOT_READY:
            target = ObjectRef("Node", None, nodes[int(rng.integers(0, len(nodes)))].name)
        else:
            ns, name = targets[int(rng.integers(0, len(targets)))].split("/")
            target = ObjectRef("Deployment", ns, name)
        faults.append(Fault(kind, target, begin, duration, magnitude))
    return faults


def default_scenario(
    seed: int = 7,
    days: float = 3.0,
    *,
    step: timedelta = timedelta(seconds=30),
    start: datetime = DEFAULT_START,
    quiet: timedelta = timedelta(hours=12),
    incidents: int = 8,
) -> Scenario:
    """The demo cluster with ``incidents`` (≥ 6: one per kind) after a ``quiet`` warm-up."""
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    if incidents < len(FaultKind):
        raise ValueError(f"incidents must be >= {len(FaultKind)} (one per fault kind)")
    if quiet >= timedelta(days=days):
        raise ValueError(f"the quiet warm-up ({quiet}) leaves no time for incidents in {days} days")
    nodes = default_nodes()
    rng = np.random.default_rng([seed, 4])
    faults = _schedule(rng, start=start, days=days, quiet=quiet, count=incidents, nodes=nodes)
    return Scenario(
        seed, start, days, step, tuple(default_workloads()), tuple(nodes), tuple(faults)
    )


def scenario_from_settings(settings: SimSettings, *, start: datetime = DEFAULT_START) -> Scenario:
    """``default_scenario`` with the ``sim`` group of vigil's configuration."""
    return default_scenario(
        settings.seed,
        settings.days,
        step=settings.step,
        start=start,
        quiet=settings.quiet,
        incidents=settings.incidents,
    )


def small_scenario(
    seed: int = 1,
    *,
    faults: tuple[Fault, ...] = (),
    start: datetime = DEFAULT_START,
    step: timedelta = timedelta(seconds=30),
    days: float = 1.0,
) -> Scenario:
    """A three-workload, three-node cluster for tests: ``shop/checkout`` (HTTP, HPA 2–10,
    calls ``data/orders-db``), ``shop/cart`` (HTTP, no HPA) and ``data/orders-db``."""
    specs = (
        _workload(
            "shop/checkout",
            (3, 40, 0.12, 0.5, 384),
            method="POST",
            hpa=(2, 10, 0.7),
            deps=("data/orders-db",),
            slo_p99_s=1.5,
        ),
        _workload("shop/cart", (3, 80, 0.04, 0.25, 256), trace_week=1),
        _workload(
            "data/orders-db", (1, 2000, 0.004, 1.0, 2048), http=False, startup_s=90.0, trace_week=2
        ),
    )
    nodes = tuple(NodeSpec(f"node-{i + 1}") for i in range(3))
    return Scenario(seed, start, days, step, specs, nodes, tuple(faults))


def build_twin(scenario: Scenario, clock: ManualClock | None = None) -> Twin:
    """A fresh twin at the scenario's start, with its faults scheduled."""
    return Twin(
        list(scenario.workloads),
        list(scenario.nodes),
        start=scenario.start,
        step=scenario.step,
        seed=scenario.seed,
        faults=list(scenario.faults),
        clock=clock,
        horizon=timedelta(days=scenario.days),
    )


def replay_without_agent(scenario: Scenario) -> Twin:
    """The same seed run to the end with no agent: the "vigil off" baseline."""
    twin = build_twin(scenario)
    twin.advance_to(scenario.end)
    return twin
