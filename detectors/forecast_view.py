"""What ``vigil forecast WORKLOAD`` shows: recent history, the forecast band, the next peak.

The CLI fetches the workload's demand ``Series`` through a ``MetricSource`` and calls
``forecast_view``; it prints ``ForecastView.text()`` (a terminal chart) and, with
``--png``, plots ``history`` and ``forecast`` with matplotlib itself (this module does no
I/O). ``vigil status`` can show ``peak_at``/``peak_upper`` for each scaled workload.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from vigil.core import Forecast, Series, format_quantity
from vigil.detectors.forecasting import AutoForecaster, Forecaster, forecast_series

__all__ = ["ForecastView", "forecast_view"]

BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, eq=False)
class ForecastView:
    """A series' recent history and its forecast, with the next peak picked out."""

    history: Series
    forecast: Forecast
    upper_q: float
    peak_at: float
    peak_mean: float
    peak_upper: float

    def text(self, width: int = 72, unit: str = "") -> str:
        """A two-line sparkline (history | forecast mean, then the upper band) and a summary."""
        hist = self.history.values[~np.isnan(self.history.values)]
        mean, upper = self.forecast.mean, self.forecast.quantile(self.upper_q)
        room = max(8, width - 2)
        hist_w = max(1, room - min(room // 3, mean.size))
        fc_w = room - hist_w
        hist_cells = _resample(hist, hist_w)
        mean_cells, upper_cells = _resample(mean, fc_w), _resample(upper, fc_w)
        top = float(max(hist_cells.max(initial=0.0), upper_cells.max(initial=0.0), 1e-12))
        line1 = _spark(hist_cells, top) + " │" + _spark(mean_cells, top)
        line2 = " " * len(hist_cells) + " │" + _spark(upper_cells, top)
        when = datetime.fromtimestamp(self.peak_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        summary = (
            f"{self.history.id}: next peak {format_quantity(self.peak_mean, unit)} "
            f"(p{round(self.upper_q * 100)} {format_quantity(self.peak_upper, unit)}) "
            f"at {when}; model {self.forecast.model}"
        )
        return "\n".join([line1, line2, summary])


def _resample(values: np.ndarray, cells: int) -> np.ndarray:
    if values.size == 0 or cells <= 0:
        return np.zeros(0)
    edges = np.linspace(0, values.size, min(cells, values.size) + 1).astype(int)
    return np.array([values[a:b].max() for a, b in itertools.pairwise(edges)])


def _spark(values: np.ndarray, top: float) -> str:
    idx = np.clip(np.round(values / top * (len(BLOCKS) - 1)), 0, len(BLOCKS) - 1).astype(int)
    return "".join(BLOCKS[i] for i in idx.tolist())


def forecast_view(
    series: Series,
    *,
    horizon_s: float = 3600.0,
    history_s: float = 86400.0,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    forecaster: Forecaster | None = None,
) -> ForecastView:
    """Forecast ``series`` ``horizon_s`` ahead and keep ``history_s`` of it for display.

    Raises ``vigil.core.WarmingUp`` when the series is too short to forecast.
    """
    if len(series) < 2:
        from vigil.core import WarmingUp

        raise WarmingUp(series.id, have=len(series), need=3)
    step = float(np.median(np.diff(series.timestamps)))
    horizon = max(1, round(horizon_s / step))
    fc = forecast_series(
        forecaster or AutoForecaster(), series, horizon=horizon, quantiles=quantiles
    )
    upper_q = max(fc.quantiles)
    upper = fc.quantile(upper_q)
    i = int(np.argmax(upper))
    end = float(series.timestamps[-1])
    return ForecastView(
        history=series.between(end - history_s, end),
        forecast=fc,
        upper_q=upper_q,
        peak_at=float(fc.timestamps[i]),
        peak_mean=float(fc.mean[i]),
        peak_upper=float(upper[i]),
    )
