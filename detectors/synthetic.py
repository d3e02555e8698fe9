"""Seeded synthetic metric banks with known anomalies, for tests and the speed benchmark.

``synthetic_bank`` builds ``n_series × n_points`` of daily (and optionally weekly)
seasonality, slow trends and Gaussian noise, then injects anomalies of three kinds
(spike, level shift, dip) into a fraction of the rows, returning the ground truth mask
beside the values. Pure numpy; every random draw comes from the given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.detectors.base import BoolArray, FloatArray, IntArray

__all__ = ["KINDS", "SyntheticBank", "synthetic_bank"]


@dataclass(frozen=True, eq=False)
class SyntheticBank:
    """Values, truth mask (True inside an injected anomaly), start per row (-1: none),
    and the kind per row (``KINDS`` index, -1: none)."""

    values: FloatArray
    truth: BoolArray
    onset: IntArray
    kind: IntArray
    step: float


KINDS = ("spike", "level-shift", "dip")


def synthetic_bank(
    n_series: int,
    n_points: int,
    *,
    step: float = 300.0,
    seed: int = 0,
    anomaly_fraction: float = 0.1,
    anomaly_after: int | None = None,
    anomaly_length: int = 6,
    magnitude: float = 8.0,
    weekly: bool = True,
) -> SyntheticBank:
    """A seeded bank; anomalies start at or after column ``anomaly_after`` (default: 3/4 in).

    Each row: level in [10, 1000), daily amplitude 0–50 % of level, noise 2–10 % of
    level, trend up to ±20 % of level over the whole span; anomalous rows get one
    anomaly of ``magnitude`` noise sigmas lasting ``anomaly_length`` points (spikes 1).
    """
    if n_series < 1 or n_points < 2:
        raise ValueError(
            f"synthetic bank needs n_series >= 1 and n_points >= 2, got {n_series}, {n_points}"
        )
    rng = np.random.default_rng(seed)
    t = np.arange(n_points, dtype=np.float64) * step
    level = rng.uniform(10, 1000, n_series)[:, None]
    amp = rng.uniform(0.0, 0.5, n_series)[:, None] * level
    phase = rng.uniform(0, 2 * np.pi, n_series)[:, None]
    noise = rng.uniform(0.02, 0.1, n_series)[:, None] * level
    trend = rng.uniform(-0.2, 0.2, n_series)[:, None] * level / t[-1]
    day = np.sin(2 * np.pi * t[None, :] / 86_400.0 + phase)
    values = level + amp * day + trend * t[None, :]
    if weekly:
        weekend = ((t // 86_400.0) % 7 >= 5).astype(np.float64)
        values -= 0.3 * amp * weekend[None, :] * (rng.uniform(0, 1, n_series)[:, None] > 0.5)
    values += rng.normal(0.0, 1.0, (n_series, n_points)) * noise
    truth = np.zeros((n_series, n_points), dtype=bool)
    onset = np.full(n_series, -1, dtype=np.int64)
    kind_of = np.full(n_series, -1, dtype=np.int64)
    first = anomaly_after if anomaly_after is not None else (3 * n_points) // 4
    hit = np.flatnonzero(rng.uniform(0, 1, n_series) < anomaly_fraction)
    kinds = rng.integers(0, 3, hit.size)
    for row, kind in zip(hit, kinds, strict=True):
        length = 1 if kind == 0 else anomaly_length
        start = int(rng.integers(first, max(first + 1, n_points - length)))
        sign = -1.0 if kind == 2 else 1.0
        values[row, start : start + length] += sign * magnitude * noise[row, 0]
        truth[row, start : start + length] = True
        onset[row] = start
        kind_of[row] = kind
    return SyntheticBank(values=values, truth=truth, onset=onset, kind=kind_of, step=step)
