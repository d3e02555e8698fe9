"""Forecast speed: 1,000 workloads in one tick (target: <= 10 s on 2 cores).

Run: ``.venv/bin/python bench/forecast_speed.py [--workloads 1000] [--days 7]``.
Each workload is a week of 5-minute demand (daily shape, weekly shape, noise, bursts);
the tick forecasts one hour ahead with 0.05/0.5/0.95 quantiles through the
``AutoForecaster``: first with the per-series model choice (rolling-origin backtest of
every candidate), then a later tick that reuses the cached choices.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vigil.detectors.forecasting import AutoForecaster, seasonal_periods
from vigil.detectors.scaling import PredictiveScaler
from vigil.detectors.scaling_settings import ScalingSettings


def synthetic(workloads: int, points: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(points)
    daily = np.sin(2 * np.pi * t / 288)[None, :] * rng.uniform(0.2, 0.6, (workloads, 1))
    weekly = np.sin(2 * np.pi * t / 2016)[None, :] * rng.uniform(0.0, 0.2, (workloads, 1))
    level = rng.uniform(10, 1000, (workloads, 1))
    noise = rng.normal(0, 0.05, (workloads, points))
    bursts = (rng.random((workloads, points)) < 0.005) * rng.uniform(0, 2, (workloads, points))
    return level * np.maximum(0.0, 1 + daily + weekly + noise + bursts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--horizon", type=int, default=12, help="steps of 5 min")
    args = parser.parse_args()
    points = int(args.days * 288)
    history = synthetic(args.workloads, points, np.random.default_rng(1))
    periods = seasonal_periods(300.0, points)
    keys = [f"w{i}" for i in range(args.workloads)]
    auto = AutoForecaster()
    start = time.perf_counter()
    pred = auto.predict(history, args.horizon, periods, keys=keys)
    first = time.perf_counter() - start
    start = time.perf_counter()
    auto.predict(history, args.horizon, periods, keys=keys)
    cached = time.perf_counter() - start
    names, counts = np.unique(np.array(pred.models), return_counts=True)
    chosen = ", ".join(f"{n}: {c}" for n, c in zip(names.tolist(), counts.tolist(), strict=True))
    print(f"{args.workloads} workloads x {points} points (5 min), horizon {args.horizon}")
    print(f"tick with model selection: {first:.2f} s")
    print(f"tick with cached choice:   {cached:.2f} s")
    print(f"models chosen: {chosen}")
    # the scaling policy's own streaming forecaster: warm-up replay, then one tick
    scalers = [PredictiveScaler(ScalingSettings(capacity_per_pod=50.0)) for _ in keys]
    start = time.perf_counter()
    for row, scaler in zip(history[:, :-1], scalers, strict=True):
        for i, value in enumerate(row.tolist()):
            scaler.observe(300.0 * i, value)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    now = 300.0 * (points - 1)
    for row, scaler in zip(history, scalers, strict=True):
        scaler.observe(now, float(row[-1]))
        scaler.plan(now + 30.0, float(row[-1]), current=10)
    tick = time.perf_counter() - start
    print(f"scaling policy, warm-up from {points - 1} points each: {warm:.1f} s (once, at start)")
    print(f"scaling policy tick (one new point + a plan each): {tick:.2f} s")


if __name__ == "__main__":
    main()
