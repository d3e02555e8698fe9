"""The digital twin: a simulated cluster stepped in fixed increments on an injected clock.

``Twin`` owns the cluster state, the control plane, the workload model, the fault
injector and the metric history. ``step()`` advances one step (e.g. 30 s) and
``advance_to(t)`` as many as fit before ``t``; nothing sleeps. ``twin.cluster`` is the
``Cluster`` port (``SimCluster``), ``twin.metrics`` the ``MetricSource``
(``SimMetrics``), ``twin.incidents()`` the ground truth of what was injected.
Built by ``vigil.sim.scenario`` (the default demo cluster) or by tests directly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from vigil.core import ManualClock, NotFoundError, ObjectRef, to_datetime, to_timestamp
from vigil.sim.cluster import SimCluster
from vigil.sim.controllers import ControlPlane
from vigil.sim.faults import BAD_ERROR_RATE, Effects, Fault, FaultInjector, Incident
from vigil.sim.history import SeriesStore
from vigil.sim.metrics import SimMetrics
from vigil.sim.recording import Recorder
from vigil.sim.state import (
    ClusterState,
    ContainerSpec,
    DeploymentState,
    HpaState,
    NodeState,
    PodTable,
    Template,
)
from vigil.sim.workload import DemandModel, Traffic, WorkloadSpec, traffic

__all__ = ["CRASH_AFTER_S", "NodeSpec", "Twin"]

CRASH_AFTER_S = 10.0  # a crash-looping container exits this long after it starts
_HEALTHY_FOR_S = 300.0  # recovered = every affected workload healthy this long
_BAD_LATENCY_FACTOR = 4.0


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: float = 8.0
    memory: float = 32 * 2.0**30
    zone: str = "zone-a"


class Twin:
    """A seeded, deterministic simulated cluster. Same seed and actions → same series."""

    def __init__(
        self,
        specs: list[WorkloadSpec],
        nodes: list[NodeSpec],
        *,
        start: datetime,
        step: timedelta = timedelta(seconds=30),
        seed: int = 0,
        faults: list[Fault] | None = None,
        clock: ManualClock | None = None,
        horizon: timedelta = timedelta(days=1),
    ) -> None:
        if step < timedelta(seconds=15):
            raise ValueError(f"step must be >= 15 s (the HPA sync period), got {step}")
        if not specs or not nodes:
            raise ValueError("a twin needs at least one workload and one node")
        self.specs = list(specs)
        self.seed = seed
        self.dt = step.total_seconds()
        t0 = to_timestamp(start)
        self.clock = clock or ManualClock(start)
        if self.clock.now() > start:
            raise ValueError("the clock is already past the twin's start")
        self.clock.set(start)
        self.state = self._build_state(nodes)
        self.bad_images: set[str] = set()
        self.control = ControlPlane(self.state, self.specs, seed, self.bad_images)
        self.demand = DemandModel(self.specs, start=t0, seed=seed)
        self.injector = FaultInjector(list(faults or []))
        rows = int(horizon.total_seconds() / self.dt) + 2
        # Room for every static series and two pods per replica, so the history array
        # rarely has to grow (each growth copies it).
        columns = 40 * len(self.specs) + 16 * len(nodes) + 24 * self.state.table.capacity
        self.store = SeriesStore(t0, self.dt, rows=rows, columns=columns)
        self.cluster = SimCluster(self)
        self.metrics = SimMetrics(self.store, self.clock)
        self.people_actions: list[tuple[datetime, str, str]] = []
        n = len(self.specs)
        self._unhealthy = np.zeros((rows, n), dtype=bool)
        self._load = np.zeros((rows, n))  # utilisation ρ = demand / ready capacity
        self._ready = np.zeros((rows, n))
        self._last_restart = np.full(n, -np.inf)
        self._noise = np.random.default_rng([seed, 3])
        self._memory_noise = np.random.default_rng([seed, 5])
        self._arrays()
        self.t = t0 - 600.0
        self.control.sync(self.t)  # the cluster has been running for a while
        self.recorder = Recorder(self.store, self.state, self.specs)
        self._simulate(t0, self.dt)

    # ------------------------------------------------------------------ set-up
    def _build_state(self, nodes: list[NodeSpec]) -> ClusterState:
        node_states = {
            n.name: NodeState(
                n.name,
                i,
                n.cpu,
                n.memory,
                labels={"kubernetes.io/hostname": n.name, "topology.kubernetes.io/zone": n.zone},
            )
            for i, n in enumerate(nodes)
        }
        deployments: dict[tuple[str, str], DeploymentState] = {}
        hpas: dict[tuple[str, str], HpaState] = {}
        for i, spec in enumerate(self.specs):
            image = spec.image or f"registry.local/{spec.namespace}/{spec.name}:1.0.0"
            container = ContainerSpec(
                spec.container or spec.name,
                image,
                spec.cpu_request,
                spec.cpu_limit,
                spec.memory_request,
                spec.memory_limit,
            )
            template = Template((container,))
            key = (spec.namespace, spec.name)
            if key in deployments:
                raise ValueError(f"workload {spec.key} defined twice")
            deployments[key] = DeploymentState(
                spec.namespace, spec.name, i, spec.replicas, template, {"app": spec.name}
            )
            if spec.hpa is not None:
                lo, hi, target = spec.hpa
                hpas[key] = HpaState(spec.namespace, spec.name, spec.name, lo, hi, target)
                hpas[key].current_replicas = hpas[key].desired_replicas = spec.replicas
        namespaces = sorted({s.namespace for s in self.specs})
        slots = max(64, 2 * sum(s.replicas for s in self.specs))
        return ClusterState(namespaces, node_states, deployments, hpas, table=PodTable(slots))

    def _arrays(self) -> None:
        s = self.specs
        self._capacity = np.array([x.capacity_rps for x in s])
        self._latency = np.array([x.latency_s for x in s])
        self._sigma = np.array([x.latency_sigma for x in s])
        self._errors = np.array([x.error_rate for x in s])
        request = np.array([x.cpu_request for x in s])
        # CPU is 10 % of the request when idle and 120 % at full capacity, so an HPA
        # targeting 70 % keeps pods near 55 % of their capacity.
        self._cpu_idle = 0.1 * request
        self._cpu_per_rps = (1.2 * request - self._cpu_idle) / self._capacity
        self._mem_base = np.array([x.memory_base or 0.6 * x.memory_request for x in s])
        # Working sets grow with load (buffers, sessions): +25 % of the request at capacity.
        self._mem_per_rps = np.array(
            [x.memory_per_rps or 0.25 * x.memory_request / x.capacity_rps for x in s]
        )
        self._http = np.array([x.http for x in s])
        self._slo = np.array([x.slo_p99_s for x in s])
        self._min_ready = np.array([max(1, math.ceil(0.5 * x.replicas)) for x in s])

    # ------------------------------------------------------------------ stepping
    @property
    def now(self) -> datetime:
        return to_datetime(self.t)

    def step(self) -> datetime:
        """Advance one step; returns the new simulated time."""
        t = self.t + self.dt
        if to_timestamp(self.clock.now()) < t:
            self.clock.set(to_datetime(t))
        self._simulate(t, self.dt)
        return to_datetime(t)

    def advance_to(self, when: datetime) -> int:
        """Step until the next step would pass ``when``; leaves the clock at ``when``."""
        target = to_timestamp(when)
        steps = 0
        while self.t + self.dt <= target + 1e-9:
            self.step()
            steps += 1
        if self.clock.now() < when:
            self.clock.set(when)
        return steps

    def run(self, duration: timedelta) -> int:
        return self.advance_to(self.now + duration)

    def _terminate(self, mask: np.ndarray, reason: int, exit_code: int, t: float) -> None:
        tb = self.state.table
        cap = mask.size
        idx = np.flatnonzero(mask)
        tb.restarts[idx] += 1
        tb.last_reason[idx] = reason
        tb.exit_code[idx] = exit_code
        tb.streak[idx] += 1
        streak = tb.streak[idx]
        backoff = np.where(streak <= 1, 0.0, np.minimum(10.0 * 2.0 ** (streak - 2), 300.0))
        tb.started_at[idx] = t + backoff
        w = tb.workload[idx]
        startup = np.array([self.specs[int(i)].startup_s for i in w])
        tb.ready_at[idx] = t + backoff + startup
        tb.leaked[idx] = 0.0
        tb.memory[idx] = 0.0
        tb.cpu_usage[idx] = 0.0
        tb.running[:cap] &= ~mask
        tb.ready[:cap] &= ~mask
        self._last_restart[np.unique(w)] = t

    def _simulate(self, t: float, dt: float) -> None:
        self.t = t
        n = len(self.specs)
        effects = Effects.neutral(n)
        self.injector.apply(self, t, effects)
        self.control.sync(t)
        tb = self.state.table
        alive = tb.alive
        w = tb.workload
        node_ok = np.array([node.ready for node in self.state.node_list()] + [False])
        on_ok_node = alive & node_ok[np.where(tb.node >= 0, tb.node, len(node_ok) - 1)]
        running = alive & (tb.started_at <= t)
        crash = running & effects.crashing[w] & (t - tb.started_at >= CRASH_AFTER_S)
        if crash.any():
            self._terminate(crash, 2, 1, t)
            running = alive & (tb.started_at <= t)
        tb.running[:] = running
        tb.ready[:] = running & (tb.ready_at <= t) & on_ok_node
        tb.waiting[:] = np.where(alive & ~running, np.where(tb.restarts > 0, 2, 1), 0)
        tb.streak[running & (t - tb.started_at > 600.0)] = 0
        ready = tb.ready
        ready_count = np.bincount(w[ready], minlength=n).astype(float)
        bad_count = np.bincount(w[ready & tb.bad], minlength=n).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            bad_fraction = np.where(ready_count > 0, bad_count / ready_count, 0.0)
        demand = self.demand.step(t, dt) * effects.demand
        jitter = np.exp(0.05 * self._noise.standard_normal(n))
        tr = traffic(
            demand,
            ready_count,
            capacity=self._capacity,
            latency=self._latency * jitter,
            sigma=self._sigma,
            error_rate=self._errors + effects.error_add,
            bad_fraction=bad_fraction,
            bad_latency_factor=_BAD_LATENCY_FACTOR,
            bad_error_rate=BAD_ERROR_RATE,
            latency_add=effects.latency_add,
            dt=dt,
        )
        per_pod = np.where(ready, tr.served_rps_per_pod[w], 0.0)
        busy = running & on_ok_node
        cpu = np.where(busy, self._cpu_idle[w] + self._cpu_per_rps[w] * per_pod, 0.0)
        cpu = np.where(tb.cpu_limit > 0, np.minimum(cpu, tb.cpu_limit), cpu)
        tb.cpu_usage[:] = cpu
        tb.cpu_seconds += cpu * dt
        tb.leaked += np.where(running, effects.leak[w] * dt, 0.0)
        wobble = 0.02 * tb.memory_request * self._memory_noise.standard_normal(tb.capacity)
        tb.memory[:] = np.where(
            running,
            self._mem_base[w] + self._mem_per_rps[w] * per_pod + tb.leaked + wobble,
            tb.memory,
        )
        oom = running & (tb.memory > tb.memory_limit) & (tb.memory_limit > 0)
        if oom.any():
            self._terminate(oom, 1, 137, t)
        self._node_pressure()
        self._record_health(t, tr, ready_count, demand)
        self.recorder.record(t, tr, dt)

    def _node_pressure(self) -> None:
        tb = self.state.table
        mask = tb.alive & (tb.node >= 0)
        used = np.bincount(tb.node[mask], weights=tb.memory[mask], minlength=len(self.state.nodes))
        for node in self.state.node_list():
            node.memory_pressure = bool(used[node.index] > 0.9 * node.memory)

    def _record_health(
        self, t: float, tr: Traffic, ready_count: np.ndarray, demand: np.ndarray
    ) -> None:
        row = self.store.rows
        if row >= self._unhealthy.shape[0]:
            self._unhealthy, self._load, self._ready = (
                np.concatenate((a, np.zeros_like(a)))
                for a in (self._unhealthy, self._load, self._ready)
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            self._load[row] = np.where(
                ready_count > 0, demand / (ready_count * self._capacity), np.inf
            )
        self._ready[row] = ready_count
        total = tr.ok + tr.server_errors + tr.rejected
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.where(total > 0, (tr.server_errors + tr.rejected) / total, 0.0)
        http_bad = self._http & (total > 0) & ((err > 0.05) | (tr.p99 > self._slo))
        bad = http_bad | (ready_count < self._min_ready) | (t - self._last_restart < 300.0)
        self._unhealthy[row] = bad

    # ------------------------------------------------------------------ helpers for faults
    def workload_index(self, ref: ObjectRef) -> int:
        dep = self.state.deployments.get((ref.namespace or "", ref.name))
        if dep is None or ref.kind != "Deployment":
            raise NotFoundError(f"{ref}: no such deployment in the twin")
        return dep.index

    def roll_out_new_image(self, ref: ObjectRef, *, bad: bool) -> str:
        """A new release: bump the image's patch version (``bad``: a broken build)."""
        dep = self.state.deployments[(ref.namespace or "", ref.name)]
        main = dep.template.main
        repo, _, tag = main.image.rpartition(":")
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", tag)
        new_tag = (
            f"{match.group(1)}.{match.group(2)}.{int(match.group(3)) + 1}" if match else tag + "-1"
        )
        image = f"{repo}:{new_tag}"
        if bad:
            self.bad_images.add(image)
        self.set_image(ref, image)
        return image

    def set_image(self, ref: ObjectRef, image: str) -> int:
        """Release ``image`` in the workload's (first) container: a rollout to a new
        revision, as ``kubectl set image`` does. Returns the new revision."""
        dep = self.state.deployments[(ref.namespace or "", ref.name)]
        dep.template = dep.template.with_container(replace(dep.template.main, image=image))
        dep.generation += 1
        return self.control.reconcile_deployment(dep, self.t).revision

    def serves_bad_image(self, ref: ObjectRef) -> bool:
        dep = self.state.deployments[(ref.namespace or "", ref.name)]
        return dep.template.main.image in self.bad_images

    def people_roll_back(self, ref: ObjectRef) -> None:
        dep = self.state.deployments[(ref.namespace or "", ref.name)]
        good = [rs for rs in dep.replica_sets if rs.template.main.image not in self.bad_images]
        if not good:
            return
        target = max(good, key=lambda rs: rs.revision)
        self.cluster.rollout_undo(ref, to_revision=target.revision, dry_run=False)
        self.people_actions.append((self.now, "rollout-undo", str(ref)))

    def people_restart(self, ref: ObjectRef) -> None:
        self.cluster.rollout_restart(ref, dry_run=False)
        self.people_actions.append((self.now, "rollout-restart", str(ref)))

    # ------------------------------------------------------------------ ground truth
    def inject(self, fault: Fault) -> Incident:
        """Schedule one more fault (its start may be now or later)."""
        return self.injector.add(fault)

    def incidents(self) -> list[Incident]:
        """Every scheduled fault with its outcome so far (see ``Incident``)."""
        need = max(1, math.ceil(_HEALTHY_FOR_S / self.dt))
        for inc in self.injector.incidents:
            if inc.injected_at is not None and inc.affected:
                self._outcome(inc, need)
        return list(self.injector.incidents)

    def _outcome(self, inc: Incident, need: int) -> None:
        """Impact window: from injection to 30 minutes after the planned end. Recovered
        after the last unhealthy step in it, once ``need`` healthy steps have followed."""
        assert inc.injected_at is not None
        rows = self.store.rows
        cols = [self.workload_index(a) for a in inc.affected]
        first = round((to_timestamp(inc.injected_at) - self.store.start) / self.dt)
        stop = round((to_timestamp(inc.fault.end) + 1800.0 - self.store.start) / self.dt)
        bad = self._unhealthy[first : min(rows, stop + 1), cols].any(axis=1)
        hits = np.flatnonzero(bad)
        inc.impact_start = inc.recovered_at = None
        inc.impacted_minutes = float(hits.size) * self.dt / 60.0
        if hits.size == 0:
            return
        inc.impact_start = to_datetime(self.store.time_of(first + int(hits[0])))
        after = first + int(hits[-1]) + 1
        if rows - after >= need and not self._unhealthy[after : after + need, cols].any():
            inc.recovered_at = to_datetime(self.store.time_of(after))

    def workload_summary(self, *, overload: float = 0.85) -> dict[str, dict[str, float]]:
        """Per workload (``namespace/name``) since the start: ``replica_hours`` (ready pods
        × hours), ``under_provisioned_minutes`` (utilisation above ``overload`` or no
        ready pod), ``unhealthy_minutes`` (see ``Incident``), ``peak_utilization``."""
        rows = self.store.rows
        out = {}
        for i, spec in enumerate(self.specs):
            load = self._load[:rows, i]
            out[spec.key] = {
                "replica_hours": float(self._ready[:rows, i].sum()) * self.dt / 3600.0,
                "under_provisioned_minutes": float((load > overload).sum()) * self.dt / 60.0,
                "unhealthy_minutes": float(self._unhealthy[:rows, i].sum()) * self.dt / 60.0,
                "peak_utilization": float(np.max(load, initial=0.0)),
            }
        return out

    def series_count(self) -> int:
        """Series with at least one sample so far."""
        return sum(
            1 for i in range(len(self.store.series)) if self.store.has_data(i, 0, self.store.rows)
        )
