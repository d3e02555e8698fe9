"""The ``Forecaster`` protocol and what every forecaster shares: seasons, bands, ``Forecast``.

Implemented by ``naive``, ``holt_winters``, ``fourier`` and ``selection`` in this
package; called by the agent's forecast step and ``vigil forecast`` through
``forecast_series``. Forecasters are batch-first: they take a matrix of aligned
histories (one row per workload, regular steps, no NaN) so a tick forecasts a
thousand workloads with a few numpy operations. (The lead reconciles this protocol with
``detectors/base.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vigil.core import Forecast, Series, WarmingUp

__all__ = [
    "DEFAULT_QUANTILES",
    "Forecaster",
    "Prediction",
    "fill_gaps",
    "forecast_series",
    "seasonal_periods",
]

FloatArray = npt.NDArray[np.float64]
DAY_S = 86400.0
WEEK_S = 7 * DAY_S
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)


@dataclass(frozen=True, eq=False)
class Prediction:
    """Point forecasts ``mean`` (series × horizon) and the bands around them.

    ``residual_quantiles`` (series × quantiles) are quantiles of one-step in-sample
    errors; ``growth`` (series × horizon) scales them with the horizon. A band is
    ``mean + growth * residual_quantile``: ordered whenever the quantiles are.
    ``models`` names the model behind each row when a selector mixed several.
    """

    mean: FloatArray
    residual_quantiles: FloatArray
    growth: FloatArray
    quantiles: tuple[float, ...]
    models: tuple[str, ...] = ()

    def band(self, q: float) -> FloatArray:
        """The ``q`` band (series × horizon)."""
        try:
            i = self.quantiles.index(q)
        except ValueError:
            raise KeyError(f"prediction has no quantile {q}; it has {self.quantiles}") from None
        return self.mean + self.growth * self.residual_quantiles[:, i : i + 1]


@runtime_checkable
class Forecaster(Protocol):
    """A batch forecaster: ``predict`` on aligned histories, one row per series."""

    name: str
    version: str

    def min_history(self, periods: Sequence[int]) -> int:
        """Points of history needed before ``predict`` is meaningful."""
        ...

    def predict(
        self,
        history: FloatArray,
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
    ) -> Prediction:
        """Forecast ``horizon`` steps past the end of each row of ``history``."""
        ...


def seasonal_periods(step_s: float, points: int) -> tuple[int, ...]:
    """Daily and weekly periods (in points) that ``points`` of history can estimate.

    A season counts when at least two full cycles are present; periods under 2 points
    (e.g. daily data and a daily season) are dropped.
    """
    if step_s <= 0:
        raise ValueError(f"step must be > 0 seconds, got {step_s}")
    periods = []
    for span in (DAY_S, WEEK_S):
        period = round(span / step_s)
        if period >= 2 and points >= 2 * period:
            periods.append(period)
    return tuple(periods)


def residual_quantiles(residuals: FloatArray, quantiles: Sequence[float]) -> FloatArray:
    """Per-row empirical quantiles of residuals (series × quantiles), NaN-tolerant."""
    qs = np.asarray(quantiles, dtype=np.float64)
    if residuals.shape[1] == 0:
        return np.zeros((residuals.shape[0], qs.size))
    out = np.nanquantile(residuals, qs, axis=1).T if np.isnan(residuals).any() else None
    if out is None:
        out = np.quantile(residuals, qs, axis=1).T
    return np.nan_to_num(np.asarray(out, dtype=np.float64))


def fill_gaps(values: FloatArray) -> FloatArray:
    """Interior NaNs linearly interpolated, leading/trailing ones held (a row at a time)."""
    out = np.array(values, dtype=np.float64, copy=True)
    if out.ndim == 1:
        out = out[None, :]
    idx = np.arange(out.shape[1])
    for row in out:
        bad = np.isnan(row)
        if bad.all():
            continue
        if bad.any():
            row[bad] = np.interp(idx[bad], idx[~bad], row[~bad])
    return out


def forecast_series(
    forecaster: Forecaster,
    series: Series,
    *,
    horizon: int,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    made_at: datetime | None = None,
    unit: str = "",
) -> Forecast:
    """Forecast one ``Series`` ``horizon`` steps ahead as a ``vigil.core.Forecast``.

    Raises ``WarmingUp`` when the series has fewer valid points than the forecaster
    needs, and ``ValueError`` for an irregular or too short series.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 step, got {horizon}")
    valid = series.valid_count()
    if len(series) < 3 or valid < 3:
        raise WarmingUp(series.id, have=valid, need=forecaster.min_history(()))
    step = float(np.median(np.diff(series.timestamps)))
    periods = seasonal_periods(step, len(series))
    need = forecaster.min_history(periods)
    if valid < need:
        raise WarmingUp(series.id, have=valid, need=need)
    history = fill_gaps(series.values)
    pred = forecaster.predict(history, horizon, periods, quantiles)
    last = float(series.timestamps[-1])
    stamps: FloatArray = last + step * np.arange(1, horizon + 1, dtype=np.float64)
    when = made_at or datetime.fromtimestamp(last, tz=UTC)
    return Forecast(
        metric=series.metric,
        labels=series.labels,
        made_at=when,
        timestamps=stamps,
        mean=pred.mean[0],
        quantiles={q: pred.band(q)[0] for q in pred.quantiles},
        model=f"{forecaster.name}/{pred.models[0]}" if pred.models else forecaster.name,
        model_version=forecaster.version,
        unit=unit,
    )
