"""The digital twin: a simulated cluster (``Cluster``) and its workload metrics
(``MetricSource``) for ``vigil demo``, backtests and tests. Imports only ``vigil.core``.

Start with ``default_scenario()`` and ``build_twin()``; step with ``Twin.step()`` /
``Twin.advance_to()``; the ports are ``twin.cluster`` and ``twin.metrics``; the ground
truth is ``twin.incidents()``. ``docs/sim.md`` describes the model and the PromQL subset.
"""

from vigil.sim.cluster import SimCluster
from vigil.sim.exposition import ExpositionServer, render
from vigil.sim.faults import Fault, FaultKind, Incident
from vigil.sim.live import run_live, serve_live
from vigil.sim.metrics import SimMetrics
from vigil.sim.scenario import (
    DEFAULT_START,
    Scenario,
    build_twin,
    default_scenario,
    default_workloads,
    replay_without_agent,
    scenario_from_settings,
    small_scenario,
)
from vigil.sim.settings import SimSettings
from vigil.sim.twin import NodeSpec, Twin
from vigil.sim.workload import WorkloadSpec

__all__ = [
    "DEFAULT_START",
    "ExpositionServer",
    "Fault",
    "FaultKind",
    "Incident",
    "NodeSpec",
    "Scenario",
    "SimCluster",
    "SimMetrics",
    "SimSettings",
    "Twin",
    "WorkloadSpec",
    "build_twin",
    "default_scenario",
    "default_workloads",
    "render",
    "replay_without_agent",
    "run_live",
    "scenario_from_settings",
    "serve_live",
    "small_scenario",
]
