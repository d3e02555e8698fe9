"""Load forecasters behind the ``Forecaster`` protocol, and the per-series model choice.

The agent forecasts through ``AutoForecaster`` and ``forecast_series``; the scaling
policy uses the streaming ``OnlineDemandForecaster``.
"""

from vigil.detectors.forecasting.base import (
    DEFAULT_QUANTILES,
    Forecaster,
    Prediction,
    fill_gaps,
    forecast_series,
    seasonal_periods,
)
from vigil.detectors.forecasting.fourier import FourierRegression
from vigil.detectors.forecasting.holt_winters import (
    HoltWinters,
    StatsmodelsHoltWinters,
    holt_winters_filter,
)
from vigil.detectors.forecasting.naive import LastValue, SeasonalNaive
from vigil.detectors.forecasting.online import OnlineDemandForecaster
from vigil.detectors.forecasting.selection import AutoForecaster, backtest_mase, mase_scale

__all__ = [
    "DEFAULT_QUANTILES",
    "AutoForecaster",
    "Forecaster",
    "FourierRegression",
    "HoltWinters",
    "LastValue",
    "OnlineDemandForecaster",
    "Prediction",
    "SeasonalNaive",
    "StatsmodelsHoltWinters",
    "backtest_mase",
    "fill_gaps",
    "forecast_series",
    "holt_winters_filter",
    "mase_scale",
    "seasonal_periods",
]
