"""``vigil demo``: the whole loop on the digital twin at fast-forward, then a report.

Builds the default scenario (``vigil.sim``), runs the agent's real tick (the same
stages ``vigil run`` uses) against the twin's ``MetricSource`` and ``Cluster`` with a
``ManualClock``, replays the same seed with vigil off, scores the run against the
twin's ground truth and writes a text and an HTML report plus the store, so
``vigil ask`` and ``vigil status`` can answer from it afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.agent.demo._report import plot_data, render_text, write_html
from vigil.agent.demo._scoring import DemoScore, IncidentOutcome, score_run

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.detectors.scaling_settings import ScalingGroup

__all__ = ["DemoResult", "DemoScore", "IncidentOutcome", "render_text", "run_demo"]

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class DemoResult:
    score: DemoScore
    seed: int
    days: float
    ticks: int
    tick_seconds: float
    wall_seconds: float
    out_dir: Path
    store_path: Path
    notifications_path: Path
    stage_seconds: dict[str, float]
    tick_errors: int
    sim_start: datetime | None = None
    html_path: Path | None = None


def demo_config(config: Config, out_dir: Path) -> Config:
    """The user's config with what the twin needs: acting (it is simulated), a store and
    a notification file under ``out_dir``."""
    guardrails = config.guardrails.model_copy(update={"dry_run": False})
    from vigil.playbooks import builtin_playbooks

    auto = dict.fromkeys((b.name for b in builtin_playbooks()), "auto")
    playbooks = config.playbooks.model_copy(update={"modes": {**auto, **config.playbooks.modes}})
    store = config.store.model_copy(update={"path": out_dir / "vigil.db"})
    notify = config.notify.model_copy(update={"file": out_dir / "notifications.jsonl"})
    scaling = config.scaling
    if not scaling.workloads:
        scaling = twin_scaling(config)
    return config.model_copy(
        update={
            "guardrails": guardrails,
            "playbooks": playbooks,
            "store": store,
            "notify": notify,
            "scaling": scaling,
        }
    )


def _write_config(cfg: Config, path: Path, *, as_of: datetime) -> None:
    """A config file for looking at the demo afterwards (`vigil --config … status|ask`):
    its store, the scaled workloads, questions answered as of the simulated end, and no
    waiting on a Prometheus that the demo never had; the rest at defaults."""
    import yaml

    data = {
        "store": {"path": str(cfg.store.path.resolve())},
        "scaling": cfg.scaling.model_dump(mode="json"),
        "nlq": {"as_of": as_of.isoformat()},
        "prometheus": {"retries": 0, "timeout": 2.0},
    }
    header = (
        "# Written by `vigil demo`: the demo's store and scaled workloads; `vigil ask`\n"
        "# answers as of the end of the simulated days (there is no Prometheus behind it).\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def twin_scaling(config: Config) -> ScalingGroup:
    """Predictive scaling for the twin's HTTP services, configured as an operator would:
    demand is the request rate, capacity per pod and start-up lag are the services' own,
    and services without an HPA never go below the replicas they run with."""
    from vigil.detectors.scaling_settings import ScalingWorkload
    from vigil.sim import default_workloads

    workloads = []
    for spec in default_workloads():
        if not spec.http:
            continue
        overrides: dict[str, object] = {
            "capacity_per_pod": spec.capacity_rps,
            "startup_lag_s": spec.startup_s,
        }
        if spec.hpa is None:
            overrides.update(min_replicas=spec.replicas, max_replicas=3 * spec.replicas)
        workloads.append(
            ScalingWorkload(
                namespace=spec.namespace,
                name=spec.name,
                demand_query=f'sum(rate(http_requests_total{{namespace="{spec.namespace}",'
                f'service="{spec.name}"}}[5m]))',
                overrides=overrides,
            )
        )
    # Hourly stored forecasts are plenty for the report and `vigil ask`; the decisions
    # themselves use the policy's own forecast every tick.
    return config.scaling.model_copy(
        update={"enabled": True, "workloads": workloads, "forecast_every_s": 3600.0}
    )


def run_demo(
    config: Config,
    out_dir: Path,
    *,
    tick_seconds: float = 300.0,
    warmup_days: float = 2.0,
    progress: Progress | None = None,
    html: bool = True,
) -> DemoResult:
    """Run the demo into ``out_dir`` (replacing a previous demo there) and score it.

    The twin first runs ``warmup_days`` on its own, as a cluster does before vigil is
    installed: the agent's first fetch finds that history (as it would in Prometheus) and
    the detectors learn the daily shape from it. Incidents come after the warm-up.
    """
    from vigil.agent.demo._stages import demo_stages
    from vigil.agent.wiring import build_loop, open_store
    from vigil.core import ManualClock
    from vigil.sim import build_twin, default_scenario, replay_without_agent

    if tick_seconds < config.sim.step_seconds:
        raise ValueError(
            f"the agent cannot tick every {tick_seconds:g} s: the twin steps every "
            f"{config.sim.step_seconds:g} s"
        )
    began = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("vigil.db", "vigil.db-wal", "vigil.db-shm", "notifications.jsonl"):
        (out_dir / stale).unlink(missing_ok=True)
    cfg = demo_config(config, out_dir)
    agent = cfg.agent.model_copy(update={"interval": tick_seconds})
    cfg = cfg.model_copy(update={"agent": agent})
    if warmup_days < 0:
        raise ValueError(f"warmup_days must be >= 0, got {warmup_days}")
    sim = cfg.sim
    scenario = default_scenario(
        sim.seed,
        sim.days + warmup_days,
        step=sim.step,
        quiet=sim.quiet + timedelta(days=warmup_days),
        incidents=sim.incidents,
    )
    agent_start = scenario.start + timedelta(days=warmup_days)
    clock = ManualClock(scenario.start)
    twin = build_twin(scenario, clock=clock)
    if progress is not None:
        progress(0.0, f"the twin runs {warmup_days:g} days of history before vigil starts")
    twin.advance_to(agent_start)
    _write_config(cfg, out_dir / "vigil.yaml", as_of=scenario.end)
    store = open_store(cfg, clock=clock)
    try:
        engine, extra = demo_stages(cfg, twin=twin, store=store, clock=clock)
        loop = build_loop(
            cfg,
            source=twin.metrics,
            store=store,
            clock=clock,
            engine=engine,
            extra_stages=extra,
            cluster=twin.cluster,
        )
        stage_seconds: dict[str, float] = {}
        ticks = errors = 0
        step = timedelta(seconds=tick_seconds)
        total = (scenario.end - agent_start) / step
        when = agent_start + step
        while when <= scenario.end:
            twin.advance_to(when)
            outcome = loop.tick()
            ticks += 1
            errors += bool(outcome.errors)
            for name, secs in outcome.durations.items():
                stage_seconds[name] = stage_seconds.get(name, 0.0) + secs
            if progress is not None:
                progress(
                    ticks / total, f"{when:%a %H:%M} · {len(outcome.context.findings)} findings"
                )
            when += step
        if progress is not None:
            progress(1.0, "replaying the same seed with vigil off")
        baseline = replay_without_agent(scenario)
        notes = cfg.notify.file
        sent = 0
        if notes and notes.exists():
            with notes.open(encoding="utf-8") as lines:
                sent = sum(1 for _ in lines)
        scaled = [w.key for w in cfg.scaling.workloads]
        score = score_run(
            twin, baseline, store, start=agent_start, notifications=sent, scaled=scaled
        )
        data = plot_data(twin, agent_start, score) if html else None
    finally:
        store.close()
    assert cfg.notify.file is not None
    result = DemoResult(
        score=score,
        seed=cfg.sim.seed,
        days=cfg.sim.days,
        ticks=ticks,
        tick_seconds=tick_seconds,
        wall_seconds=time.perf_counter() - began,
        out_dir=out_dir,
        store_path=cfg.store.path,
        notifications_path=cfg.notify.file,
        stage_seconds=stage_seconds,
        tick_errors=errors,
        sim_start=agent_start,
        html_path=out_dir / "report.html" if data is not None else None,
    )
    (out_dir / "report.txt").write_text(render_text(result) + "\n", encoding="utf-8")
    if data is not None and result.html_path is not None:
        if progress is not None:
            progress(1.0, "drawing the HTML report")
        write_html(result, data, result.html_path)
    return result
