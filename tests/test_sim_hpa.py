"""The twin's HPA follows Kubernetes' algorithm: ceil(current × metric/target), a 10 %
tolerance, a 300 s scale-down stabilisation window, the default scale-up rate limit
and [min, max]. Expected values are worked out by hand in the comments."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vigil.core import ObjectRef
from vigil.sim.controllers import hpa_normalize, hpa_replicas
from vigil.sim.faults import Fault, FaultKind
from vigil.sim.scenario import DEFAULT_START, build_twin, small_scenario
from vigil.sim.state import HpaState

pytestmark = pytest.mark.timeout(60)
REQUEST = 0.5  # cores per pod


def _sync(
    hpa: HpaState, current: int, utilization: float, t: float, unready: int = 0, missing: int = 0
) -> int:
    ready = current - unready - missing
    raw = hpa_replicas(
        current,
        [utilization * REQUEST] * ready,
        [REQUEST] * ready,
        [REQUEST] * unready,
        target_utilization=hpa.target_utilization,
        missing_requests=[REQUEST] * missing,
    )
    assert raw is not None
    return hpa_normalize(hpa, current, raw, t)


def _hpa() -> HpaState:
    return HpaState(
        "shop", "checkout", "checkout", min_replicas=2, max_replicas=10, target_utilization=0.7
    )


def test_step_up_follows_ceil_current_times_ratio() -> None:
    # 3 pods at 120 % of request, target 70 %: ratio 1.714, ceil(3 × 1.714) = ceil(5.14) = 6
    assert _sync(_hpa(), 3, 1.2, 0.0) == 6


def test_within_tolerance_nothing_changes() -> None:
    # 74 % vs 70 %: ratio 1.057, within the 10 % tolerance
    assert _sync(_hpa(), 3, 0.74, 0.0) == 3
    # 62 % vs 70 %: ratio 0.886 is outside the tolerance, but ceil(4 × 0.886) = ceil(3.54) = 4
    assert _sync(_hpa(), 4, 0.62, 0.0) == 4
    # 50 %: ratio 0.714 → ceil(4 × 0.714) = ceil(2.86) = 3, but a new HPA's window starts
    # with the current 4 at t=0, so it waits until that leaves the window at t=300.
    hpa = _hpa()
    assert _sync(hpa, 4, 0.5, 0.0) == 4
    assert _sync(hpa, 4, 0.5, 270.0) == 4
    assert _sync(hpa, 4, 0.5, 300.0) == 3


def test_big_step_is_rate_limited_then_clamped_to_max() -> None:
    # 400 %: ratio 5.71 → ceil(17.1) = 18; scale-up limit max(2×3, 3+4) = 7
    assert _sync(_hpa(), 3, 4.0, 0.0) == 7
    # from 7: limit max(14, 11) = 14, then max_replicas 10
    assert _sync(_hpa(), 7, 4.0, 0.0) == 10


def test_ramp_up() -> None:
    hpa = _hpa()
    expected = [
        # (current, utilisation, desired)       ratio → ceil(current × ratio)
        (2, 0.8, 3),  # 1.143 → ceil(2.29) = 3
        (3, 0.9, 4),  # 1.286 → ceil(3.86) = 4
        (4, 1.0, 6),  # 1.429 → ceil(5.71) = 6
        (6, 1.4, 10),  # 2.0 → 12 (limit 12) → max 10
        (10, 1.4, 10),  # 20 → max 10
    ]
    for i, (current, util, want) in enumerate(expected):
        assert _sync(hpa, current, util, 30.0 * i) == want, f"sync {i}"


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    hpa = _hpa()
    assert _sync(hpa, 4, 1.05, 0.0) == 6  # ratio 1.5 → 6
    assert _sync(hpa, 6, 0.7, 30.0) == 6  # ratio 1.0 → 6
    # Load halves: raw = ceil(6 × 0.5) = 3, but the highest recommendation of the last
    # 300 s is 6 until t = 30 leaves the window (at t = 330, since t=30 > 330-300 is false).
    for t in range(60, 301, 30):
        assert _sync(hpa, 6, 0.35, float(t)) == 6, f"t={t}"
    assert _sync(hpa, 6, 0.35, 330.0) == 3
    # Never below min_replicas: ratio 0.1 → ceil(0.3) = 1 → min 2 (after the window).
    for t in range(360, 700, 30):
        last = _sync(hpa, 3, 0.07, float(t))
    assert last == 2


def test_unready_pods_damp_a_scale_up() -> None:
    # 2 ready pods at 140 % (ratio 2.0), 2 unready counted as using 0:
    # (0.7 + 0.7) / (4 × 0.5) = 70 % → ratio 1.0 → keep 4
    assert _sync(_hpa(), 4, 1.4, 0.0, unready=2) == 4
    # All 4 ready at 140 %: ceil(4 × 2) = 8
    assert _sync(_hpa(), 4, 1.4, 0.0) == 8


def test_pods_without_metrics_damp_a_scale_down() -> None:
    # 2 pods at 35 % (ratio 0.5) and 2 ready pods with no metrics yet, counted at 100 %:
    # (0.175 + 0.175 + 0.5 + 0.5) / 2.0 = 67 % → ratio 0.957, within tolerance → keep 4
    assert _sync(_hpa(), 4, 0.35, 0.0, missing=2) == 4
    # Scaling up, they count as 0 %: 2 pods at 280 % → (1.4 + 1.4) / 2.0 = 140 % → ratio 2.0
    # → ceil(2.0 × 4) = 8
    assert _sync(_hpa(), 4, 2.8, 0.0, missing=2) == 8


def test_no_metrics_means_no_decision() -> None:
    assert hpa_replicas(3, [], [], [0.5] * 3, target_utilization=0.7) is None
    assert hpa_replicas(3, [], [], [], target_utilization=0.7, missing_requests=[0.5] * 3) is None


def test_twin_hpa_follows_a_surge_and_scales_back_after_the_window() -> None:
    surge = Fault(
        FaultKind.TRAFFIC_SURGE,
        ObjectRef("Deployment", "shop", "checkout"),
        DEFAULT_START + timedelta(hours=10),
        timedelta(hours=1),
        4.0,
    )
    twin = build_twin(small_scenario(faults=(surge,), start=DEFAULT_START + timedelta(hours=8)))
    twin.advance_to(DEFAULT_START + timedelta(hours=9, minutes=55))
    m = twin.metrics
    query = 'kube_deployment_spec_replicas{deployment="checkout"}'
    calm = m.query(query)[0].value
    twin.advance_to(DEFAULT_START + timedelta(hours=10, minutes=45))
    peak = m.query(query)[0].value
    assert peak > calm + 2
    hpa = twin.cluster.list_hpas("shop")[0]
    assert hpa.desired_replicas == peak and hpa.current_replicas == peak
    twin.advance_to(DEFAULT_START + timedelta(hours=11, minutes=40))
    assert m.query(query)[0].value < peak
    # After each scale-up to V at sync j, the next 9 syncs (< 300 s) never go below V.
    series = m.query_range(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        DEFAULT_START + timedelta(hours=9),
        DEFAULT_START + timedelta(hours=11, minutes=40),
        timedelta(seconds=30),
    )[0]
    values = series.values
    ups = [j for j in range(1, values.size) if values[j] > values[j - 1]]
    assert ups
    for j in ups:
        assert values[j : j + 10].min() >= values[j], f"dropped within 300 s of sync {j}"
