"""Verification through a real Prometheus: the rollout-undo playbook's PromQL, with the
target filled in, decides whether an undo is kept or undone again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from promfixture import SeriesData

from tests.fake_cluster import FakeCluster
from tests.playbook_findings import anomaly
from tests.playbook_journals import open_journal
from vigil.agent.prometheus import PrometheusSource
from vigil.core import ActionStatus, ManualClock, ObjectRef
from vigil.playbooks import Guardrails, GuardrailSettings, PlaybookEngine, builtin_playbooks

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(90)]

BASE = (int(time.time()) // 3600 - 2) * 3600  # an hour boundary two hours ago
STEP = 15


def counter(rate_before: float, rate_after: float, switch: int) -> list[tuple[float, float]]:
    """A counter growing at one rate until ``switch`` (unix s), then at another."""
    points, value = [], 0.0
    for t in range(BASE - 1800, BASE + 1800, STEP):
        value += (rate_before if t < switch else rate_after) * STEP
        points.append((float(t), value))
    return points


def dataset() -> list[SeriesData]:
    fixed = BASE + 120  # the undo of shop/api stops its errors two minutes in
    out = []
    for service, errors_after in (("api", 0.0), ("cart", 2.0)):
        labels = {"namespace": "shop", "service": service}
        out.append(
            SeriesData(
                "http_requests_total", {**labels, "code": "500"}, counter(2.0, errors_after, fixed)
            )
        )
        out.append(
            SeriesData("http_requests_total", {**labels, "code": "200"}, counter(8.0, 8.0, fixed))
        )
    return out


@pytest.fixture(scope="module")
def prom_url(prometheus_factory: Callable[..., str]) -> str:
    return prometheus_factory("playbook-verify", dataset())


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Any]:
    with open_journal(tmp_path) as store:
        yield store


def test_an_undo_that_stopped_the_errors_stays_and_one_that_did_not_is_undone(
    prom_url: str, journal: Any
) -> None:
    t0 = datetime.fromtimestamp(BASE, UTC)
    cluster = FakeCluster(ManualClock(t0))
    for name in ("api", "cart"):
        cluster.add_workload(
            f"deployment/shop/{name}", 3, revision=3, last_rollout_at=t0 - timedelta(minutes=10)
        )
    books = [b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()]
    with PrometheusSource(prom_url, timeout=10, retries=0) as prom:
        eng = PlaybookEngine(
            Guardrails(journal, GuardrailSettings(dry_run=False)),
            cluster=cluster,
            metrics=prom,
            playbooks=books,
        )
        findings = [
            anomaly("http_errors:ratio", {"namespace": "shop", "service": s}, at=t0)
            for s in ("api", "cart")
        ]
        acted = eng.tick(findings, t0)
        assert [o.entry.action for o in acted if o.entry] == ["rollout-undo", "rollout-undo"]
        assert cluster.image("deployment/shop/api") == "img:2"
        checked = eng.tick([], t0 + timedelta(minutes=10))
    by_target = {str(o.entry.target): o for o in checked if o.entry}
    api, cart = by_target["deployment/shop/api"], by_target["deployment/shop/cart"]
    assert api.entry.status is ActionStatus.SUCCEEDED
    assert api.notifications[0].state == "verified"
    assert cart.entry.status is ActionStatus.REVERTED
    assert "does not hold (values 0.2)" in cart.entry.message
    assert cluster.image("deployment/shop/api") == "img:2"  # kept
    assert cluster.image("deployment/shop/cart") == "img:3"  # the agent's undo was undone
    assert cart.follow_up[0].entry.action == "notify"
    assert ObjectRef.parse("deployment/shop/cart") == cart.entry.target
