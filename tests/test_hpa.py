"""The HPA emulation against behaviour worked out by hand from the Kubernetes algorithm.

Capacity 1 per pod, target 70 %, metrics 30 s late, 60 s start-up lag, 15 s syncs.
"""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detectors.hpa import HpaBehaviour, HpaEmulator, hpa_recommendation
from vigil.detectors.replay import HpaController, simulate
from vigil.detectors.traces import Trace


def run(values: np.ndarray, step: float = 60.0, initial: int = 10):
    trace = Trace("t", step * np.arange(values.size), values)
    hpa = HpaEmulator(HpaBehaviour(max_replicas=100), capacity=1.0, initial_replicas=initial)
    return simulate(
        trace,
        HpaController(hpa),
        name="hpa",
        capacity=1.0,
        lag_s=60.0,
        delay_s=30.0,
        interpolate=False,
        initial_replicas=initial,
        scored_from=0.0,
    )


def changes(run_) -> list[tuple[float, int]]:
    idx = np.flatnonzero(np.diff(run_.desired)) + 1
    return [(float(run_.times[i]), int(run_.desired[i])) for i in idx]


def test_step_up_then_down() -> None:
    # demand 7 (10 pods at 70 %), 14 from t=600 s, back to 7 from t=1800 s
    values = np.array([7.0] * 10 + [14.0] * 20 + [7.0] * 30)
    result = run(values)
    # up: seen at 630 (30 s late), ratio 2.0 -> 20 pods (limit max(2x10, 10+4) = 20);
    # down: seen at 1830; the last recommendation of 20 is stamped 1815, so the 300 s
    # window (records strictly after now-300) lets go at 2115.
    assert changes(result) == [(630.0, 20), (2115.0, 10)]
    # short-handed from the step until the new pods are ready at 690: 600..675 = 6 syncs
    under = (values[(result.times // 60).astype(int)] > result.ready) & (result.times < 1800)
    assert int(under.sum()) == 6
    assert result.score.under_minutes == pytest.approx(1.5)
    assert result.score.actions == 2
    # replica-hours: 10 pods for 630 s, 20 for 1485 s, 10 until the end (last point + 60 s)
    expected = (10 * 630 + 20 * (2115 - 630) + 10 * (3600 - 2115)) / 3600
    assert result.score.replica_hours == pytest.approx(expected)


def test_ramp_scales_in_tolerance_sized_steps() -> None:
    # +0.8 per minute: the HPA moves once the ratio passes 1.1 (7.8 / 7 at 10 pods, then
    # 9.4 / 8.4 at 12, ...), i.e. every second point, 2 pods at a time, 30 s after the
    # point it reacts to: ceil(7.8 / 0.7) = 12, ceil(9.4 / 0.7) = 14, ...
    values = 7.0 + 0.8 * np.arange(12)
    result = run(values)
    assert changes(result)[:4] == [(90.0, 12), (210.0, 14), (330.0, 16), (450.0, 18)]
    assert result.score.under_minutes == 0.0


def test_scale_up_is_rate_limited_to_double_or_four_pods() -> None:
    values = np.array([0.7] * 5 + [70.0] * 10)  # 1 pod, then demand for 100
    result = run(values, initial=1)
    ups = changes(result)
    assert ups[0] == (330.0, 5)  # max(2 x 1, 1 + 4)
    assert ups[1] == (345.0, 10)  # unready pods count as 0 %: 70 / (5 x 0.7) -> 20, capped 2x
    assert ups[2] == (360.0, 20)


def test_within_tolerance_keeps_replicas_and_no_metrics_keeps_scale() -> None:
    kw = {"target": 0.7, "tolerance": 0.1, "current": 10, "unready": 0}
    assert hpa_recommendation(7.6, 1.0, ready=10, **kw) == 10  # ratio 1.086
    assert hpa_recommendation(7.8, 1.0, ready=10, **kw) == 12  # ratio 1.114
    assert hpa_recommendation(5.0, 1.0, ready=0, **kw) == 10


def test_bad_behaviour_is_refused() -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        HpaBehaviour(min_replicas=5, max_replicas=2)


def test_a_raised_floor_applies_at_once_and_a_lowered_one_through_the_window() -> None:
    hpa = HpaEmulator(HpaBehaviour(max_replicas=50), capacity=1.0, initial_replicas=10)
    assert hpa.sync(0.0, 7.0, ready=10, unready=0, min_replicas=30) == 30  # unthrottled
    assert hpa.sync(15.0, 7.0, ready=10, unready=20, min_replicas=30) == 30
    # floor back to 1: the HPA's own recommendation (10) waits out its 300 s window,
    # which holds the 30 it kept at 15 s
    desired = [
        hpa.sync(t, 7.0, ready=30, unready=0, min_replicas=1) for t in np.arange(30.0, 400.0, 15.0)
    ]
    assert desired[0] == 30
    assert desired[-1] == 10
    assert 30.0 + 15.0 * desired.index(10) == 315.0
