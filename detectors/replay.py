"""The scaling replay benchmark: a demand trace through vigil's policy and an emulated HPA.

``replay_scaling`` is what ``vigil bench scaling TRACE.csv`` calls (and
``bench/scaling.py``). Both controllers run on the same 15 s grid, see the demand only
through a metric that arrives ``delay_s`` late, and get pods that turn ready
``lag_s`` after creation. Scores cover the time after the warm-up (the first 7 days,
at most half the trace), for both alike. Every modelling choice is in ``docs/scaling.md``.
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from vigil.core import ConfigError
from vigil.detectors.hpa import HpaBehaviour, HpaEmulator
from vigil.detectors.scaling import PredictiveScaler
from vigil.detectors.scaling_settings import ScalingSettings
from vigil.detectors.traces import Trace, default_capacity, read_trace

__all__ = [
    "Controller",
    "HpaController",
    "HpaWithFloor",
    "ReplayReport",
    "ReplayRun",
    "ScalingScore",
    "format_report",
    "replay_scaling",
    "simulate",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
WEEK_S = 7 * 86400.0


class Controller(Protocol):
    """What the replay drives: told each metric point as it becomes visible, asked each sync."""

    def observe(self, timestamp: float, value: float) -> None: ...

    def decide(
        self, now: float, observed_demand: float, ready: int, unready: int, current: int
    ) -> int: ...


class HpaController:
    """Adapts ``HpaEmulator`` to the replay: it only looks at the current metric."""

    def __init__(self, emulator: HpaEmulator) -> None:
        self.emulator = emulator

    def observe(self, timestamp: float, value: float) -> None:
        """The HPA keeps no history of the metric."""

    def decide(
        self, now: float, observed_demand: float, ready: int, unready: int, current: int
    ) -> int:
        self.emulator.replicas = current
        return self.emulator.sync(now, observed_demand, ready, unready)


class HpaWithFloor:
    """vigil in ``hpa-floor`` mode: the HPA scales on its metric, vigil moves its minReplicas.

    vigil plans against its own previous floor (the only thing it writes), and the HPA
    applies the floor on its next sync, as after a ``patch-hpa`` of ``minReplicas``.
    """

    def __init__(self, emulator: HpaEmulator, scaler: PredictiveScaler) -> None:
        self.emulator = emulator
        self.scaler = scaler
        self.floor = emulator.behaviour.min_replicas

    def observe(self, timestamp: float, value: float) -> None:
        self.scaler.observe(timestamp, value)

    def decide(
        self, now: float, observed_demand: float, ready: int, unready: int, current: int
    ) -> int:
        plan = self.scaler.plan(now, observed_demand, self.floor)
        self.floor = max(plan.replicas, self.emulator.behaviour.min_replicas)
        self.emulator.replicas = current
        return self.emulator.sync(now, observed_demand, ready, unready, min_replicas=self.floor)


@dataclass(frozen=True)
class ScalingScore:
    """One controller's score over the scored part of a replay."""

    under_minutes: float
    under_percent: float
    replica_hours: float
    actions: int


@dataclass(frozen=True, eq=False)
class ReplayRun:
    """One controller's replay: desired replicas and ready pods at each grid time."""

    name: str
    times: FloatArray
    desired: IntArray
    ready: IntArray
    score: ScalingScore


@dataclass(frozen=True, eq=False)
class ReplayReport:
    """The replay of one trace: the settings used and a run per controller."""

    trace: str
    capacity: float
    lag_s: float
    delay_s: float
    interpolate: bool
    max_replicas: int
    scored_from: float
    runs: dict[str, ReplayRun] = field(default_factory=dict)


