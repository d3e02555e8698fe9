"""What must not page: autocorrelated noise, young series with a daily swing, departures
too small to matter; and what still must (a real level shift, a large excursion).

Regression tests for the demo's noise (issue 4): most findings came from the CUSUM
member scaling its sums by point-to-point noise on smooth, autocorrelated metrics and
mistaking daily swings for level shifts on series younger than a season.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from vigil.core import Series
from vigil.detectors.changepoint import CusumDetector
from vigil.detectors.engine import DetectionEngine
from vigil.detectors.settings import DetectionSettings

pytestmark = pytest.mark.timeout(60)

STEP = 60.0
T0 = 1_700_000_040.0  # a multiple of 60 s
DAY = 1440  # one-minute points


def ar1(n: int, rho: float, seed: int) -> np.ndarray:
    """Autocorrelated noise with unit marginal sigma, like rate(x[5m]) every minute."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, np.sqrt(1 - rho * rho), n)
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = rho * out[i - 1] + e[i]
    return out


def test_cusum_stays_quiet_on_autocorrelated_noise_and_still_finds_a_shift() -> None:
    n_fit, n_new = 4 * DAY, DAY
    rows = np.stack([100 + ar1(n_fit + n_new, 0.97, seed) for seed in range(8)])
    det = CusumDetector()
    det.fit(rows[:, :n_fit], STEP)
    assert det.ready.all()
    quiet = det.update(rows[:, n_fit:]).score
    assert np.nanmean(quiet > det.threshold) < 0.01, "natural wander is not a level shift"

    shifted = rows.copy()
    shifted[:, n_fit + 60 :] += 12.0  # twelve marginal sigmas, held
    det = CusumDetector()
    det.fit(shifted[:, :n_fit], STEP)
    scores = det.update(shifted[:, n_fit : n_fit + 180]).score
    assert (np.nanmax(scores[:, 60:], axis=1) > det.threshold).all()


def test_cusum_warms_up_until_a_daily_season_can_be_learned() -> None:
    det = CusumDetector()
    young = 100 + ar1(6 * 60, 0.5, 1)  # a pod six hours old
    det.fit(young[None, :], STEP)
    assert not det.ready.any()
    assert det.needed.tolist() == [3 * DAY]
    assert np.isnan(det.update(young[None, -10:]).score).all()
    old = 100 + ar1(3 * DAY, 0.5, 2)
    det.fit(old[None, :], STEP)
    assert det.ready.all()


def settings(**kw: object) -> DetectionSettings:
    return DetectionSettings.model_validate({"multivariate_budget": 0.0, **kw})


def feed(
    engine: DetectionEngine,
    metric: str,
    labels: dict[str, str],
    values: np.ndarray,
    first: int,
    tick: int = 10,
) -> list:
    """Observe ``values`` (one per minute) tick by tick after the first ``first`` points."""
    ts = T0 + STEP * np.arange(values.size)
    reports = [
        engine.observe(
            [Series(metric, labels, ts[:first], values[:first])],
            datetime.fromtimestamp(ts[first - 1], UTC),
        )
    ]
    for lo in range(first, values.size, tick):
        hi = min(lo + tick, values.size)
        reports.append(
            engine.observe(
                [Series(metric, labels, ts[lo:hi], values[lo:hi])],
                datetime.fromtimestamp(ts[hi - 1], UTC),
            )
        )
    return reports


def test_a_young_pod_with_a_daily_swing_is_warming_up_not_a_finding() -> None:
    # A pod created by a scale-up at 06:00: its CPU climbs with the morning traffic.
    minutes = np.arange(10 * 60)
    daily = 0.3 + 0.2 * np.sin(2 * np.pi * (minutes + 6 * 60 - 9 * 60) / DAY)
    cpu = daily + 0.002 * ar1(minutes.size, 0.9, 3)
    engine = DetectionEngine(settings())
    labels = {"namespace": "shop", "pod": "checkout-7d9f-abcde"}
    reports = feed(engine, "container_cpu_cores", labels, cpu, first=60)
    assert [a for r in reports for a in r.anomalies] == []
    sid = Series("container_cpu_cores", labels, [T0], [0.0]).id
    have, need = reports[-1].warming_up[sid]
    assert need == 3 * DAY and have == cpu.size


def test_small_departures_do_not_page_large_ones_do() -> None:
    n = 4 * DAY
    base = 200.0 + 0.3 * ar1(n + 120, 0.3, 4)  # request rate, very smooth
    small = base.copy()
    small[n + 30 : n + 60] *= 1.05  # +5 %: many sigmas, means nothing to a person
    big = base.copy()
    big[n + 30 : n + 60] *= 1.6
    labels = {"namespace": "shop", "service": "cart"}
    found = {}
    for name, values in (("small", small), ("big", big)):
        engine = DetectionEngine(settings())
        reports = feed(engine, "http_requests_per_second", labels, values, first=n)
        found[name] = [a for r in reports for a in r.anomalies]
        if name == "small":
            assert sum(r.below_min_change for r in reports) > 0, "statistics did flag it"
    assert found["small"] == []
    assert found["big"] and all(a.value > 1.4 * 200 for a in found["big"])


def test_a_ratio_pages_only_past_its_absolute_floor() -> None:
    n = 4 * DAY
    errors = 0.001 + 0.00002 * ar1(n + 120, 0.2, 5)
    errors[n + 30 : n + 60] = 0.0025  # 0.1 % → 0.25 %: +150 %, but 0.15 points
    engine = DetectionEngine(settings())
    labels = {"namespace": "shop", "service": "cart"}
    reports = feed(engine, "http_error_ratio", labels, errors, first=n)
    assert [a for r in reports for a in r.anomalies] == []
    errors[n + 30 : n + 60] = 0.03  # 3 % of requests fail
    engine = DetectionEngine(settings())
    reports = feed(engine, "http_error_ratio", labels, errors, first=n)
    assert [a for r in reports for a in r.anomalies]


def test_an_anomaly_reports_the_point_furthest_outside_its_expected_range() -> None:
    # a surge that peaks and eases inside one 10-minute tick while still far out: the
    # finding names the peak, not whichever point happened to be the tick's last
    n = 4 * DAY
    values = 200.0 + 0.3 * ar1(n + 120, 0.3, 6)
    shape = np.r_[np.linspace(1.5, 3.0, 5), np.linspace(2.9, 1.6, 25)]
    values[n + 2 : n + 32] *= shape
    engine = DetectionEngine(settings())
    labels = {"namespace": "shop", "service": "cart"}
    reports = feed(engine, "http_requests_per_second", labels, values, first=n)
    found = [a for r in reports for a in r.anomalies]
    assert found
    for a in found:
        assert a.value > a.expected_high, a.summary()
    first = found[0]  # the tick holding the peak (x3.0 at point n + 6)
    assert first.value == pytest.approx(values[n + 6])
