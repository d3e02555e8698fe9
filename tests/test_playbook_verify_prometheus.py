"""Verification through a real Prometheus: the rollout-undo playbook's PromQL, with the
target filled in, decides whether an undo on the twin's cluster is kept or undone again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from promfixture import SeriesData

from tests.playbook_findings import anomaly
from tests.playbook_journals import open_journal
from tests.playbook_twin import TwinCluster, full_twin
from vigil.agent.prometheus import PrometheusSource
from vigil.core import ActionStatus, ObjectRef
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
    fixed = BASE + 120  # the undo of shop/search stops its errors two minutes in
    out = []
    for service, errors_after in (("search", 0.0), ("cart", 2.0)):
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
    twin = full_twin(t0 - timedelta(minutes=10), days=0.1)  # the cluster: the twin
    releases = {
        name: twin.roll_out_new_image(ObjectRef.parse(f"deployment/shop/{name}"), bad=False)
        for name in ("search", "cart")
    }
    twin.run(timedelta(minutes=10))
    cluster = TwinCluster(twin)

    def image(name: str) -> str:
        return cluster.get_workload(ObjectRef.parse(f"deployment/shop/{name}")).containers[0].image

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
            for s in ("search", "cart")
        ]
        acted = eng.tick(findings, t0)
        assert [o.entry.action for o in acted if o.entry] == ["rollout-undo", "rollout-undo"]
        assert image("search") != releases["search"] and image("cart") != releases["cart"]
        checked = eng.tick([], t0 + timedelta(minutes=10))
    by_target = {str(o.entry.target): o for o in checked if o.entry}
    search, cart = by_target["deployment/shop/search"], by_target["deployment/shop/cart"]
    assert search.entry.status is ActionStatus.SUCCEEDED
    assert search.notifications[0].state == "verified"
    assert cart.entry.status is ActionStatus.REVERTED
    assert "does not hold (values 0.2)" in cart.entry.message
    assert image("search") != releases["search"]  # the undo is kept
    assert image("cart") == releases["cart"]  # the agent's undo was undone
    assert cart.follow_up[0].entry.action == "notify"
    assert ObjectRef.parse("deployment/shop/cart") == cart.entry.target
