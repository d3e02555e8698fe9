"""The vectorised models against statsmodels, season detection, the ensemble's
calibration and persistence, and detection results on a seeded synthetic bank."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.detectors.ensemble import Ensemble, calibrate
from vigil.detectors.ets import HoltWintersState, holt_winters_filter
from vigil.detectors.periods import detect_periods, seasonal_profile
from vigil.detectors.seasonal import SeasonalBaseline
from vigil.detectors.synthetic import synthetic_bank

pytestmark = pytest.mark.timeout(60)


def test_holt_winters_recursion_matches_statsmodels_exponential_smoothing() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(0)
    m, n = 24, 240
    t = np.arange(n)
    rows = []
    params = [(0.3, 0.05, 0.1), (0.7, 0.01, 0.4), (0.1, 0.2, 0.05)]
    for i, (alpha, beta, gamma) in enumerate(params):
        y = 10 + 0.01 * t + (i + 1) * np.sin(2 * np.pi * t / m) + rng.normal(0, 0.3, n)
        level0, trend0, season0 = 10.0, 0.01, (i + 1) * np.sin(2 * np.pi * np.arange(m) / m)
        ref = (
            ExponentialSmoothing(
                y,
                trend="add",
                seasonal="add",
                seasonal_periods=m,
                initialization_method="known",
                initial_level=level0,
                initial_trend=trend0,
                initial_seasonal=season0,
            )
            .fit(
                smoothing_level=alpha,
                smoothing_trend=beta,
                smoothing_seasonal=gamma,
                optimized=False,
            )
            .fittedvalues
        )
        rows.append((y, level0, trend0, season0, ref))
    # All three series in one vectorised call, each with its own weights.
    state = HoltWintersState(
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.stack([r[3] for r in rows]),
        np.full(3, m),
        0,
    )
    fitted = holt_winters_filter(
        np.stack([r[0] for r in rows]),
        state,
        np.array([p[0] for p in params]),
        np.array([p[1] for p in params]),
        np.array([p[2] for p in params]),
    )
    for i, row in enumerate(rows):
        np.testing.assert_allclose(fitted[i], row[4], rtol=1e-10, atol=1e-10)


def test_seasonal_profile_agrees_with_statsmodels_stl() -> None:
    from statsmodels.tsa.seasonal import STL

    rng = np.random.default_rng(1)
    p, days = 48, 6
    t = np.arange(p * days)
    shape = 3 * np.sin(2 * np.pi * t / p) + 1.5 * (t % p > 30)
    y = 50 + 0.02 * t + shape + rng.normal(0, 0.3, t.size)
    stl = STL(y, period=p, robust=True).fit()
    ours = seasonal_profile(y[None, :], np.array([p]))[0]
    ours_full = ours[t % p]
    tail = slice(-2 * p, None)  # STL's season drifts; compare on the last cycles
    corr = np.corrcoef(ours_full[tail], stl.seasonal[tail])[0, 1]
    assert corr > 0.97
    rmse = np.sqrt(np.mean((ours_full[tail] - stl.seasonal[tail]) ** 2))
    assert rmse < 0.3 * np.std(stl.seasonal)


def test_period_detection_finds_daily_and_none() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(288 * 4)
    daily = 10 + 3 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, t.size)
    noise = rng.normal(0, 1, t.size)
    walk = np.cumsum(rng.normal(0, 1, t.size))
    assert detect_periods(np.stack([daily, noise, walk]), 300.0).tolist() == [288, 0, 0]
    # Two days of history are not enough to claim a daily season.
    assert detect_periods(daily[None, : 288 * 2], 300.0).tolist() == [0]


def test_calibration_is_half_at_the_threshold() -> None:
    c = calibrate(np.array([0.0, 5.0, 10.0, np.nan]), 5.0)
    np.testing.assert_allclose(c[:3], [0.0, 0.5, 0.9375])
    assert np.isnan(c[3])


def test_ensemble_persistence_pages_on_k_of_n_not_on_a_blip() -> None:
    rng = np.random.default_rng(3)
    n = 900
    x = 100 + rng.normal(0, 1, (2, n + 12))
    x[0, n + 3] += 20  # one blip
    x[1, n + 6 : n + 9] += 20  # three points in a row
    ens = Ensemble([SeasonalBaseline()], persistence=(2, 3))
    ens.fit(x[:, :n], 300.0)
    res = ens.update(x[:, n:])
    assert res.score[0, 3] >= 0.5 and not res.alarm[0].any()
    assert res.alarm[1].tolist() == [False] * 7 + [True] * 3 + [False] * 2
    assert ((res.score >= 0) & (res.score <= 1)).all()


def test_ensemble_flags_the_injected_anomalies_of_a_seeded_bank() -> None:
    n_fit, n_new = 1200, 60
    bank = synthetic_bank(40, n_fit + n_new, seed=7, anomaly_fraction=0.3, anomaly_after=n_fit + 10)
    ens = Ensemble()
    ens.fit(bank.values[:, :n_fit], bank.step)
    res = ens.update(bank.values[:, n_fit:])
    truth = bank.truth[:, n_fit:]
    flagged = set(np.flatnonzero(res.alarm.any(axis=1)).tolist())
    injected = set(np.flatnonzero(truth.any(axis=1)).tolist())
    # Sustained anomalies (level shifts and dips) page; no clean row pages.
    sustained = {r for r in injected if truth[r].sum() > 1}
    assert flagged == sustained == {6, 7, 12, 14, 23, 36, 37}
    for row in flagged:
        cols = np.flatnonzero(res.alarm[row])
        onset = int(bank.onset[row]) - n_fit
        assert onset <= cols[0] <= onset + 2, "pages within persistence of the onset"
