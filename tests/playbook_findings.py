"""Builders of ``Finding`` values for the playbook tests (what the agent hands playbooks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from vigil.core import Anomaly, Finding, Forecast, ObjectRef, Severity

T0 = datetime.fromisoformat("2026-11-23T12:00:00+00:00")


def anomaly(
    metric: str = "http_request_duration_seconds:p99",
    labels: Mapping[str, str] | None = None,
    *,
    severity: Severity = Severity.WARNING,
    at: datetime = T0,
    target: ObjectRef | None = None,
    start: datetime | None = None,
) -> Finding:
    labels = dict(labels if labels is not None else {"namespace": "shop", "service": "api"})
    a = Anomaly(
        metric=metric,
        labels=labels,
        start=start or at - timedelta(minutes=5),
        end=at,
        score=0.99,
        severity=severity,
        value=0.9,
        expected_low=0.1,
        expected_high=0.2,
        detector="test",
        detector_version="1",
        unit="seconds",
    )
    return Finding(
        kind="anomaly",
        subject=a.series,
        title=a.summary(),
        severity=severity,
        observed_at=at,
        started_at=a.start,
        labels=labels,
        target=target,
        anomaly=a,
    )


def forecast(
    metric: str = "http_requests:rate5m",
    *,
    peak: float = 150.0,
    details: Mapping[str, Any] | None = None,
    at: datetime = T0,
    labels: Mapping[str, str] | None = None,
) -> Finding:
    labels = dict(labels if labels is not None else {"namespace": "shop", "service": "api"})
    ts = at.timestamp() + np.arange(1, 61) * 60.0
    mean = np.linspace(50, peak * 0.9, ts.size)
    fc = Forecast(
        metric=metric,
        labels=labels,
        made_at=at,
        timestamps=ts,
        mean=mean,
        quantiles={0.1: mean * 0.9, 0.9: np.linspace(55, peak, ts.size)},
        model="test",
        model_version="1",
    )
    return Finding(
        kind="forecast",
        subject=fc.series,
        title=f"{metric} forecast to reach {peak:g}",
        severity=Severity.WARNING,
        observed_at=at,
        started_at=at,
        labels=labels,
        forecast=fc,
        details=dict(details or {}),
    )


def condition(
    kind: str,
    target: ObjectRef,
    *,
    count: int = 1,
    at: datetime = T0,
    labels: Mapping[str, str] | None = None,
    resolved_at: datetime | None = None,
) -> Finding:
    return Finding(
        kind="condition",
        subject=f"{target}|{kind}",
        title=f"{target}: {kind}",
        severity=Severity.WARNING,
        observed_at=at,
        started_at=at - timedelta(minutes=2),
        labels=dict(labels or {}),
        target=target,
        details={"condition": kind, "count": count},
        resolved_at=resolved_at,
    )


def alert(
    name: str,
    labels: Mapping[str, str],
    *,
    at: datetime = T0,
    resolved_at: datetime | None = None,
) -> Finding:
    return Finding(
        kind="alert",
        subject=f"alert|{name}|{sorted(labels.items())}",
        title=name,
        severity=Severity.CRITICAL,
        observed_at=at,
        started_at=at - timedelta(minutes=1),
        labels={"alertname": name, **labels},
        resolved_at=resolved_at,
    )
