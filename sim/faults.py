"""The fault injector: scheduled faults, their effects per step, and the ground truth.

Six kinds: traffic surge, memory leak, bad deploy (a rollout whose image is slow and
error-prone; undoing the rollout fixes it), crash loop, node NotReady, slow dependency.
Each ``Fault`` has a start, a duration (how long it lasts if nobody acts: at its end
the people on call fix it — a bad deploy is rolled back, a leak is patched and
restarted) and a target. ``FaultInjector`` applies active faults to the per-workload
``Effects`` each step and records every injection as an ``Incident`` (what, when, on
what): the ground truth for ``vigil demo``'s report. Driven by ``vigil.sim.twin``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vigil.core import ObjectRef, to_datetime, to_timestamp

if TYPE_CHECKING:
    from vigil.sim.twin import Twin

__all__ = ["Effects", "Fault", "FaultInjector", "FaultKind", "Incident"]


class FaultKind(StrEnum):
    TRAFFIC_SURGE = "traffic-surge"
    MEMORY_LEAK = "memory-leak"
    BAD_DEPLOY = "bad-deploy"
    CRASH_LOOP = "crash-loop"
    NODE_NOT_READY = "node-not-ready"
    SLOW_DEPENDENCY = "slow-dependency"


# What ``magnitude`` means per kind, and its default.
MAGNITUDE = {
    FaultKind.TRAFFIC_SURGE: ("demand multiplier at the plateau", 3.0),
    FaultKind.MEMORY_LEAK: ("leak per pod, bytes per second", 200_000.0),
    FaultKind.BAD_DEPLOY: ("latency factor of the bad revision", 4.0),
    FaultKind.CRASH_LOOP: ("unused", 1.0),
    FaultKind.NODE_NOT_READY: ("unused", 1.0),
    FaultKind.SLOW_DEPENDENCY: ("seconds added to each call to the dependency", 0.6),
}
BAD_ERROR_RATE = 0.12  # share of a bad revision's requests answered 500


@dataclass(frozen=True)
class Fault:
    """One scheduled fault. ``target`` is a Deployment, or a Node for node-not-ready."""

    kind: FaultKind
    target: ObjectRef
    start: datetime
    duration: timedelta
    magnitude: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.duration <= timedelta(0):
            raise ValueError(f"fault {self.kind} on {self.target}: duration must be > 0")
        want = "Node" if self.kind is FaultKind.NODE_NOT_READY else "Deployment"
        if self.target.kind != want:
            raise ValueError(f"fault {self.kind} needs a {want} target, got {self.target}")
        to_timestamp(self.start)
        if self.magnitude is None:
            object.__setattr__(self, "magnitude", MAGNITUDE[self.kind][1])

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def size(self) -> float:
        return float(self.magnitude if self.magnitude is not None else MAGNITUDE[self.kind][1])


@dataclass
class Incident:
    """Ground truth for one injected fault, with its observed outcome.

    ``affected``: the workloads it hurts (for a node: those with pods on it when it
    failed). ``impact_start``/``recovered_at``: first step any affected workload was
    unhealthy (errors > 5 %, p99 over its SLO, under half its replicas ready, or a
    container restart in the last 5 minutes) and the first step after it from which
    all stayed healthy for 5 minutes; ``None`` when that has not happened (yet).
    ``fixed_by_people``: the fault ran its whole duration and the on-call fix was applied.
    """

    id: str
    fault: Fault
    affected: tuple[ObjectRef, ...] = ()
    injected_at: datetime | None = None
    ended_at: datetime | None = None
    impact_start: datetime | None = None
    recovered_at: datetime | None = None
    impacted_minutes: float = 0.0
    fixed_by_people: bool = False
    notes: list[str] = field(default_factory=list)

    def covers(
        self, ref: ObjectRef, at: datetime, *, grace: timedelta = timedelta(minutes=30)
    ) -> bool:
        """Whether a finding about ``ref`` at ``at`` belongs to this incident: ``ref`` is
        the target, an affected Deployment, one of their pods (``<deployment>-…``) or
        HPAs (named after their Deployment), and ``at`` falls between the injection and
        ``grace`` after the planned end. The demo report scores detection with it."""
        if self.injected_at is None or not self.injected_at <= at <= self.fault.end + grace:
            return False
        if ref == self.fault.target:
            return True
        for dep in self.affected:
            if ref.namespace != dep.namespace:
                continue
            if ref.kind in ("Deployment", "HorizontalPodAutoscaler") and ref.name == dep.name:
                return True
            if ref.kind in ("Pod", "ReplicaSet") and ref.name.startswith(f"{dep.name}-"):
                return True
        return False

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "kind": str(self.fault.kind),
            "target": str(self.fault.target),
            "start": self.fault.start.isoformat(),
            "planned_end": self.fault.end.isoformat(),
            "magnitude": self.fault.size,
            "affected": [str(a) for a in self.affected],
            "injected_at": iso(self.injected_at),
            "ended_at": iso(self.ended_at),
            "impact_start": iso(self.impact_start),
            "recovered_at": iso(self.recovered_at),
            "impacted_minutes": self.impacted_minutes,
            "fixed_by_people": self.fixed_by_people,
            "notes": list(self.notes),
        }


@dataclass
class Effects:
    """Per-workload knobs the active faults turn this step (reset every step)."""

    demand: npt.NDArray[np.float64]
    latency_add: npt.NDArray[np.float64]
    error_add: npt.NDArray[np.float64]
    leak: npt.NDArray[np.float64]
    crashing: npt.NDArray[np.bool_]

    @classmethod
    def neutral(cls, n: int) -> Effects:
        return cls(np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool))


class FaultInjector:
    """Starts, applies and ends faults on a ``Twin``; keeps the ``Incident`` records."""

    def __init__(self, faults: list[Fault]) -> None:
        ordered = sorted(faults, key=lambda f: (f.start, str(f.kind), str(f.target)))
        self.incidents = [Incident(f"inc-{i + 1:02d}-{f.kind}", f) for i, f in enumerate(ordered)]
        self._started: set[str] = set()
        self._ended: set[str] = set()

    def add(self, fault: Fault) -> Incident:
        incident = Incident(f"inc-{len(self.incidents) + 1:02d}-{fault.kind}", fault)
        self.incidents.append(incident)
        return incident

    def apply(self, twin: Twin, t: float, effects: Effects) -> None:
        for inc in self.incidents:
            fault = inc.fault
            start, end = to_timestamp(fault.start), to_timestamp(fault.end)
            if t < start:
                continue
            if inc.id not in self._started:
                self._started.add(inc.id)
                inc.injected_at = to_datetime(t)
                self._begin(twin, inc, t)
            if t >= end:
                if inc.id not in self._ended:
                    self._ended.add(inc.id)
                    inc.ended_at = to_datetime(t)
                    self._finish(twin, inc, t)
                continue
            self._effect(twin, inc, (t, start, end), effects)

    def _deployment_index(self, twin: Twin, ref: ObjectRef) -> int:
        return twin.workload_index(ref)

    def _begin(self, twin: Twin, inc: Incident, t: float) -> None:
        fault = inc.fault
        if fault.kind is FaultKind.NODE_NOT_READY:
            node = twin.state.nodes[fault.target.name]
            node.ready = False
            node.not_ready_since = t
            pods_on = [p for p in twin.state.pods.values() if p.node == node.name]
            deps = sorted({p.deployment.index: p.deployment for p in pods_on}.items())
            inc.affected = tuple(ObjectRef("Deployment", d.namespace, d.name) for _, d in deps)
            inc.notes.append(f"{len(deps)} workloads had pods on {node.name}")
            return
        if fault.kind is FaultKind.SLOW_DEPENDENCY:
            key = f"{fault.target.namespace}/{fault.target.name}"
            callers = [s for s in twin.specs if key in s.deps]
            inc.affected = (
                fault.target,
                *(ObjectRef("Deployment", s.namespace, s.name) for s in callers),
            )
            return
        inc.affected = (fault.target,)
        if fault.kind is FaultKind.BAD_DEPLOY:
            image = twin.roll_out_new_image(fault.target, bad=True)
            inc.notes.append(f"rolled out bad image {image}")

    def _finish(self, twin: Twin, inc: Incident, t: float) -> None:
        fault = inc.fault
        if fault.kind is FaultKind.NODE_NOT_READY:
            node = twin.state.nodes[fault.target.name]
            node.ready = True
            node.not_ready_since = None
        elif fault.kind is FaultKind.BAD_DEPLOY:
            if twin.serves_bad_image(fault.target):
                twin.people_roll_back(fault.target)
                inc.fixed_by_people = True
                inc.notes.append("on-call rolled the deployment back at the end of the fault")
        elif fault.kind is FaultKind.MEMORY_LEAK:
            twin.people_restart(fault.target)
            inc.fixed_by_people = True
            inc.notes.append("on-call shipped the leak fix (rollout restart) at the end")

    def _effect(
        self, twin: Twin, inc: Incident, times: tuple[float, float, float], effects: Effects
    ) -> None:
        t, start, end = times
        fault = inc.fault
        kind = fault.kind
        if kind is FaultKind.NODE_NOT_READY or kind is FaultKind.BAD_DEPLOY:
            return  # state changes made at begin/finish; nothing per step
        w = self._deployment_index(twin, fault.target)
        if kind is FaultKind.TRAFFIC_SURGE:
            # Ramp up over 10 minutes, hold, ramp down over the last 10 minutes.
            ramp = min(1.0, (t - start) / 600.0, (end - t) / 600.0)
            effects.demand[w] *= 1.0 + (fault.size - 1.0) * max(0.0, ramp)
        elif kind is FaultKind.MEMORY_LEAK:
            effects.leak[w] += fault.size
        elif kind is FaultKind.CRASH_LOOP:
            effects.crashing[w] = True
        elif kind is FaultKind.SLOW_DEPENDENCY:
            key = f"{fault.target.namespace}/{fault.target.name}"
            effects.latency_add[w] += fault.size
            for i, spec in enumerate(twin.specs):
                if key in spec.deps:
                    effects.latency_add[i] += fault.size
                    effects.error_add[i] += 0.03  # calls that hit the client timeout
