"""Synthetic bursty demand traces for a robustness check of the scaling policy.

Run: ``.venv/bin/python bench/synthetic_traces.py OUT_DIR [--seed 42]`` then
``.venv/bin/python bench/scaling.py OUT_DIR``. Writes four NAB-format traces (14 days,
5-minute points) unlike the development set: ``flash`` (daily shape with 25 flash
crowds of 2-6x for 10-60 min), ``spiky`` (idle with exponential noise and 60 spikes of
+50-500), ``heavy`` (weekday/weekend shape with log-normal noise, sd 0.25) and ``walk``
(a log random walk). Seeds 42 and 7 were looked at while choosing the headroom rules'
defaults; seeds 3 and 2026 were only replayed with the chosen defaults (docs/scaling.md).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np


def traces(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 14 * 288
    t = np.arange(n)
    base = 100 * (1 + 0.5 * np.sin(2 * np.pi * t / 288 - 1.5))
    flash = base * rng.lognormal(0, 0.1, n)
    for start in rng.choice(n, 25, replace=False):
        flash[start : start + rng.integers(2, 12)] *= rng.uniform(2, 6)
    spiky = 5 + rng.exponential(2, n)
    for start in rng.choice(n, 60, replace=False):
        spiky[start : start + rng.integers(1, 6)] += rng.uniform(50, 500)
    heavy = base * (1 + 0.3 * ((t // 288) % 7 < 5)) * rng.lognormal(0, 0.25, n)
    walk = 50 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
    return {"flash": flash, "spiky": spiky, "heavy": heavy, "walk": walk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for name, values in traces(args.seed).items():
        with (args.out / f"{name}.csv").open("w", encoding="utf-8") as fh:
            fh.write("timestamp,value\n")
            for i, value in enumerate(values.tolist()):
                stamp = (start + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S")
                fh.write(f"{stamp},{max(value, 0.0):.3f}\n")
        print(f"wrote {args.out / (name + '.csv')}")


if __name__ == "__main__":
    main()
