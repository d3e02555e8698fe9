"""Contract suite for every batch forecaster, plus the numpy Holt-Winters against statsmodels."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import numpy as np
import pytest

from vigil.core import Forecast, Series, WarmingUp
from vigil.detectors.forecasting import (
    AutoForecaster,
    Forecaster,
    FourierRegression,
    HoltWinters,
    LastValue,
    SeasonalNaive,
    StatsmodelsHoltWinters,
    backtest_mase,
    fill_gaps,
    forecast_series,
    holt_winters_filter,
    seasonal_periods,
)

HOUR = 3600.0
FORECASTERS = [SeasonalNaive(), LastValue(), HoltWinters(), FourierRegression(), AutoForecaster()]
IDS = [f.name for f in FORECASTERS]
# last-value is not seasonal by design: the sine case applies to the others
SEASONAL = [f for f in FORECASTERS if not isinstance(f, LastValue)]


def hourly(values: np.ndarray, metric: str = "demand") -> Series:
    ts = 1_700_000_000.0 + HOUR * np.arange(values.size)
    return Series(metric, {"workload": "api"}, ts, values)


def sine(days: int = 14, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(24 * days)
    rng = np.random.default_rng(seed)
    return 100 + 30 * np.sin(2 * np.pi * t / 24) + rng.normal(0, noise, t.size)


@pytest.mark.parametrize("forecaster", SEASONAL, ids=[f.name for f in SEASONAL])
def test_pure_sine_is_forecast_within_tolerance(forecaster: Forecaster) -> None:
    history = sine(days=14)
    fc = forecast_series(forecaster, hourly(history), horizon=24)
    t = np.arange(history.size, history.size + 24)
    truth = 100 + 30 * np.sin(2 * np.pi * t / 24)
    assert np.max(np.abs(fc.mean - truth)) < 1.5  # 5 % of the amplitude
    assert fc.timestamps[0] == pytest.approx(1_700_000_000.0 + HOUR * history.size)


@pytest.mark.parametrize("forecaster", FORECASTERS, ids=IDS)
def test_a_constant_stays_constant(forecaster: Forecaster) -> None:
    fc = forecast_series(forecaster, hourly(np.full(24 * 10, 42.0)), horizon=12)
    assert np.allclose(fc.mean, 42.0, atol=1e-6)
    for band in fc.quantiles.values():
        assert np.allclose(band, 42.0, atol=1e-6)


@pytest.mark.parametrize("forecaster", FORECASTERS, ids=IDS)
def test_short_history_is_warming_up(forecaster: Forecaster) -> None:
    with pytest.raises(WarmingUp) as info:
        forecast_series(forecaster, hourly(np.array([1.0, 2.0])), horizon=3)
    assert info.value.have == 2
    assert info.value.need > 2
    assert "warming up" in str(info.value)


@pytest.mark.parametrize("forecaster", FORECASTERS, ids=IDS)
def test_quantiles_are_ordered_and_cover_the_noise(forecaster: Forecaster) -> None:
    history = sine(days=14, noise=3.0, seed=1)
    fc = forecast_series(forecaster, hourly(history), horizon=24, quantiles=(0.05, 0.5, 0.95))
    assert isinstance(fc, Forecast)
    low, mid, high = fc.quantile(0.05), fc.quantile(0.5), fc.quantile(0.95)
    assert np.all(low <= mid) and np.all(mid <= high)
    assert np.all(high - low > 3.0)  # noise sd 3: a 90 % band is wider than one sd


def test_batch_rows_are_forecast_independently() -> None:
    rows = np.vstack([sine(days=14), np.full(24 * 14, 5.0)])
    periods = seasonal_periods(HOUR, rows.shape[1])
    pred = HoltWinters().predict(rows, 6, periods)
    alone = HoltWinters().predict(rows[1:], 6, periods)
    assert np.allclose(pred.mean[1], alone.mean[0])


def test_numpy_holt_winters_matches_statsmodels_recursions() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    m, t = 12, np.arange(120)
    rng = np.random.default_rng(0)
    x = 10 + 0.05 * t + 3 * np.sin(2 * np.pi * t / m) + rng.normal(0, 0.3, t.size)
    a, b, g, phi = 0.3, 0.1, 0.2, 0.95
    _, ours = holt_winters_filter(
        x[None, :], np.array([a]), np.array([b]), np.array([g]), phi=phi, period=m, horizon=10
    )
    level = x[:m].mean()
    model = ExponentialSmoothing(
        x,
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=m,
        initialization_method="known",
        initial_level=level,
        initial_trend=(x[m : 2 * m].mean() - level) / m,
        initial_seasonal=x[:m] - level,
    )
    fit = model.fit(
        smoothing_level=a,
        smoothing_trend=b,
        smoothing_seasonal=g,
        damping_trend=phi,
        optimized=False,
    )
    assert np.allclose(ours[0], fit.forecast(10), atol=1e-9)


def test_numpy_holt_winters_is_as_accurate_as_fitted_statsmodels() -> None:
    history = sine(days=12, noise=2.0, seed=3)
    periods = (24,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' optimiser warns on convergence
        ref = backtest_mase(StatsmodelsHoltWinters(), history[None, :], 24, periods, origins=2)
    ours = backtest_mase(HoltWinters(), history[None, :], 24, periods, origins=2)
    assert ours[0] < 1.15 * ref[0] + 0.05


def test_auto_choice_beats_seasonal_naive_and_is_cached() -> None:
    t = np.arange(24 * 21)
    weekly = np.where((t // 24) % 7 >= 5, -25.0, 0.0)
    rng = np.random.default_rng(4)
    rows = np.vstack([100 + 30 * np.sin(2 * np.pi * t / 24) + weekly + rng.normal(0, 2, t.size)])
    periods = seasonal_periods(HOUR, rows.shape[1])
    assert periods == (24, 168)
    auto = AutoForecaster(reselect_every=2)
    pred = auto.predict(rows, 24, periods, keys=["a"])
    assert pred.models[0] != "seasonal-naive"
    assert auto.last_scores[0].min() < 1.0  # MASE below the seasonal naive's in-sample error
    auto.last_scores = np.empty((0, len(auto.candidates)))
    auto.predict(rows, 24, periods, keys=["a"])  # reused: no backtest
    assert auto.last_scores.shape == (0, len(auto.candidates))


def test_gaps_are_filled_not_zeroed() -> None:
    filled = fill_gaps(np.array([1.0, np.nan, 3.0, np.nan]))
    assert filled.tolist() == [[1.0, 2.0, 3.0, 3.0]]


def test_forecast_names_the_chosen_model() -> None:
    fc = forecast_series(
        AutoForecaster(), hourly(sine(days=14)), horizon=4, made_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert fc.model.startswith("auto/")
    assert fc.model_version == "1"
