"""Settings of the digital twin (the ``sim`` group of vigil's configuration).

Composed into the config file by ``vigil.agent``; read by the ``vigil demo`` wiring to
call ``vigil.sim.scenario.default_scenario`` and, if asked, to start
``vigil.sim.exposition.ExpositionServer``.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SimSettings"]


class SimSettings(BaseModel):
    """How the twin runs: seed, length, step, incidents and the optional scrape endpoint."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(
        7,
        description="Random seed (no unit). The same seed gives the same demand, incidents "
        "and series, so a run with vigil can be compared with the same run without it.",
    )
    days: float = Field(
        3.0,
        gt=0,
        le=30,
        description="Simulated days. 3 covers weekday seasonality and 8 incidents while the "
        "demo stays around a minute of wall time.",
    )
    step_seconds: float = Field(
        30.0,
        ge=15,
        le=300,
        description="Simulation step in seconds. 30 s is a common Prometheus scrape "
        "interval; 15 s is the HPA sync period, the smallest step the HPA model supports.",
    )
    incidents: int = Field(
        8,
        ge=6,
        description="Incidents to inject (count). At least 6: one of each fault kind.",
    )
    quiet_hours: float = Field(
        12.0,
        ge=0,
        description="Hours without incidents at the start, in hours, so detectors can "
        "learn a baseline before the first fault.",
    )
    expose_host: str = Field(
        "127.0.0.1",
        description="Interface for the Prometheus exposition endpoint. Loopback by "
        "default: the twin is for trying vigil on a laptop, not for a network.",
    )
    expose_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="TCP port serving /metrics for a real Prometheus to scrape; unset "
        "(the default) serves nothing, 0 picks a free port.",
    )

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_seconds)

    @property
    def quiet(self) -> timedelta:
        return timedelta(hours=self.quiet_hours)
