"""Domain values validate when built and explain themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vigil.core import (
    ActionKind,
    Anomaly,
    Finding,
    FindingKind,
    Forecast,
    ManualClock,
    Mode,
    ObjectRef,
    Plan,
    RetryableError,
    Series,
    Severity,
    series_id,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_series_rejects_unsorted_and_misaligned() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Series("up", {}, [2.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        Series("up", {}, [1.0, 2.0], [1.0])


def test_series_is_read_only_and_nan_aware() -> None:
    s = Series("up", {"job": "a"}, [1.0, 2.0, 3.0], [1.0, np.nan, 3.0])
    assert s.valid_count() == 2
    with pytest.raises(ValueError):
        s.values[0] = 5.0
    assert s == Series("up", {"job": "a"}, [1.0, 2.0, 3.0], [1.0, np.nan, 3.0])
    assert s.tail(2).timestamps.tolist() == [2.0, 3.0]


def test_series_id_is_canonical_and_escaped() -> None:
    assert series_id("m", {"b": "2", "a": '1"x'}) == 'm{a="1\\"x",b="2"}'


def test_anomaly_summary_uses_units() -> None:
    a = Anomaly(
        metric="http_request_duration_seconds",
        labels={"service": "checkout"},
        start=T0,
        end=T0 + timedelta(minutes=5),
        score=0.97,
        severity=Severity.CRITICAL,
        value=0.87,
        expected_low=0.12,
        expected_high=0.18,
        detector="ensemble",
        detector_version="1",
        unit="seconds",
        description="p99 latency",
    )
    assert a.summary() == "p99 latency 870 ms, expected 120–180 ms"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("score", 1.5, "score must be in"), ("start", datetime(2026, 1, 1), "timezone-aware")],
)
def test_anomaly_validation(field: str, value: object, message: str) -> None:
    kwargs = {
        "metric": "m",
        "labels": {},
        "start": T0,
        "end": T0,
        "score": 0.5,
        "severity": "warning",
        "value": 1.0,
        "expected_low": 0.0,
        "expected_high": 2.0,
        "detector": "d",
        "detector_version": "1",
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=message):
        Anomaly(**kwargs)  # type: ignore[arg-type]


def test_forecast_rejects_crossing_bands() -> None:
    with pytest.raises(ValueError, match="cross"):
        Forecast("m", {}, T0, [1.0, 2.0], [1.0, 1.0], {0.1: [1.0, 1.0], 0.9: [0.5, 2.0]}, "x", "1")


def test_object_ref_parse_and_validation() -> None:
    ref = ObjectRef.parse("deployment/payments/api")
    assert (ref.kind, ref.namespace, ref.name) == ("Deployment", "payments", "api")
    assert str(ref) == "deployment/payments/api"
    assert str(ObjectRef.parse("node/node-a")) == "node/node-a"
    with pytest.raises(ValueError, match="KIND/NAMESPACE/NAME"):
        ObjectRef.parse("api")
    with pytest.raises(ValueError, match="DNS-1123"):
        ObjectRef("deployment", "Bad_NS", "api")


def test_finding_id_is_stable_and_plan_key_deterministic() -> None:
    a = Finding(FindingKind.ALERT, "fp-1", "HighLatency", "warning", T0, T0)
    b = Finding(FindingKind.ALERT, "fp-1", "HighLatency", "critical", T0 + timedelta(1), T0)
    assert a.id == b.id
    ref = ObjectRef.parse("deployment/shop/cart")
    p1 = Plan(a.id, "scale-out", 0, ActionKind.SCALE, ref, {"replicas": 4}, Mode.AUTO, T0)
    p2 = Plan(a.id, "scale-out", 0, "scale", ref, {"replicas": 4}, "auto", T0 + timedelta(1))
    assert p1.idempotency_key == p2.idempotency_key
    assert p1.mutating


def test_retryable_error_and_clock() -> None:
    assert RetryableError("x", delay=3).delay == 3.0
    clock = ManualClock(T0)
    clock.advance(60)
    assert clock.now() == T0 + timedelta(minutes=1)
    with pytest.raises(ValueError):
        clock.advance(-1)
