"""The agent's predictive scaling stage on the twin with a real SQLite store: demand
fetched through the MetricSource, decisions as forecast findings, the predictive-*
playbooks acting on them under the guardrails, forecasts stored for status and ask."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.playbook_twin import small_twin
from vigil.agent.loop import TickContext
from vigil.agent.playbook_stage import PlaybookStage
from vigil.agent.scaling_stage import DEMAND_METRIC, ScalingStage, demand_labels, scaling_subject
from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionStatus,
    FindingKind,
    ObjectRef,
    PermanentError,
    Series,
)
from vigil.detectors.scaling_settings import ScalingGroup, ScalingWorkload
from vigil.playbooks import Guardrails, GuardrailSettings, PlaybookEngine, builtin_playbooks
from vigil.sim.twin import Twin

CHECKOUT = ObjectRef("Deployment", "shop", "checkout")
CART = ObjectRef("Deployment", "shop", "cart")


def _demand(name: str) -> str:
    return f'sum(rate(http_requests_total{{namespace="shop",service="{name}"}}[5m]))'


def _workload(name: str, **overrides: object) -> ScalingWorkload:
    return ScalingWorkload(
        namespace="shop", name=name, demand_query=_demand(name), overrides=dict(overrides)
    )


@pytest.fixture
def twin() -> Twin:
    t = small_twin()
    t.run(timedelta(hours=2))  # enough demand history for the policy's forecaster
    return t


@pytest.fixture
def store(tmp_path: Path, twin: Twin) -> Iterator[SqliteStore]:
    s = SqliteStore.open(tmp_path / "vigil.db", clock=twin.clock)
    yield s
    s.close()


def _stage(twin: Twin, store: SqliteStore, *workloads: ScalingWorkload) -> ScalingStage:
    group = ScalingGroup(enabled=True, workloads=list(workloads), forecast_every_s=600.0)
    return ScalingStage(group, twin.metrics, twin.cluster, store, interval=60.0, step=30.0)


def _tick(twin: Twin, *stages: object, tick_id: int = 1) -> TickContext:
    ctx = TickContext(tick_id=tick_id, now=twin.clock.now())
    for stage in stages:
        stage.run(ctx)  # type: ignore[attr-defined]
    return ctx


def _hpa_min(twin: Twin, ref: ObjectRef) -> int:
    return next(h.min_replicas for h in twin.cluster.list_hpas("shop") if h.target == ref)


def test_a_forecast_above_capacity_raises_the_hpa_floor_then_gives_it_back(
    twin: Twin, store: SqliteStore
) -> None:
    assert _hpa_min(twin, CHECKOUT) == 2
    # capacity per pod so low that the forecast needs the HPA's maximum
    stage = _stage(twin, store, _workload("checkout", capacity_per_pod=0.5))
    engine = PlaybookEngine(
        Guardrails(
            store,
            GuardrailSettings(dry_run=False),
            {b.name: b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()},
        ),
        cluster=twin.cluster,
        metrics=twin.metrics,
        playbooks=[b.model_copy(update={"mode": "auto"}) for b in builtin_playbooks()],
    )
    playbooks = PlaybookStage(engine, store, twin.clock)
    ctx = _tick(twin, stage, playbooks)
    [finding] = [f for f in ctx.findings if f.kind is FindingKind.FORECAST]
    assert finding.subject == scaling_subject(_workload("checkout"))
    assert finding.details["apply"] == "hpa-floor"
    assert finding.details["current_replicas"] == 2
    assert finding.details["desired_replicas"] == 10  # the HPA's max caps the floor
    assert finding.details["baseline_min"] == 2
    assert finding.target == CHECKOUT
    assert finding.forecast is not None and finding.forecast.metric == DEMAND_METRIC
    [entry] = store.journal_list(limit=10)
    assert (entry.playbook, entry.action.value, entry.status) == (
        "predictive-hpa-floor",
        "patch-hpa",
        ActionStatus.SUCCEEDED,
    )
    assert _hpa_min(twin, CHECKOUT) == 10
    # the decision is one-shot: the next tick closes it and, the floor being set, adds none
    twin.run(timedelta(minutes=3))
    ctx = _tick(twin, stage, playbooks, tick_id=2)
    assert not [f for f in ctx.findings if f.kind is FindingKind.FORECAST]
    assert store.get_finding(finding.id).resolved

    # A restart with generous capacity: the recorded baseline (2) comes back, not 10.
    twin.run(timedelta(minutes=20))  # past the playbook's cooldown
    relaxed = _stage(twin, store, _workload("checkout", capacity_per_pod=10_000.0))
    ctx = _tick(twin, relaxed, playbooks, tick_id=3)
    [down] = [f for f in ctx.findings if f.kind is FindingKind.FORECAST]
    assert (down.details["current_replicas"], down.details["desired_replicas"]) == (10, 2)
    assert _hpa_min(twin, CHECKOUT) == 2
    assert [e.playbook for e in store.journal_list(limit=10)].count("predictive-hpa-floor") == 2


def test_without_an_hpa_replicas_are_scaled_and_big_drops_go_in_steps(
    twin: Twin, store: SqliteStore
) -> None:
    cart = twin.cluster.get_workload(CART)
    assert cart.replicas == 3 and not [
        h for h in twin.cluster.list_hpas("shop") if h.target == CART
    ]
    stage = _stage(twin, store, _workload("cart", capacity_per_pod=1.0, max_replicas=8))
    ctx = _tick(twin, stage)
    [up] = ctx.findings
    assert up.details["apply"] == "scale"
    assert (up.details["current_replicas"], up.details["desired_replicas"]) == (3, 8)
    # with a tiny demand need and a 25 % blast radius, 8 → 6, never 8 → 1 at once
    twin.cluster.scale(CART, 8, dry_run=False)
    twin.run(timedelta(minutes=5))
    group = ScalingGroup(
        enabled=True,
        workloads=[_workload("cart", capacity_per_pod=10_000.0, scale_down_stabilisation_s=0.0)],
    )
    down_stage = ScalingStage(
        group, twin.metrics, twin.cluster, store, interval=60.0, step=30.0,
        max_step_down_percent=25.0,
    )  # fmt: skip
    ctx = _tick(twin, down_stage, tick_id=2)
    [down] = ctx.findings
    assert (down.details["current_replicas"], down.details["desired_replicas"]) == (8, 6)


def test_the_demand_forecast_is_stored_with_its_model_and_bands(
    twin: Twin, store: SqliteStore
) -> None:
    stage = _stage(twin, store, _workload("cart", capacity_per_pod=80.0))
    ctx = _tick(twin, stage)
    [fc] = ctx.forecasts
    assert fc.labels == demand_labels(_workload("cart"))
    stored = store.latest_forecast(fc.series)
    assert stored is not None
    assert stored.model == fc.model and stored.model_version
    assert sorted(stored.quantiles) == [0.05, 0.5, 0.95]
    assert stored.timestamps[0] > twin.clock.now().timestamp() - 600
    assert stored.timestamps[-1] - stored.timestamps[0] >= 3 * 3600 - 600
    lo, hi = stored.quantile(0.05), stored.quantile(0.95)
    assert (lo <= hi).all()
    # the twin's cart serves tens of req/s: the forecast is in that range, not zero
    assert 5 < float(stored.mean.mean()) < 500
    # not re-forecast before forecast_every_s
    twin.run(timedelta(minutes=1))
    assert not _tick(twin, stage, tick_id=2).forecasts


def test_a_demand_query_giving_many_series_is_a_clear_error(twin: Twin, store: SqliteStore) -> None:
    bad = ScalingWorkload(
        namespace="shop",
        name="cart",
        demand_query="sum by (service) (rate(http_requests_total[5m]))",
        overrides={"capacity_per_pod": 80.0},
    )
    with pytest.raises(PermanentError, match=r"shop/cart.*gave 2 series.*sum\("):
        _tick(twin, _stage(twin, store, bad))


def test_no_demand_yet_is_warming_up_not_a_decision(twin: Twin, store: SqliteStore) -> None:
    quiet = ScalingWorkload(
        namespace="shop",
        name="cart",
        demand_query='sum(rate(http_requests_total{service="nothing-here"}[5m]))',
        overrides={"capacity_per_pod": 80.0},
    )
    ctx = _tick(twin, _stage(twin, store, quiet))
    assert not ctx.findings
    assert ctx.warming_up["scaling shop/cart"][0] == 0


def test_decisions_a_killed_run_left_open_are_closed_not_replayed(
    twin: Twin, store: SqliteStore
) -> None:
    stage = _stage(twin, store, _workload("cart", capacity_per_pod=1.0, max_replicas=8))
    [first] = _tick(twin, stage).findings
    assert not store.get_finding(first.id).resolved
    twin.run(timedelta(minutes=1))
    restarted = _stage(twin, store, _workload("cart", capacity_per_pod=80.0))
    _tick(twin, restarted, tick_id=2)
    assert store.get_finding(first.id).resolved


def test_series_labels_name_the_workload() -> None:
    s = Series(DEMAND_METRIC, demand_labels(_workload("cart")), [1.0], [2.0])
    assert s.labels == {"namespace": "shop", "deployment": "cart"}


def test_status_and_forecast_show_the_next_peak_and_planned_replicas(
    twin: Twin, store: SqliteStore, tmp_path: Path
) -> None:
    import json
    import math

    import yaml
    from typer.testing import CliRunner

    from vigil.agent.cli import app

    cart = _workload("cart", capacity_per_pod=1.0, max_replicas=8)
    ctx = _tick(twin, _stage(twin, store, cart))
    [fc] = ctx.forecasts
    config = tmp_path / "vigil.yaml"
    group = ScalingGroup(enabled=True, workloads=[cart])
    config.write_text(
        yaml.safe_dump(
            {"store": {"path": str(store.path)}, "scaling": group.model_dump(mode="json")}
        )
    )
    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["scaling"]
    peak_i = int(fc.mean.argmax())
    upper = float(fc.quantile(max(fc.quantiles))[peak_i])
    assert row["workload"] == "shop/cart"
    assert row["next_peak_demand"] == pytest.approx(upper)
    assert row["planned_replicas_at_peak"] == min(8, math.ceil(upper / (1.0 * 0.9)))
    assert row["last_decision"].startswith("replicas 3 → 8")
    text = CliRunner().invoke(app, ["--config", str(config), "status"])
    assert "Predictive scaling" in text.output and "shop/cart" in text.output

    shown = CliRunner().invoke(
        app,
        ["--config", str(config), "forecast", "cart", "--stored", "--png", str(tmp_path / "f.png")],
    )
    assert shown.exit_code == 0, shown.output
    assert f"replicas planned for that peak: {row['planned_replicas_at_peak']}" in shown.output
    assert (tmp_path / "f.png").stat().st_size > 10_000
    unknown = CliRunner().invoke(app, ["--config", str(config), "forecast", "kart"])
    assert unknown.exit_code == 1
    assert "no workload 'kart'" in unknown.output and "shop/cart" in unknown.output


def test_a_scale_down_the_blast_radius_always_refuses_is_not_asked_for(
    twin: Twin, store: SqliteStore
) -> None:
    # 3 replicas at a 25 % blast radius: not one pod may go, so no decision is recorded
    group = ScalingGroup(
        enabled=True,
        workloads=[_workload("cart", capacity_per_pod=10_000.0, scale_down_stabilisation_s=0.0)],
    )
    stage = ScalingStage(
        group, twin.metrics, twin.cluster, store, interval=60.0, step=30.0,
        max_step_down_percent=25.0,
    )  # fmt: skip
    assert twin.cluster.get_workload(CART).replicas == 3
    assert not _tick(twin, stage).findings


def test_capacity_per_pod_is_learned_from_demand_ready_pods_and_utilisation(
    twin: Twin, store: SqliteStore
) -> None:
    # the twin's pods burn 10 % of their CPU request idle and reach 120 % of it at their
    # capacity (80 req/s for cart): utilisation of what a pod can use is cpu / (1.2 × request)
    util = (
        'sum(rate(container_cpu_usage_seconds_total{namespace="shop",pod=~"cart-.*"}[5m])) / '
        '(1.2 * sum(kube_pod_container_resource_requests{namespace="shop",pod=~"cart-.*",'
        'resource="cpu"}))'
    )
    learning = ScalingWorkload(
        namespace="shop", name="cart", demand_query=_demand("cart"), utilisation_query=util
    )
    stage = _stage(twin, store, learning)
    assert stage.capacities == {"shop/cart": None}
    _tick(twin, stage)
    assert stage.capacities["shop/cart"] == pytest.approx(80.0, rel=0.1)
