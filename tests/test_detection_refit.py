"""Refits off the tick: ``DetectionEngine.refit`` fits a bank outside the engine's lock
and, before swapping the new model in, feeds it the points the ticks scored meanwhile."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_detection_engine import N_HIST, STEP, at, latency, make_series, settings
from vigil.core import Anomaly
from vigil.detectors.engine import DetectionEngine

pytestmark = pytest.mark.timeout(60)

LABELS = {"app": "x"}


def tick(engine: DetectionEngine, values: np.ndarray, i: int) -> list[Anomaly]:
    return engine.observe([make_series(values, i, i + 1, LABELS)], at(i), refit=False).anomalies


def fitted(values: np.ndarray) -> DetectionEngine:
    engine = DetectionEngine(settings(refit_interval=6 * STEP))
    engine.observe([make_series(values, 0, N_HIST, LABELS)], at(N_HIST - 1), refit=False)
    for i in range(N_HIST, N_HIST + 7):
        assert tick(engine, values, i) == []
    return engine


def scores(anomalies: list[Anomaly]) -> list[float]:
    """Score and expected range: the range shows the model's state most plainly."""
    return [x for a in anomalies for x in (a.score, a.expected_low, a.expected_high)]


def test_a_refit_that_ends_after_ticks_catches_up_with_their_points() -> None:
    values = latency(N_HIST + 20, 4)
    values[N_HIST + 10 : N_HIST + 13] += 0.05  # an excursion after the refit, to compare
    now = at(N_HIST + 6)

    in_step = fitted(values)
    assert in_step.refit(now) == 1  # the bank is due: refitted at once
    assert in_step.refit(now) == 0
    for i in range(N_HIST + 7, N_HIST + 10):
        tick(in_step, values, i)

    def slow_refit(catch_up: bool) -> DetectionEngine:
        """The job snapshots the bank at ``now``; three ticks score before it swaps."""
        engine = fitted(values)
        (bank,) = engine._banks
        history, fitted_until = bank.history(), bank.last_time
        fresh = engine.make_ensemble()
        fresh.fit(history, bank.step)
        for i in range(N_HIST + 7, N_HIST + 10):
            tick(engine, values, i)
        engine._swap(bank, fresh, fitted_until if catch_up else bank.last_time)
        return engine

    caught_up, stale = slow_refit(True), slow_refit(False)
    expected = [tick(in_step, values, i) for i in range(N_HIST + 10, N_HIST + 14)]
    assert any(expected), "the excursion pages"
    got = [tick(caught_up, values, i) for i in range(N_HIST + 10, N_HIST + 14)]
    for want, have in zip(expected, got, strict=True):
        assert scores(have) == pytest.approx(scores(want), rel=1e-9)
    # Without the catch-up the model would have skipped three points: it scores otherwise.
    skipped = [tick(stale, values, i) for i in range(N_HIST + 10, N_HIST + 14)]
    assert [scores(s) for s in skipped] != [scores(s) for s in expected]


def test_refit_limit_and_nothing_due() -> None:
    values = latency(N_HIST + 20, 5)
    engine = fitted(values)
    assert engine.refit(at(N_HIST + 6), limit=0) == 0
    assert engine.refit(at(N_HIST), limit=None) == 0, "not due yet at this time"
