"""A per-pod shift explained by the workload's pod count changing opens no finding;
the same shift the other way, or long after the change, still does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vigil.agent.replica_changes import ReplicaChanges, workload_of_pod
from vigil.core import Anomaly, Series, Severity

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
PODS = ["checkout-7d9f5c8b6d-aaaaa", "checkout-7d9f5c8b6d-bbbbb", "checkout-7d9f5c8b6d-ccccc"]


def cpu(pod: str, now: datetime) -> Series:
    ts = now.timestamp() - 60.0 * np.arange(10, 0, -1) + 60.0
    return Series("container_cpu_cores", {"namespace": "shop", "pod": pod}, ts, np.ones(10))


def anomaly(pod: str, value: float, at: datetime) -> Anomaly:
    return Anomaly(
        metric="container_cpu_cores",
        labels={"namespace": "shop", "pod": pod},
        start=at - timedelta(minutes=5),
        end=at,
        score=0.9,
        severity=Severity.WARNING,
        value=value,
        expected_low=0.9,
        expected_high=1.1,
        detector="ensemble",
        detector_version="1",
    )


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("checkout-7d9f5c8b6d-x7k2p", "checkout"),
        ("etl-runner-jjh66gnmdn-sfp5h", "etl-runner"),
        ("orders-db-0", "orders-db"),
        ("node-exporter-x7k2p", "node-exporter"),
        ("standalone", None),
    ],
)
def test_workload_of_pod_follows_kubernetes_naming(pod: str, workload: str | None) -> None:
    assert workload_of_pod(pod) == workload


def test_a_scale_up_explains_siblings_dropping_not_rising() -> None:
    changes = ReplicaChanges(hold=1800)
    changes.observe([cpu(p, T0) for p in PODS], T0)
    assert not changes.explains(anomaly(PODS[0], 0.7, T0), T0), "no change seen yet"
    later = T0 + timedelta(minutes=10)
    new = "checkout-7d9f5c8b6d-ddddd"
    changes.observe([cpu(p, later) for p in [*PODS, new]], later)
    assert changes.explains(anomaly(PODS[0], 0.7, later), later), "4 pods share the load"
    assert not changes.explains(anomaly(PODS[0], 1.5, later), later), "a rise is not explained"
    much_later = later + timedelta(minutes=40)
    changes.observe([cpu(p, much_later) for p in [*PODS, new]], much_later)
    assert not changes.explains(anomaly(PODS[0], 0.7, much_later), much_later), "hold is over"


def test_a_pod_that_stops_reporting_explains_the_others_rising() -> None:
    changes = ReplicaChanges(hold=1800)
    changes.observe([cpu(p, T0) for p in PODS], T0)
    later = T0 + timedelta(minutes=10)
    # the third pod's series ends at T0: stale by now
    changes.observe([cpu(PODS[0], later), cpu(PODS[1], later), cpu(PODS[2], T0)], later)
    assert changes.explains(anomaly(PODS[0], 1.4, later), later)
    assert not changes.explains(anomaly(PODS[0], 0.6, later), later)
