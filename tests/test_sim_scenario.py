"""The default scenario is big enough to be honest, seeded, and replayable without an
agent; the exposition endpoint serves it to a Prometheus scraper."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vigil.sim.exposition import ExpositionServer, render
from vigil.sim.faults import FaultKind
from vigil.sim.scenario import (
    build_twin,
    default_scenario,
    replay_without_agent,
    small_scenario,
)
from vigil.sim.twin import Twin

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def demo() -> Twin:
    scenario = default_scenario(seed=3, days=1, quiet=timedelta(hours=2))
    twin = build_twin(scenario)
    twin.run(timedelta(hours=3))
    return twin


def test_default_scenario_is_big_enough(demo: Twin) -> None:
    workloads = demo.cluster.list_workloads()
    assert len(workloads) >= 12
    assert len(demo.cluster.list_namespaces()) >= 3
    assert len(demo.cluster.list_nodes()) >= 3
    assert len(demo.cluster.list_hpas()) >= 5
    assert demo.series_count() >= 500
    assert all(w.ready_replicas == w.replicas for w in workloads if w.ref.name != "etl-runner")
    names = set(demo.store.by_name)
    for metric in (
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_pod_container_status_restarts_total",
        "kube_pod_status_phase",
        "kube_deployment_status_replicas_available",
        "kube_pod_container_resource_limits",
        "kube_node_status_condition",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
    ):
        assert metric in names


def test_schedule_has_every_fault_kind_after_the_quiet_start() -> None:
    scenario = default_scenario(seed=11, days=3)
    kinds = {f.kind for f in scenario.faults}
    assert kinds == set(FaultKind)
    assert all(f.start >= scenario.start + timedelta(hours=12) for f in scenario.faults)
    assert all(f.end <= scenario.end for f in scenario.faults)
    assert default_scenario(seed=11, days=3) == scenario
    assert default_scenario(seed=12, days=3).faults != scenario.faults
    with pytest.raises(ValueError, match="one per fault kind"):
        default_scenario(incidents=3)


def test_same_seed_gives_identical_series_and_another_seed_does_not() -> None:
    scenario = small_scenario(seed=5)
    runs = []
    for _ in range(2):
        twin = build_twin(scenario)
        twin.run(timedelta(hours=1))
        runs.append(twin)
    a, b = runs
    assert [s.labels for s in a.store.series] == [s.labels for s in b.store.series]
    assert np.array_equal(
        a.store.data[: a.store.rows, : a.store.columns],
        b.store.data[: b.store.rows, : b.store.columns],
        equal_nan=True,
    )
    q = "sum by (service) (rate(http_requests_total[5m]))"
    hour = timedelta(hours=1)
    assert a.metrics.query_range(q, a.now - hour, a.now, timedelta(minutes=1)) == (
        b.metrics.query_range(q, b.now - hour, b.now, timedelta(minutes=1))
    )
    other = build_twin(small_scenario(seed=6))
    other.run(timedelta(hours=1))
    assert other.metrics.query(q)[0].value != a.metrics.query(q)[0].value


def test_replay_without_agent_runs_the_same_seed_to_the_end() -> None:
    scenario = small_scenario(seed=2, days=0.05)
    baseline = replay_without_agent(scenario)
    assert baseline.now == scenario.end
    twin = build_twin(scenario)
    twin.advance_to(scenario.end)
    q = 'sum(rate(http_requests_total{service="cart"}[5m]))'
    assert twin.metrics.query(q) == baseline.metrics.query(q)


def test_actions_do_not_change_demand() -> None:
    """The agent's actions change capacity, never the traffic the world sends."""
    scenario = small_scenario(seed=4)
    calm, acted = build_twin(scenario), build_twin(scenario)
    acted.cluster.scale(acted.cluster.list_workloads("shop")[0].ref, 6, dry_run=False)
    calm.run(timedelta(minutes=30))
    acted.run(timedelta(minutes=30))
    q = 'sum(rate(http_requests_total{service="cart"}[5m]))'
    assert acted.metrics.query(q)[0].value == pytest.approx(calm.metrics.query(q)[0].value)


def test_exposition_is_scrapable_by_a_prometheus_parser(demo: Twin) -> None:
    with ExpositionServer(demo.store, host="127.0.0.1", port=0) as server:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url.replace("/metrics", "/nope"), timeout=5)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["http_requests"].type == "counter"
    assert families["container_memory_working_set_bytes"].type == "gauge"
    samples = sum(len(f.samples) for f in families.values())
    assert samples >= 500
    # The exposition carries exactly the current values PromQL sees.
    served = {
        s.labels["pod"]: s.value for s in families["container_memory_working_set_bytes"].samples
    }
    queried = {
        s.labels["pod"]: s.value for s in demo.metrics.query("container_memory_working_set_bytes")
    }
    assert served == queried
    assert render(build_twin(small_scenario()).store).count("# TYPE") >= 20


def test_port_in_use_is_a_clear_error(demo: Twin) -> None:
    with (
        ExpositionServer(demo.store, port=0) as server,
        pytest.raises(OSError, match="choose another port"),
    ):
        ExpositionServer(demo.store, port=server.port)


def test_public_surface_is_declared() -> None:
    import types

    import vigil.sim

    public = {
        name
        for name in dir(vigil.sim)
        if not name.startswith("_") and not isinstance(getattr(vigil.sim, name), types.ModuleType)
    }
    assert public == set(vigil.sim.__all__)


def test_settings_reject_unknown_keys_and_bad_values() -> None:
    from pydantic import ValidationError

    from vigil.sim.settings import SimSettings

    assert SimSettings().step == timedelta(seconds=30)
    with pytest.raises(ValidationError, match="step_seconds"):
        SimSettings(step_seconds=5)
    with pytest.raises(ValidationError, match="extra"):
        SimSettings.model_validate({"seeds": 3})
