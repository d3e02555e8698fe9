"""Backtest: per playbook, how often it would have fired, on what, and what guardrails said."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.playbook_findings import T0, anomaly, condition
from tests.playbook_twin import TwinCluster, full_twin
from vigil.core import Severity
from vigil.playbooks import GuardrailSettings, backtest, builtin_playbooks

BOOKS = builtin_playbooks()


def flapping_cpu(minutes: list[int], ns: str = "shop", name: str = "web") -> list:
    """A CPU anomaly that comes back every few minutes: each return is a new finding."""
    return [
        anomaly(
            "container_cpu_usage_seconds:rate5m",
            {"namespace": ns, "deployment": name},
            severity=Severity.CRITICAL,
            at=T0 + timedelta(minutes=m),
            start=T0 + timedelta(minutes=m - 1),
        )
        for m in minutes
    ]


def test_backtest_reports_firings_and_guardrail_decisions() -> None:
    findings = flapping_cpu([0, 5, 20, 40, 56, 57, 58, 61, 62])
    findings.append(findings[0])  # the same finding seen on a later tick
    findings.append(
        anomaly(
            "queue_depth", {"namespace": "shop", "service": "api"}, at=T0 + timedelta(minutes=3)
        )
    )
    report = backtest(
        findings,
        BOOKS,
        start=T0 - timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        guardrails=GuardrailSettings(max_actions_per_namespace_per_hour=3),
    )
    assert report.findings == 11 and report.repeats == 1 and report.unmatched == 0
    by_name = {s.name: s for s in report.playbooks}
    scale = by_name["saturation-scale-out"]
    assert scale.fired == 9
    assert scale.would_act == 4  # cooldown 15 min and a budget of 3/hour in shop
    assert scale.refused["cooldown"] == 2 and scale.refused["budget-namespace"] == 3
    assert dict(scale.targets) == {"deployment/shop/web": 9}
    assert by_name["notify-only"].fired == 1 and by_name["notify-only"].would_act == 1
    assert [f.decision for f in report.firings if f.playbook == "notify-only"] == ["notify"]
    text = report.render()
    assert "saturation-scale-out: fired 9, would have acted 4" in text
    assert "budget of 3 actions/hour in namespace shop spent" in text
    assert "blast radius, storm protection and rollout age were not evaluated" in text
    json.dumps(report.to_dict())


def test_backtest_with_a_cluster_checks_blast_radius_and_follows_pods() -> None:
    cluster = TwinCluster(full_twin())
    pod = cluster.list_pods("data", {"app": "orders-db"})[0].ref  # its only replica
    report = backtest(
        [condition("CrashLoopBackOff", pod)],
        BOOKS,
        start=T0 - timedelta(hours=1),
        end=T0,
        cluster=cluster,
    )
    (firing,) = report.firings
    assert firing.playbook == "crash-loop-delete-pod" and firing.decision == "refused"
    assert firing.guardrail == "blast-radius"
    assert firing.reason.endswith(
        "would leave 0 ready replica(s) of deployment/data/orders-db, below min_available 1"
    )
    assert cluster.calls == []  # a backtest never touches the cluster, not even dry-run


def test_backtest_needs_a_window() -> None:
    with pytest.raises(ValueError, match="window is empty"):
        backtest([], BOOKS, start=T0, end=T0)
