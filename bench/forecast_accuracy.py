"""Forecast accuracy on demand traces: MASE of each forecaster by rolling origin.

Run: ``.venv/bin/python bench/forecast_accuracy.py ../shared/data/traces/ [--horizon-s 3600]``.
For each trace, ``--origins`` forecast origins are spread over its second half; at each,
every model sees only the points before the origin (at most ``--history-days``) and
forecasts ``--horizon-s`` ahead. MASE = mean absolute error / in-sample mean absolute
error of the seasonal naive forecast (below 1: better than "same as yesterday").
``auto`` chooses per series by its own rolling-origin backtest on the past.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vigil.detectors.forecasting import (
    AutoForecaster,
    FourierRegression,
    HoltWinters,
    LastValue,
    SeasonalNaive,
    mase_scale,
    seasonal_periods,
)
from vigil.detectors.traces import read_trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("traces", nargs="+", type=Path)
    parser.add_argument("--horizon-s", type=float, default=3600.0)
    parser.add_argument("--origins", type=int, default=20)
    parser.add_argument("--history-days", type=float, default=14.0)
    args = parser.parse_args()
    files = [f for p in args.traces for f in (sorted(p.glob("*.csv")) if p.is_dir() else [p])]
    models = [SeasonalNaive(), LastValue(), HoltWinters(), FourierRegression(), AutoForecaster()]
    names = [m.name for m in models]
    print(f"{'trace':<40} " + " ".join(f"{n:>15}" for n in names))
    pooled: dict[str, list[float]] = {n: [] for n in names}
    start = time.perf_counter()
    for path in files:
        trace = read_trace(path)
        step = trace.step
        horizon = max(1, round(args.horizon_s / step))
        keep = int(args.history_days * 86400 / step)
        n = trace.values.size
        origins = np.linspace(n // 2, n - horizon, args.origins).astype(int)
        row: dict[str, list[float]] = {name: [] for name in names}
        for origin in origins.tolist():
            past = trace.values[max(0, origin - keep) : origin][None, :]
            future = trace.values[origin : origin + horizon]
            periods = seasonal_periods(step, past.shape[1])
            scale = mase_scale(past, periods[0] if periods else 1)[0]
            for model in models:
                pred = model.predict(past, horizon, periods, (0.5,))
                row[model.name].append(float(np.abs(future - pred.mean[0]).mean() / scale))
        cells = []
        for name in names:
            value = float(np.mean(row[name]))
            pooled[name].append(value)
            cells.append(f"{value:>15.3f}")
        print(f"{trace.name:<40} " + " ".join(cells))
    print(f"{'MEAN':<40} " + " ".join(f"{np.mean(pooled[n]):>15.3f}" for n in names))
    print(
        f"(horizon {args.horizon_s:g} s, {args.origins} origins per trace, "
        f"{time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