def simulate(
    trace: Trace,
    controller: Controller,
    *,
    name: str,
    capacity: float,
    lag_s: float,
    delay_s: float,
    interpolate: bool,
    initial_replicas: int,
    scored_from: float,
    sync_s: float = 15.0,
) -> ReplayRun:
    """Run ``controller`` over ``trace`` on a ``sync_s`` grid and score it.

    At grid time ``now`` the controller has seen the trace points stamped at or before
    ``now - delay_s`` and the demand as it was at ``now - delay_s``; pods it creates at
    ``now`` turn ready at ``now + lag_s``; pods it removes go at once (the youngest
    first, as a ReplicaSet removes not-ready pods first).
    """
    start = float(trace.timestamps[0])
    end = float(trace.timestamps[-1]) + trace.step
    times: FloatArray = start + sync_s * np.arange(
        math.ceil((end - start) / sync_s), dtype=np.float64
    )
    demand = trace.demand_at(times, interpolate=interpolate)
    observed = trace.demand_at(times - delay_s, interpolate=interpolate)
    visible = np.searchsorted(trace.timestamps, times - delay_s, side="right")
    ts_list = trace.timestamps.tolist()
    val_list = trace.values.tolist()
    created: list[float] = [start - lag_s] * initial_replicas
    desired = np.empty(times.size, dtype=np.int64)
    ready_out = np.empty(times.size, dtype=np.int64)
    fed = 0
    for k, now in enumerate(times.tolist()):
        while fed < visible[k]:
            controller.observe(ts_list[fed], val_list[fed])
            fed += 1
        current = len(created)
        ready = bisect.bisect_right(created, now - lag_s)
        want = controller.decide(now, float(observed[k]), ready, current - ready, current)
        if want > current:
            created.extend([now] * (want - current))
        elif want < current:
            del created[want:]
        desired[k] = want
        ready_out[k] = min(ready, want)
    score = _score(
        times,
        demand=demand,
        desired=desired,
        ready=ready_out,
        capacity=capacity,
        scored_from=scored_from,
        sync_s=sync_s,
    )
    return ReplayRun(name, times, desired, ready_out, score)


def _score(
    times: FloatArray,
    *,
    demand: FloatArray,
    desired: IntArray,
    ready: IntArray,
    capacity: float,
    scored_from: float,
    sync_s: float,
) -> ScalingScore:
    scored = times >= scored_from
    if not np.any(scored):
        raise ConfigError("the warm-up covers the whole trace: nothing left to score")
    under = (demand > ready * capacity * (1 + 1e-9)) & scored
    first = int(np.argmax(scored))
    changes = int(np.count_nonzero(np.diff(desired[first - 1 if first else 0 :])))
    return ScalingScore(
        under_minutes=float(under.sum()) * sync_s / 60.0,
        under_percent=100.0 * float(under.sum()) / float(scored.sum()),
        replica_hours=float(desired[scored].sum()) * sync_s / 3600.0,
        actions=changes,
    )


def replay_scaling(
    trace_csv: Path | str | Trace,
    capacity: float | None = None,
    lag_s: float = 60.0,
    out: Path | str | None = None,
    interpolate: bool = False,
    *,
    delay_s: float = 30.0,
    warmup_s: float = WEEK_S,
    target_utilisation: float = 0.7,
    max_replicas: int | None = None,
    config: ScalingSettings | None = None,
    with_floor: bool = False,
) -> ReplayReport:
    """Replay one trace through the HPA emulation and vigil's policy; write vigil's decisions.

    ``capacity`` is the demand one pod serves at 100 % (default: the trace's 95th
    percentile needs 10 pods at ``target_utilisation``); ``max_replicas`` defaults to
    what the trace's peak needs. ``out`` receives vigil's decisions as
    ``timestamp,replicas`` rows, one per change. ``config`` overrides the policy knobs
    (its capacity, lag and replica bounds are taken from this call). ``with_floor`` adds
    a third run, ``floor``: the HPA with vigil moving its minReplicas (``hpa-floor`` mode).
    """
    trace = trace_csv if isinstance(trace_csv, Trace) else read_trace(Path(trace_csv))
    if lag_s < 0 or delay_s < 0:
        raise ConfigError(f"lag ({lag_s} s) and metric delay ({delay_s} s) must be >= 0")
    cap = default_capacity(trace, target=target_utilisation) if capacity is None else capacity
    if cap <= 0:
        raise ConfigError(f"--capacity must be > 0 (demand one pod serves), got {cap}")
    peak_need = math.ceil(float(trace.values.max()) / (cap * target_utilisation) - 1e-9)
    top = max(1, peak_need) if max_replicas is None else max_replicas
    span = float(trace.timestamps[-1] - trace.timestamps[0])
    scored_from = float(trace.timestamps[0]) + min(warmup_s, span / 2)
    first_need = math.ceil(float(trace.values[0]) / (cap * target_utilisation) - 1e-9)
    initial = min(max(1, first_need), top)
    common = {
        "capacity": cap,
        "lag_s": lag_s,
        "delay_s": delay_s,
        "interpolate": interpolate,
        "initial_replicas": initial,
        "scored_from": scored_from,
    }
    hpa = HpaEmulator(
        HpaBehaviour(target_utilisation=target_utilisation, max_replicas=top), cap, initial
    )
    base = config or ScalingSettings(capacity_per_pod=cap)
    policy_config = base.model_copy(
        update={
            "capacity_per_pod": cap,
            "startup_lag_s": lag_s,
            "metric_delay_s": delay_s,
            "max_replicas": top,
            "target_utilisation": target_utilisation,
        }
    )
    report = ReplayReport(
        trace=trace.name,
        capacity=cap,
        lag_s=lag_s,
        delay_s=delay_s,
        interpolate=interpolate,
        max_replicas=top,
        scored_from=scored_from,
    )
    report.runs["hpa"] = simulate(trace, HpaController(hpa), name="hpa", **common)  # type: ignore[arg-type]
    scaler = PredictiveScaler(policy_config)
    report.runs["vigil"] = simulate(trace, scaler, name="vigil", **common)  # type: ignore[arg-type]
    if with_floor:
        hpa2 = HpaEmulator(
            HpaBehaviour(target_utilisation=target_utilisation, max_replicas=top), cap, initial
        )
        floor = HpaWithFloor(hpa2, PredictiveScaler(policy_config))
        report.runs["floor"] = simulate(trace, floor, name="floor", **common)  # type: ignore[arg-type]
    if out is not None:
        write_decisions(Path(out), report.runs["vigil"])
    return report


