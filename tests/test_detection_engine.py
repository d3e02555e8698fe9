"""``DetectionEngine`` tick by tick: warming up, anomalies that explain themselves,
sensitivity, refits, the multivariate stage, SLO rules, and the shadow comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from vigil.core import FeedbackLabel, Series, Severity
from vigil.detectors.engine import DetectionEngine, guess_unit
from vigil.detectors.settings import DetectionSettings, SloRuleSettings
from vigil.detectors.shadow import anomaly_finding_id, compare_shadow, sensitivity_from_feedback

pytestmark = pytest.mark.timeout(60)

STEP = 300.0
T0 = 1_700_000_100.0  # a multiple of 300 s
N_HIST = 900


def at(i: int) -> datetime:
    return datetime.fromtimestamp(T0 + i * STEP, UTC)


def latency(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 0.15 + 0.02 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.004, n)


def make_series(
    values: np.ndarray,
    lo: int,
    hi: int,
    labels: dict[str, str],
    metric: str = "latency_p99_seconds",
) -> Series:
    ts = T0 + STEP * np.arange(lo, hi, dtype=np.float64)
    return Series(metric, labels, ts, values[lo:hi])


def run(
    engine: DetectionEngine,
    data: dict[str, np.ndarray],
    labels: dict[str, dict[str, str]],
    n_ticks: int,
    metric: dict[str, str] | None = None,
):
    metric = metric or {}
    first = engine.observe(
        [
            make_series(v, 0, N_HIST, labels[k], metric.get(k, "latency_p99_seconds"))
            for k, v in data.items()
        ],
        at(N_HIST - 1),
    )
    reports = [first]
    for i in range(N_HIST, N_HIST + n_ticks):
        batch = [
            make_series(v, i, i + 1, labels[k], metric.get(k, "latency_p99_seconds"))
            for k, v in data.items()
        ]
        reports.append(engine.observe(batch, at(i)))
    return reports


def settings(**kw: object) -> DetectionSettings:
    base: dict[str, object] = {
        "descriptions": {"latency_p99_seconds": "p99 latency"},
        "multivariate_budget": 0.0,
        # These tests are about the statistics; test_small_departures_do_not_page
        # covers the practical floor.
        "min_change": 0.0,
    }
    base.update(kw)
    return DetectionSettings.model_validate(base)


def test_new_series_warm_up_then_score() -> None:
    engine = DetectionEngine(settings())
    values = latency(60, 0)
    labels = {"app": "api"}
    report = engine.observe([make_series(values, 0, 10, labels)], at(9))
    sid = make_series(values, 0, 10, labels).id
    assert report.warming_up == {sid: (10, 36)}
    assert report.anomalies == []
    assert report.warming_up_lines() == [f"{sid}: warming up, 10 of 36 points"]
    for i in range(10, 40):
        report = engine.observe([make_series(values, i, i + 1, labels)], at(i))
    # Scored from 36 points on, but still warming up until the change-point member has
    # three days (864 five-minute points) to tell a daily swing from a level shift.
    assert report.warming_up == {sid: (40, 864)}
    report = engine.observe([make_series(values, 40, 41, labels)], at(40))
    assert report.scored == 1


def test_empty_all_nan_and_gappy_series_never_crash_or_alarm() -> None:
    engine = DetectionEngine(settings())
    empty = Series("latency_p99_seconds", {"app": "a"}, np.array([]), np.array([]))
    nan = Series(
        "latency_p99_seconds", {"app": "b"}, T0 + STEP * np.arange(50), np.full(50, np.nan)
    )
    gappy_vals = latency(N_HIST, 1)
    gappy_vals[100:400] = np.nan
    gappy = make_series(gappy_vals, 0, N_HIST, {"app": "c"})
    report = engine.observe([empty, nan, gappy], at(N_HIST - 1))
    assert report.warming_up[empty.id] == (0, 36)
    assert report.warming_up[nan.id] == (0, 36)
    assert gappy.id not in report.warming_up
    for i in range(N_HIST, N_HIST + 20):
        vals = np.full(1, np.nan) if i % 3 == 0 else gappy_vals[i - 300 : i - 299]
        s = Series("latency_p99_seconds", {"app": "c"}, np.array([T0 + STEP * i]), vals)
        report = engine.observe([s], at(i))
        assert report.anomalies == []


def test_a_latency_excursion_becomes_an_explained_anomaly() -> None:
    data = {f"s{i}": latency(N_HIST + 30, i) for i in range(5)}
    data["s2"][N_HIST + 10 : N_HIST + 16] = 0.87  # p99 jumps to 870 ms for 30 minutes
    labels = {k: {"app": k, "namespace": "shop"} for k in data}
    reports = run(DetectionEngine(settings()), data, labels, 30)
    found = [a for r in reports for a in r.anomalies]
    assert {a.labels["app"] for a in found} == {"s2"}
    first = found[0]
    assert first.start == at(N_HIST + 10)
    assert first.end == at(N_HIST + 11)
    assert first.detector == "ensemble" and first.detector_version.startswith("1.0+seasonal")
    assert first.unit == "seconds"
    assert first.severity is Severity.CRITICAL
    summary = first.summary()
    assert summary.startswith("p99 latency 870 ms, expected ")
    low, high = first.expected_low, first.expected_high
    assert 0.10 < low < high < 0.25, summary
    # The run is one incident: later ticks keep its start.
    assert {a.start for a in found} == {at(N_HIST + 10)}


def test_sensitivity_factor_silences_a_series() -> None:
    data = {"x": latency(N_HIST + 20, 3)}
    data["x"][N_HIST + 5 : N_HIST + 9] += 0.04  # 10 noise sigmas
    labels = {"x": {"app": "x"}}
    loud = run(DetectionEngine(settings()), data, labels, 20)
    assert any(r.anomalies for r in loud)
    engine = DetectionEngine(settings())
    engine.set_sensitivity(make_series(data["x"], 0, 1, labels["x"]).id, 0.2)
    quiet = run(engine, data, labels, 20)
    assert not any(r.anomalies for r in quiet)
    with pytest.raises(ValueError, match="finite number > 0"):
        engine.set_sensitivity("x", 0.0)


def test_banks_refit_on_schedule_not_every_tick() -> None:
    engine = DetectionEngine(settings(refit_interval=1800.0))
    data = {"x": latency(N_HIST + 12, 4)}
    run(engine, data, {"x": {"app": "x"}}, 0)
    bank = engine._banks[0]
    fitted = bank.fitted_at
    for i in range(N_HIST, N_HIST + 5):
        engine.observe([make_series(data["x"], i, i + 1, {"app": "x"})], at(i))
    assert bank.fitted_at == fitted
    engine.observe([make_series(data["x"], N_HIST + 5, N_HIST + 6, {"app": "x"})], at(N_HIST + 5))
    assert bank.fitted_at == T0 + STEP * (N_HIST + 5)


def test_multivariate_stage_confirms_a_workload_wide_anomaly() -> None:
    rng = np.random.default_rng(5)
    n = N_HIST + 20
    metrics = {
        "cpu_cores": 1.0 + rng.normal(0, 0.02, n),
        "memory_bytes": 5e8 + rng.normal(0, 5e6, n),
        "latency_p99_seconds": latency(n, 6),
    }
    for key, v in metrics.items():
        v[N_HIST + 5 :] += 12 * np.std(v[:N_HIST]) if key != "memory_bytes" else 0.0
    labels = {k: {"namespace": "shop", "workload": "api"} for k in metrics}
    engine = DetectionEngine(settings(multivariate_budget=5.0))
    reports = run(engine, metrics, labels, 10, metric={k: k for k in metrics})
    found = [a for r in reports for a in r.anomalies]
    assert {a.metric for a in found} == {"cpu_cores", "latency_p99_seconds"}
    assert any("jointly unusual" in a.description for a in found)
    assert all(r.multivariate_skipped == 0 for r in reports)


def test_slo_threshold_rule_fires_on_its_series_only() -> None:
    rule = SloRuleSettings(
        metric="latency_p99_seconds", kind="threshold", limit=0.5, labels={"app": "api"}
    )
    engine = DetectionEngine(settings(slo_rules=[rule]))
    data = {"api": latency(N_HIST + 3, 7) + 0.5, "web": latency(N_HIST + 3, 8) + 0.5}
    labels = {k: {"app": k} for k in data}
    reports = run(engine, data, labels, 3)
    slo = [a for r in reports for a in r.anomalies if a.detector == "slo-threshold"]
    assert slo and {a.labels["app"] for a in slo} == {"api"}
    assert slo[0].expected_high == 0.5


def test_settings_reject_bad_values_with_a_reason() -> None:
    with pytest.raises(ValueError, match="persistence_k"):
        DetectionSettings(persistence_k=4, persistence_n=3)
    with pytest.raises(ValueError, match="kind must be"):
        SloRuleSettings(metric="m", kind="ceiling", limit=1.0)
    with pytest.raises(ValueError, match="extra"):
        DetectionSettings.model_validate({"histroy": 5})


def test_unit_guess_from_suffix() -> None:
    assert guess_unit("http_request_duration_seconds") == "seconds"
    assert guess_unit("container_memory_working_set_bytes") == "bytes"
    assert guess_unit("requests_total") == ""


def test_shadow_comparison_and_feedback_sensitivity() -> None:
    data = {f"s{i}": latency(N_HIST + 30, 10 + i) for i in range(3)}
    data["s0"][N_HIST + 5 : N_HIST + 9] += 0.05
    data["s1"][N_HIST + 15 : N_HIST + 19] += 0.03
    labels = {k: {"app": k} for k in data}
    champion = [a for r in run(DetectionEngine(settings()), data, labels, 30) for a in r.anomalies]
    challenger = [
        a
        for r in run(DetectionEngine(settings(alarm_level=0.9)), data, labels, 30)
        for a in r.anomalies
    ]
    assert {a.labels["app"] for a in champion} == {"s0", "s1"}
    verdict = {
        anomaly_finding_id(a): FeedbackLabel.TRUE_POSITIVE
        if a.labels["app"] == "s0"
        else FeedbackLabel.FALSE_POSITIVE
        for a in champion
    }
    cmp = compare_shadow(champion, challenger, verdict)
    assert cmp.labelled == len({anomaly_finding_id(a) for a in champion}) >= 2
    assert cmp.champion_precision is not None and 0 < cmp.champion_precision < 1
    assert 0 < cmp.agreement <= 1
    assert "agreement" in cmp.summary()
    same = compare_shadow(champion, champion, verdict)
    assert same.agreement == 1.0 and same.challenger_missed_true == 0
    assert sensitivity_from_feedback([FeedbackLabel.FALSE_POSITIVE] * 2) == pytest.approx(0.64)
    assert sensitivity_from_feedback([FeedbackLabel.FALSE_POSITIVE] * 20) == 0.25
    assert sensitivity_from_feedback([]) == 1.0
