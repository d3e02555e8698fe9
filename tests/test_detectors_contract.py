"""Contract suite for every ``vigil.detectors`` detector, grouped by what each declares.

Every detector: declares the protocol, stays quiet on a constant series, scores a 10σ
spike above everything else, survives NaN and gaps, and reports warming-up (not ready)
on too-short history. Level-invariant detectors also score a shifted series the same
(hypothesis); threshold-based ones are exercised on values in their own units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.detectors.base import Detector
from vigil.detectors.changepoint import CusumDetector
from vigil.detectors.ets import HoltWintersDetector
from vigil.detectors.isolation import IsolationDetector
from vigil.detectors.seasonal import SeasonalBaseline
from vigil.detectors.slo import BurnRate, StaticThreshold

pytestmark = pytest.mark.timeout(60)

STEP = 300.0
N_FIT = 900  # 3.1 days of 5-minute points: enough to find the daily season, fast to fit


@dataclass(frozen=True)
class Case:
    """A detector and values that are normal in its own units."""

    make: Callable[[], Detector]
    level: float
    noise: float
    rows: int = 1


CASES = {
    "seasonal": Case(SeasonalBaseline, 100.0, 1.0),
    "ets": Case(HoltWintersDetector, 100.0, 1.0),
    "cusum": Case(CusumDetector, 100.0, 1.0),
    "isolation-forest": Case(IsolationDetector, 100.0, 1.0, rows=3),
    "slo-threshold": Case(lambda: StaticThreshold(1.0), 0.3, 0.02),
    "slo-burn-rate": Case(lambda: BurnRate(0.99), 0.001, 0.0002),
}
LEVEL_INVARIANT = [k for k, c in CASES.items() if c.make().level_invariant]
NEEDS_HISTORY = [k for k, c in CASES.items() if c.make().min_points > 1 or k == "slo-burn-rate"]


def normal_series(case: Case, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    season = 5 * case.noise * np.sin(2 * np.pi * t / 288)
    return case.level + season + rng.normal(0, case.noise, (case.rows, n))


@pytest.mark.parametrize("name", list(CASES))
def test_declares_the_protocol(name: str) -> None:
    det = CASES[name].make()
    assert isinstance(det, Detector)
    assert det.name == name
    assert det.version and det.threshold > 0 and det.min_points >= 1
    assert det.multivariate == (CASES[name].rows > 1)


@pytest.mark.parametrize("name", list(CASES))
def test_constant_series_has_no_anomaly(name: str) -> None:
    case = CASES[name]
    det = case.make()
    det.fit(np.full((case.rows, N_FIT), case.level), STEP)
    scores = det.update(np.full((case.rows, 24), case.level)).score
    assert np.isfinite(scores).all()
    assert (scores < det.threshold).all()


@pytest.mark.parametrize("name", list(CASES))
def test_ten_sigma_spike_raises_the_raw_score(name: str) -> None:
    case = CASES[name]
    data = normal_series(case, N_FIT + 40, seed=1)
    spiked = data.copy()
    spiked[0, N_FIT + 20] += 10 * case.noise
    runs = []
    for values in (data, spiked):
        det = case.make()
        det.fit(values[:, :N_FIT], STEP)
        runs.append(det.update(values[:, N_FIT:]).score[0])
    plain, scores = runs
    assert scores[20] > plain[20]
    if det.level_invariant:
        # An unusual point in its context scores above every other point; point
        # detectors also cross their threshold (CUSUM waits for a sustained shift).
        assert scores[20] > np.nanmax(np.delete(scores, 20))
        if name != "cusum":
            assert scores[20] >= det.threshold


@pytest.mark.parametrize("name", LEVEL_INVARIANT)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shift=st.floats(-1000, 1000, allow_nan=False), seed=st.integers(0, 3))
def test_level_invariant_detectors_ignore_the_level(name: str, shift: float, seed: int) -> None:
    case = CASES[name]
    data = normal_series(case, N_FIT + 30, seed=seed)
    data[0, N_FIT + 10] += 8 * case.noise
    runs = []
    for offset in (0.0, shift):
        det = case.make()
        det.fit(data[:, :N_FIT] + offset, STEP)
        runs.append(det.update(data[:, N_FIT:] + offset).score)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_nan_and_gaps_are_handled(name: str) -> None:
    case = CASES[name]
    det = case.make()
    data = normal_series(case, N_FIT + 30, seed=2)
    rng = np.random.default_rng(3)
    data[:, rng.choice(N_FIT, 60, replace=False)] = np.nan
    data[:, 200:240] = np.nan  # a 200-minute gap
    data[:, N_FIT + 5 : N_FIT + 8] = np.nan
    det.fit(data[:, :N_FIT], STEP)
    scores = det.update(data[:, N_FIT:]).score
    assert np.isnan(scores[:, 5:8]).all(), "a missing point has no score"
    finite = np.delete(scores, [5, 6, 7], axis=1)
    assert np.isfinite(finite).all()
    if det.level_invariant:
        assert (finite < 2 * det.threshold).all(), "no false alarm around gaps"


@pytest.mark.parametrize("name", NEEDS_HISTORY)
def test_too_short_history_is_warming_up(name: str) -> None:
    case = CASES[name]
    det = case.make()
    data = normal_series(case, 5)
    det.fit(data, STEP)
    assert not det.ready.any()
    assert np.isnan(det.update(normal_series(case, 3, seed=4)).score).all()


def test_all_nan_history_is_warming_up_not_a_crash() -> None:
    det = SeasonalBaseline()
    det.fit(np.full((2, N_FIT), np.nan), STEP)
    assert not det.ready.any()
    assert np.isnan(det.update(np.ones((2, 4))).score).all()


def test_bad_input_names_the_problem() -> None:
    det = SeasonalBaseline()
    with pytest.raises(ValueError, match="2-D array"):
        det.fit(np.zeros((2, 3, 4)), STEP)
    det.fit(np.zeros((2, N_FIT)), STEP)
    with pytest.raises(ValueError, match="fitted on 2 rows, got 3"):
        det.update(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="inf"):
        det.update(np.array([[np.inf], [0.0]]))
