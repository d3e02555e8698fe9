"""Fixtures for the store tests: a real SQLite file per test and value factories."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionKind,
    Anomaly,
    Finding,
    FindingKind,
    Forecast,
    IncidentState,
    ManualClock,
    Mode,
    Notification,
    ObjectRef,
    Plan,
    Severity,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CART = ObjectRef.parse("deployment/shop/cart")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "vigil.db"


@pytest.fixture
def store(db_path: Path, clock: ManualClock) -> Iterator[SqliteStore]:
    with SqliteStore.open(db_path, clock=clock) as opened:
        yield opened


def make_anomaly(start: datetime = T0, *, service: str = "checkout") -> Anomaly:
    return Anomaly(
        metric="http_request_duration_seconds",
        labels={"service": service, "quantile": "0.99"},
        start=start,
        end=start + timedelta(minutes=5),
        score=0.97,
        severity=Severity.CRITICAL,
        value=0.87,
        expected_low=0.12,
        expected_high=0.18,
        detector="ensemble",
        detector_version="1.2",
        unit="seconds",
        description="p99 latency",
    )


def make_forecast(made_at: datetime = T0, *, level: float = 10.0) -> Forecast:
    ts = np.arange(6, dtype=np.float64) * 60 + made_at.timestamp()
    mean = np.array([level, level + 1, np.nan, level + 3, level + 2, level])
    return Forecast(
        metric="http_requests_per_second",
        labels={"service": "checkout"},
        made_at=made_at,
        timestamps=ts,
        mean=mean,
        quantiles={0.1: mean - 1, 0.9: mean + 1},
        model="holt-winters",
        model_version="3",
        unit="req/s",
    )


def make_finding(
    start: datetime = T0, *, service: str = "checkout", resolved_at: datetime | None = None
) -> Finding:
    anomaly = make_anomaly(start, service=service)
    return Finding(
        kind=FindingKind.ANOMALY,
        subject=anomaly.series,
        title=f"p99 latency high on {service}",
        severity=Severity.CRITICAL,
        observed_at=start + timedelta(minutes=5),
        started_at=start,
        labels={"service": service},
        target=ObjectRef("deployment", "shop", service),
        anomaly=anomaly,
        details={"runbook": "https://runbooks/latency", "peers": ["a", "b"], "n": 3},
        resolved_at=resolved_at,
    )


def make_plan(
    finding_id: str = "f-1",
    *,
    playbook: str = "scale-out",
    target: ObjectRef = CART,
    replicas: int = 4,
    mode: Mode = Mode.AUTO,
) -> Plan:
    return Plan(
        finding_id=finding_id,
        playbook=playbook,
        step=0,
        action=ActionKind.SCALE,
        target=target,
        params={"replicas": replicas},
        mode=mode,
        created_at=T0,
        reason="p99 latency 870 ms, expected 120–180 ms",
    )


def make_notification(
    incident: str = "inc-1", state: IncidentState = IncidentState.DETECTED, revision: int = 0
) -> Notification:
    return Notification(
        incident_key=incident,
        dedupe_key=f"{incident}:{state}:{revision}",
        state=state,
        severity=Severity.WARNING,
        title="p99 latency high on checkout",
        text="p99 latency 870 ms, expected 120–180 ms",
        created_at=T0,
        namespace="shop",
        fields={"playbook": "scale-out", "replicas": 4},
    )


class Values:
    """The factories and constants above, handed to tests as the ``values`` fixture
    (test modules cannot import conftest under ``--import-mode=importlib``)."""

    T0 = T0
    CART = CART
    anomaly = staticmethod(make_anomaly)
    forecast = staticmethod(make_forecast)
    finding = staticmethod(make_finding)
    plan = staticmethod(make_plan)
    notification = staticmethod(make_notification)


@pytest.fixture(scope="session")
def values() -> type[Values]:
    return Values
