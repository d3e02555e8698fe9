"""The predictive scaling policy: bounds, no flapping, reactive floor, apply modes, causality."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.core import ConfigError, WarmingUp
from vigil.detectors.forecasting import OnlineDemandForecaster
from vigil.detectors.replay import format_report, replay_scaling
from vigil.detectors.scaling import (
    HpaFloorChange,
    PredictiveScaler,
    ScalingReason,
    apply_decision,
    learn_capacity,
)
from vigil.detectors.scaling_settings import ApplyMode, ScalingSettings
from vigil.detectors.traces import Trace, read_trace

STEP = 300.0


def daily_trace(days: float = 3, seed: int = 0, bursts: bool = True) -> Trace:
    t = np.arange(int(days * 288))
    rng = np.random.default_rng(seed)
    values = 100 + 60 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 5, t.size)
    if bursts:
        values += (rng.random(t.size) < 0.02) * rng.uniform(50, 150, t.size)
    return Trace("synthetic", 1_600_000_000.0 + STEP * t, np.maximum(values, 0.0))


def drive(scaler: PredictiveScaler, trace: Trace, delay: float = 30.0, current: int = 1):
    """Feed points as they become visible and plan every 15 s; yields decisions."""
    fed = 0
    for now in np.arange(trace.timestamps[0], trace.timestamps[-1], 15.0):
        while fed < trace.values.size and trace.timestamps[fed] <= now - delay:
            scaler.observe(float(trace.timestamps[fed]), float(trace.values[fed]))
            fed += 1
        observed = float(trace.demand_at(np.array([now - delay]))[0])
        decision = scaler.plan(float(now), observed, current)
        yield observed, decision
        current = decision.replicas


def test_never_exceeds_max_replicas() -> None:
    settings = ScalingSettings(capacity_per_pod=1.0, max_replicas=7)
    decisions = [d for _, d in drive(PredictiveScaler(settings), daily_trace(days=1.5))]
    assert max(d.replicas for d in decisions) == 7
    assert all(d.replicas <= 7 for d in decisions)


def test_constant_demand_never_flaps() -> None:
    trace = Trace("flat", 1e9 + STEP * np.arange(600), np.full(600, 70.0))
    settings = ScalingSettings(capacity_per_pod=1.0, max_replicas=200)
    steady = [d.replicas for _, d in drive(PredictiveScaler(settings), trace, current=100)]
    assert set(steady) == {100}  # 70 / (1 x 0.7): not one change in two days
    limited = settings.model_copy(update={"max_step_up_percent": 100.0})
    climb = [d.replicas for _, d in drive(PredictiveScaler(limited), trace, current=1)]
    assert climb[:7] == [5, 10, 20, 40, 80, 100, 100]  # step-limited, then settled
    assert set(climb[6:]) == {100}


def test_never_below_the_reactive_need() -> None:
    settings = ScalingSettings(capacity_per_pod=1.0, max_step_up_pods=1000)
    for observed, d in drive(PredictiveScaler(settings), daily_trace(days=2, seed=2)):
        assert d.replicas >= min(d.reactive, settings.max_replicas)
        # the reactive floor is the HPA's rule: within 10 % of the target it keeps pods
        need = np.ceil(observed / (0.7 * 1.1) - 1e-9)
        assert d.replicas >= min(need, settings.max_replicas)


def test_step_limit_is_reported() -> None:
    settings = ScalingSettings(capacity_per_pod=1.0, max_step_up_pods=2, max_step_up_percent=100)
    d = PredictiveScaler(settings).plan(0.0, observed_demand=70.0, current=1)
    assert (d.replicas, d.reason) == (3, ScalingReason.BOUND)  # max(2 pods, 100 % of 1)


def test_forecast_scales_ahead_of_a_daily_ramp() -> None:
    trace = daily_trace(days=3, bursts=False)
    rows = list(drive(PredictiveScaler(ScalingSettings(capacity_per_pod=1.0)), trace))
    late = rows[len(rows) * 2 // 3 :]
    assert any(d.reason is ScalingReason.FORECAST for _, d in late)
    assert all(d.forecast_need is not None for _, d in late)


def test_apply_modes_never_fight_an_hpa() -> None:
    d = PredictiveScaler(ScalingSettings(capacity_per_pod=1.0)).plan(0.0, 14.0, current=10)
    assert d.replicas == 20
    assert apply_decision(d, ApplyMode.SCALE, has_hpa=False) == 20
    assert apply_decision(d, ApplyMode.AUTO, has_hpa=True, hpa_min=2, baseline_min=2) == (
        HpaFloorChange(min_replicas=20, previous=2)
    )
    with pytest.raises(ConfigError, match="fight the HPA"):
        apply_decision(d, ApplyMode.SCALE, has_hpa=True)
    with pytest.raises(ConfigError, match="minReplicas"):
        apply_decision(d, ApplyMode.HPA_FLOOR, has_hpa=True)


def test_missing_capacity_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="capacity_per_pod"):
        PredictiveScaler(ScalingSettings())


def test_online_forecaster_warms_up_then_bands_are_above_mean() -> None:
    model = OnlineDemandForecaster(lookahead_s=300, min_points=12)
    with pytest.raises(WarmingUp):
        model.forecast(1)
    for i in range(100):
        model.observe(STEP * i, 50.0 + (i % 7))
    mean, upper, name = model.forecast(1)
    assert upper >= mean
    assert name in {"naive", "daily", "level", "cycle"}
    with pytest.raises(ValueError, match="time order"):
        model.observe(0.0, 1.0)


@pytest.mark.parametrize("interpolate", [False, True])  # interpolated: the ramp rule acts
def test_replay_is_causal(interpolate: bool) -> None:
    trace = daily_trace(days=2.5, seed=5)
    kw = {"capacity": 15.0, "max_replicas": 20, "warmup_s": 86400.0, "interpolate": interpolate}
    full = replay_scaling(trace, **kw)
    cut_at = float(trace.timestamps[0]) + 1.7 * 86400
    cut = replay_scaling(trace.cut(cut_at), **kw)
    for name in ("vigil", "hpa"):
        a, b = full.runs[name], cut.runs[name]
        n = int(np.count_nonzero(b.times <= cut_at))
        assert np.array_equal(a.times[:n], b.times[:n])
        assert np.array_equal(a.desired[:n], b.desired[:n]), name


def test_replay_writes_decisions_and_reports(tmp_path: Path) -> None:
    trace = daily_trace(days=2, seed=6)
    src = tmp_path / "trace.csv"
    with src.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value"])
        for ts, v in zip(trace.timestamps, trace.values, strict=True):
            writer.writerow([int(ts), v])
    out = tmp_path / "decisions.csv"
    report = replay_scaling(src, lag_s=60, out=out, warmup_s=86400)
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "replicas"]
    assert len(rows) > 2 and all(int(r[1]) >= 1 for r in rows[1:])
    vigil, hpa = report.runs["vigil"].score, report.runs["hpa"].score
    assert vigil.under_minutes <= hpa.under_minutes
    assert report.capacity == pytest.approx(np.percentile(trace.values, 95) / 7)
    table = format_report([report, report])
    assert "POOLED" in table and "vigil vs HPA" in table


def test_bad_traces_get_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,val\n1,2\n")
    with pytest.raises(ConfigError, match="timestamp,value"):
        read_trace(bad)
    bad.write_text("timestamp,value\n2014-01-01 00:00:00,abc\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_trace(bad)
    bad.write_text("timestamp,value\n2014-01-01 00:05:00,1\n2014-01-01 00:00:00,2\n")
    with pytest.raises(ConfigError, match="back in time"):
        read_trace(bad)
    with pytest.raises(ConfigError, match="cannot open"):
        read_trace(tmp_path / "missing.csv")


def test_duplicate_timestamps_are_averaged(tmp_path: Path) -> None:
    src = tmp_path / "dst.csv"
    src.write_text(
        "timestamp,value\n2014-03-09 01:55:00,10\n2014-03-09 03:00:00,20\n"
        "2014-03-09 03:00:00,40\n2014-03-09 03:05:00,50\n"
    )
    trace = read_trace(src)
    assert trace.values.tolist() == [10.0, 30.0, 50.0]
    assert trace.merged == 1


def test_capacity_is_learned_from_demand_per_ready_pod() -> None:
    rng = np.random.default_rng(7)
    pods = rng.integers(2, 10, 200).astype(float)
    util = rng.uniform(0.3, 0.9, 200)
    demand = pods * util * 50.0  # 50 per pod at 100 %
    demand[:5] *= 10  # a burst of bad samples does not move the median
    assert learn_capacity(demand, pods, util) == pytest.approx(50.0)
    with pytest.raises(WarmingUp):
        learn_capacity(demand[:5], pods[:5], util[:5])


def test_forecast_view_renders_history_band_and_peak() -> None:
    from vigil.core import Series
    from vigil.detectors.forecast_view import forecast_view

    trace = daily_trace(days=3, bursts=False)
    series = Series("demand", {"workload": "api"}, trace.timestamps, trace.values)
    view = forecast_view(series, horizon_s=3 * 3600)
    assert view.forecast.mean.size == 36
    assert view.peak_upper >= view.peak_mean
    assert trace.timestamps[-1] < view.peak_at <= trace.timestamps[-1] + 3 * 3600
    text = view.text(width=60, unit="req/s")
    assert "next peak" in text and "req/s" in text and "│" in text


def test_scaling_group_validates_workloads() -> None:
    from pydantic import ValidationError

    from vigil.detectors.scaling_settings import ScalingGroup

    group = ScalingGroup.model_validate(
        {
            "enabled": True,
            "workloads": [
                {
                    "namespace": "shop",
                    "name": "api",
                    "demand_query": "sum(rate(http_requests_total[1m]))",
                    "overrides": {"capacity_per_pod": 50, "startup_lag_s": 90},
                }
            ],
        }
    )
    merged = group.workloads[0].settings(group.defaults)
    assert (merged.capacity_per_pod, merged.startup_lag_s) == (50, 90)
    with pytest.raises(ValidationError, match="capacity_per_pod"):
        ScalingGroup.model_validate(
            {"workloads": [{"namespace": "a", "name": "b", "demand_query": "x"}]}
        )
    with pytest.raises(ValidationError, match="min_replicas"):
        ScalingSettings(min_replicas=5, max_replicas=2)
    with pytest.raises(ValidationError, match="extra"):
        ScalingSettings.model_validate({"capcity_per_pod": 1})


@settings(max_examples=40, deadline=None)
@given(
    demand=st.lists(st.floats(0, 500, allow_nan=False), min_size=20, max_size=80),
    max_replicas=st.integers(1, 60),
    min_replicas=st.integers(1, 5),
)
def test_plans_stay_in_bounds_and_above_the_reactive_need(
    demand: list[float], max_replicas: int, min_replicas: int
) -> None:
    settings_ = ScalingSettings(
        capacity_per_pod=10.0,
        min_replicas=min(min_replicas, max_replicas),
        max_replicas=max_replicas,
    )
    scaler = PredictiveScaler(settings_)
    current = settings_.min_replicas
    for i, value in enumerate(demand):
        scaler.observe(60.0 * i, value)
        d = scaler.plan(60.0 * i + 30.0, value, current)
        assert settings_.min_replicas <= d.replicas <= max_replicas
        if d.reason is ScalingReason.BOUND:  # only the max step may hold a plan back
            assert d.replicas == current + max(4, current * 10)
        else:
            assert d.replicas >= min(d.reactive, max_replicas)
        current = d.replicas


def test_a_periodic_batch_load_is_met_before_it_arrives() -> None:
    # a job every hour (5-minute points: 10 quiet, 2 busy): not daily, found by the
    # cycle detector, so the pods are ready when the job starts; the HPA is a lag late
    rng = np.random.default_rng(8)
    values = np.tile(np.r_[np.full(10, 5.0), np.full(2, 80.0)], 12 * 5) + rng.normal(0, 1, 720)
    trace = Trace("cron", 1e9 + STEP * np.arange(values.size), np.maximum(values, 0.0))
    report = replay_scaling(trace, warmup_s=86400.0)
    assert report.runs["hpa"].score.under_minutes > 50
    assert report.runs["vigil"].score.under_minutes == 0.0
    # a headroom pod at the tail-band edge costs a few actions in the quiet spells
    assert report.runs["vigil"].score.actions <= 1.5 * report.runs["hpa"].score.actions


def test_capacity_learning_sees_through_the_idle_cost_of_a_pod() -> None:
    rng = np.random.default_rng(3)
    pods = rng.integers(2, 10, 300).astype(float)
    per_pod = rng.uniform(10.0, 45.0, 300)  # demand per pod; capacity 50 per pod
    util = 0.2 + 0.8 * per_pod / 50.0 + rng.normal(0, 0.01, 300)  # 20 % idle burn
    demand = per_pod * pods
    assert learn_capacity(demand, pods, util) == pytest.approx(50.0, rel=0.03)
    # the plain ratio (demand per pod / utilisation) is misled by the idle burn
    assert float(np.median(per_pod / util)) < 45.0
    # one operating point only: no line to fit, the ratio is all there is
    flat = np.full(50, 30.0)
    assert learn_capacity(flat * 4, np.full(50, 4.0), np.full(50, 0.6)) == pytest.approx(50.0)


def spiky_trace(days: float, seed: int) -> Trace:
    """Idle demand with exponential noise and rare flash spikes of +50-500 (1-3 points)."""
    rng = np.random.default_rng(seed)
    n = int(days * 288)
    values = 5 + rng.exponential(2, n)
    for start in rng.choice(n, n // 70, replace=False):
        values[start : start + rng.integers(1, 4)] += rng.uniform(50, 500)
    return Trace("spiky", 1e9 + STEP * np.arange(n), values)


def test_headroom_is_bought_one_likely_pod_at_a_time() -> None:
    # the tail quantile buys misses the plain quantile leaves; the slice rule then drops
    # the headroom pods that only rare spikes (which no headroom covers) would use
    trace = spiky_trace(days=4, seed=11)
    kw = {"warmup_s": 2 * 86400.0}
    runs = {
        name: replay_scaling(trace, config=ScalingSettings(capacity_per_pod=1.0, **over), **kw).runs
        for name, over in {
            "sliced": {},
            "whole-tail": {"headroom_probability": 0.0},
            "plain-quantile": {"tail_quantile": 0.9},
        }.items()
    }
    score = {name: r["vigil"].score for name, r in runs.items()}
    hpa = runs["sliced"]["hpa"].score
    assert score["sliced"].under_minutes < 0.75 * score["plain-quantile"].under_minutes
    assert score["sliced"].replica_hours < 0.97 * score["whole-tail"].replica_hours
    assert score["sliced"].under_minutes < 0.5 * hpa.under_minutes
    assert score["sliced"].replica_hours < hpa.replica_hours


def test_an_isolated_spike_does_not_widen_the_band_for_the_hour_after() -> None:
    rng = np.random.default_rng(4)
    values = 100 + rng.normal(0, 5, 700)
    values[650] = 5000.0  # one point, 50x the level
    model = OnlineDemandForecaster(lookahead_s=60, quantile=0.9, tail_quantile=0.97)
    bands = {}
    for i, value in enumerate(values.tolist()):
        model.observe(STEP * i, value)
        if i in (649, 652, 670):
            mean, upper, _ = model.forecast(1)
            bands[i] = upper - mean
    # unclipped, the local size would jump ~4x (and the band with it) for an hour
    assert bands[652] < 1.5 * bands[649]
    assert bands[670] < 1.5 * bands[649]


def test_tail_settings_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tail_quantile"):
        ScalingSettings(quantile=0.95, tail_quantile=0.9)
    with pytest.raises(ValueError, match="tail_quantile"):
        OnlineDemandForecaster(quantile=0.95, tail_quantile=0.9)
    with pytest.raises(ValueError, match="unit"):
        OnlineDemandForecaster(unit=0.0)


def test_coarse_sampling_plans_the_next_point_only_when_it_is_near() -> None:
    # 30-minute points: right after a point the reactive rule holds; the forecast for
    # the next point is planned within forecast_window_s (600 s) of it being due
    step = 1800.0
    t = np.arange(4 * 48)
    values = 100 + 60 * np.sin(2 * np.pi * t / 48) + np.random.default_rng(2).normal(0, 3, t.size)
    scaler = PredictiveScaler(ScalingSettings(capacity_per_pod=10.0, max_replicas=50))
    for i, value in enumerate(values.tolist()):
        scaler.observe(step * i, value)
    last = step * (t.size - 1)
    early = scaler.plan(last + 30.0, float(values[-1]), 12)
    assert early.model == "not-due" and early.reason is not ScalingReason.WARMING_UP
    assert early.forecast_need is None
    near = scaler.plan(last + step - 500.0, float(values[-1]), 12)
    assert near.model != "not-due" and near.forecast_need is not None


def test_a_ramp_is_met_where_it_will_be_when_pods_are_ready() -> None:
    settings_ = ScalingSettings(capacity_per_pod=1.0, max_replicas=500)
    step_scaler, ramp_scaler = PredictiveScaler(settings_), PredictiveScaler(settings_)
    # a newly scraped sample: one step up, then flat -> the HPA's rule on 14 (20 pods)
    held = [step_scaler.plan(15.0 * k, v, 10) for k, v in enumerate([7.0, 7.0, 14.0, 14.0])]
    assert held[-1].reactive == 20
    # rising on each of the last two syncs: 14 + (3.5 / 15 s) x (60 s lag + 30 s delay) = 35
    ramp = [ramp_scaler.plan(15.0 * k, v, 10) for k, v in enumerate([7.0, 10.5, 14.0])]
    assert ramp[-1].reactive == 50
    off = PredictiveScaler(settings_.model_copy(update={"extrapolate_ramps": False}))
    assert [off.plan(15.0 * k, v, 10) for k, v in enumerate([7.0, 10.5, 14.0])][-1].reactive == 20


def test_ramp_extrapolation_shortens_bursts_served_short_handed() -> None:
    # flash crowds (2-6x) with demand moving linearly between 5-minute points
    rng = np.random.default_rng(21)
    t = np.arange(4 * 288)
    values = 100 * (1 + 0.5 * np.sin(2 * np.pi * t / 288)) * rng.lognormal(0, 0.1, t.size)
    for start in rng.choice(t.size, 12, replace=False):
        values[start : start + rng.integers(2, 12)] *= rng.uniform(2, 6)
    trace = Trace("flash", 1e9 + STEP * t, values)
    kw = {"interpolate": True, "warmup_s": 2 * 86400.0}
    on = replay_scaling(trace, **kw).runs
    off = replay_scaling(
        trace, config=ScalingSettings(capacity_per_pod=1.0, extrapolate_ramps=False), **kw
    ).runs
    assert on["vigil"].score.under_minutes < 0.6 * off["vigil"].score.under_minutes
    assert on["vigil"].score.under_minutes < 0.6 * on["hpa"].score.under_minutes
