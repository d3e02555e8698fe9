"""A scale-out must not fire on a drop: anomaly direction in playbook matching."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigil.core import Anomaly, Finding, FindingKind, Severity
from vigil.playbooks import builtin_playbooks
from vigil.playbooks.matching import triggers

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def cpu_finding(value: float) -> Finding:
    anomaly = Anomaly(
        metric="container_cpu_cores", labels={"namespace": "shop", "pod": "cart-1"},
        start=T0, end=T0, score=0.99, severity=Severity.CRITICAL, value=value,
        expected_low=0.4, expected_high=0.6, detector="ensemble", detector_version="1",
    )  # fmt: skip
    return Finding(FindingKind.ANOMALY, anomaly.series, anomaly.summary(), Severity.CRITICAL,
                   T0, T0, labels=anomaly.labels, anomaly=anomaly)  # fmt: skip


@pytest.mark.parametrize(("value", "fires"), [(0.95, True), (0.1, False), (0.5, False)])
def test_saturation_scale_out_fires_only_above_the_expected_range(
    value: float, fires: bool
) -> None:
    book = next(b for b in builtin_playbooks() if b.name == "saturation-scale-out")
    assert book.when.anomaly is not None and book.when.anomaly.direction == "above"
    assert triggers(cpu_finding(value), book) is fires
