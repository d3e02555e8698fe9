"""Runs the twin at wall-clock pace (or faster) while serving its metrics for scraping.

For trying vigil end to end on a laptop: a real Prometheus scrapes
``ExpositionServer`` while ``run_live`` steps the twin whenever enough wall time has
passed (``speed`` simulated seconds per wall second). The twin itself never sleeps;
only this runner waits, through an injectable ``wait`` (tests pass a fake).
``serve_live`` is what a ``vigil sim serve`` command would call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from vigil.core import to_datetime, to_timestamp
from vigil.sim.exposition import ExpositionServer
from vigil.sim.scenario import build_twin, scenario_from_settings
from vigil.sim.settings import SimSettings
from vigil.sim.twin import Twin

__all__ = ["run_live", "serve_live"]

log = logging.getLogger(__name__)


def run_live(
    twin: Twin,
    stop: threading.Event,
    *,
    speed: float = 1.0,
    until: datetime | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    wait: Callable[[float], object] | None = None,
) -> int:
    """Step ``twin`` in pace with wall time × ``speed`` until ``stop`` is set or the twin
    reaches ``until``; returns the number of steps taken."""
    if speed <= 0:
        raise ValueError(f"speed must be > 0 (simulated seconds per wall second), got {speed}")
    pause = wait if wait is not None else stop.wait
    wall0, sim0 = monotonic(), twin.t
    end = to_timestamp(until) if until is not None else float("inf")
    steps = 0
    while not stop.is_set() and twin.t + twin.dt <= end + 1e-9:
        target = min(sim0 + (monotonic() - wall0) * speed, end)
        while twin.t + twin.dt <= target + 1e-9:
            twin.step()
            steps += 1
        pause(max(0.0, (twin.t + twin.dt - target) / speed))
    return steps


def serve_live(
    settings: SimSettings,
    stop: threading.Event,
    *,
    now: datetime,
    port: int = 9464,
    speed: float = 1.0,
    on_ready: Callable[[str, Twin], object] | None = None,
) -> int:
    """Build the default scenario starting at ``now`` (floored to the step), serve
    ``/metrics`` on ``settings.expose_host`` and ``settings.expose_port`` (else
    ``port``; 0 picks a free one), call ``on_ready(url, twin)``, and run until ``stop``
    or the scenario's end. Returns the steps taken."""
    step = settings.step_seconds
    start = to_datetime(to_timestamp(now) // step * step)
    scenario = scenario_from_settings(settings, start=start)
    twin = build_twin(scenario)
    bind = settings.expose_port if settings.expose_port is not None else port
    with ExpositionServer(twin.store, settings.expose_host, bind) as server:
        log.info("serving the twin's metrics at %s (speed %gx)", server.url, speed)
        if on_ready is not None:
            on_ready(server.url, twin)
        return run_live(twin, stop, speed=speed, until=scenario.end)