def write_decisions(path: Path, run: ReplayRun) -> None:
    """``timestamp,replicas`` rows: the first decision and every change after it."""
    try:
        handle = path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write ({exc.strerror})") from exc
    with handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "replicas"])
        previous = -1
        for when, replicas in zip(run.times.tolist(), run.desired.tolist(), strict=True):
            if replicas != previous:
                stamp = datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
                writer.writerow([stamp, replicas])
                previous = replicas


def format_report(reports: list[ReplayReport]) -> str:
    """The replay table: per trace HPA vs vigil, and pooled (sums) when several traces."""
    header = (
        f"{'trace':<42} {'policy':<6} {'under min':>10} {'under %':>8} "
        f"{'replica-h':>10} {'actions':>8}"
    )
    lines = [header, "-" * len(header)]
    pooled: dict[str, list[float]] = {}
    scored_minutes = 0.0
    for rep in reports:
        for name, run in rep.runs.items():
            s = run.score
            lines.append(
                f"{rep.trace:<42} {name:<6} {s.under_minutes:>10.1f} {s.under_percent:>8.3f} "
                f"{s.replica_hours:>10.1f} {s.actions:>8d}"
            )
            acc = pooled.setdefault(name, [0.0, 0.0, 0.0])
            acc[0] += s.under_minutes
            acc[1] += s.replica_hours
            acc[2] += s.actions
        first = next(iter(rep.runs.values()))
        scored_minutes += float(np.count_nonzero(first.times >= rep.scored_from)) * 15.0 / 60.0
    if len(reports) > 1 and scored_minutes > 0:
        for name, (under, hours, actions) in pooled.items():
            lines.append(
                f"{'POOLED':<42} {name:<6} {under:>10.1f} {100 * under / scored_minutes:>8.3f} "
                f"{hours:>10.1f} {int(actions):>8d}"
            )
    for name in (n for n in pooled if n != "hpa" and "hpa" in pooled):
        h, v = pooled["hpa"], pooled[name]
        fewer = 100.0 * (1 - v[0] / h[0]) if h[0] else float("nan")
        more = 100.0 * (v[1] / h[1] - 1) if h[1] else float("nan")
        ratio = v[2] / h[2] if h[2] else float("nan")
        worse = [
            r.trace
            for r in reports
            if r.runs[name].score.under_minutes > r.runs["hpa"].score.under_minutes
        ]
        lines.append(
            f"{name} vs HPA: {fewer:.1f} % fewer under-provisioned minutes, "
            f"{more:+.1f} % replica-hours, {ratio:.2f}x scaling actions; "
            f"traces worse than HPA: {', '.join(worse) if worse else 'none'}"
        )
    return "\n".join(lines)
