"""The two model protocols of ``vigil.detectors``: ``Detector`` and ``Forecaster``.

Both work on aligned 2-D float arrays, one row per series and one column per step
(``n_series × n_points``), NaN for gaps, so one call serves thousands of series.
``vigil.detectors.engine`` drives detectors each tick; the forecasting engine drives
forecasters. Implementations: ``seasonal``, ``ets``, ``changepoint``, ``isolation``,
``slo`` (detectors) and the ``forecast*`` modules (forecasters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoolArray",
    "Detector",
    "FloatArray",
    "Forecaster",
    "IntArray",
    "Scores",
    "SeasonAware",
    "as_matrix",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def as_matrix(values: object, name: str = "values") -> FloatArray:
    """``values`` as a 2-D float64 array (a 1-D array becomes one row); clear error otherwise."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_series × n_points), got shape {arr.shape}; "
            "stack series as rows and steps as columns, NaN for gaps"
        )
    if np.isinf(arr).any():
        raise ValueError(f"{name} holds ±inf; use NaN for missing points")
    return arr


@dataclass(frozen=True, eq=False)
class Scores:
    """What a detector says about the columns it was given (all ``n_series × k``).

    ``score`` is the raw score (≥ 0, the detector's own units; ``threshold`` on the
    detector marks "anomalous"), NaN where the point is missing or the series is still
    warming up. ``expected`` is the model's value and ``low``/``high`` the range it
    would not call anomalous.
    """

    score: FloatArray
    expected: FloatArray
    low: FloatArray
    high: FloatArray

    def __post_init__(self) -> None:
        shape = self.score.shape
        for name in ("expected", "low", "high"):
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"scores: {name} has shape {getattr(self, name).shape}, not {shape}"
                )


@runtime_checkable
class Detector(Protocol):
    """An anomaly detector over a bank of aligned series.

    ``fit`` learns from history (batch, vectorised over rows); ``update`` scores new
    columns one step after another, each using only data up to itself, and folds them
    into the state, so a tick costs one vectorised step, not a refit. The engine refits
    on a schedule. ``ready`` says per row whether the fit had ``min_points`` valid
    points; rows not ready score NaN until a refit gives them enough.

    Declarations the contract suite groups by: ``multivariate`` (rows are the related
    metrics of one workload, scored jointly) and ``level_invariant`` (adding a constant
    to a row changes nothing; otherwise the detector is threshold-based).
    """

    name: str
    version: str
    min_points: int
    multivariate: bool
    level_invariant: bool
    threshold: float

    def fit(self, history: FloatArray, step: float) -> None:
        """Learn from ``history`` (``n_series × n_points``); ``step`` is seconds per column."""
        ...

    def update(self, values: FloatArray) -> Scores:
        """Score the new columns ``values`` (``n_series × k``) causally and absorb them."""
        ...

    @property
    def ready(self) -> BoolArray:
        """Per row: did the last fit have enough valid points to score."""
        ...


class SeasonAware(Detector, Protocol):
    """A detector that can reuse season lengths found once for the whole ensemble.

    ``periods`` is the season length in columns per row (0: none), as
    ``vigil.detectors.periods.detect_periods`` returns; ``None`` detects them.
    Implementations set the class attribute ``uses_season = True``.
    """

    uses_season: bool

    def fit(self, history: FloatArray, step: float, *, periods: IntArray | None = None) -> None: ...


@runtime_checkable
class Forecaster(Protocol):
    """A load forecaster over a bank of aligned series (kept minimal on purpose).

    ``fit`` learns from ``history`` (``n_series × n_points``, NaN for gaps, ``step``
    seconds per column); ``forecast`` returns the point forecast (``n_series ×
    horizon``) and one band of the same shape per requested quantile.
    """

    name: str
    version: str
    min_points: int

    def fit(self, history: FloatArray, step: float) -> None: ...

    def forecast(
        self, horizon: int, quantiles: Sequence[float]
    ) -> tuple[FloatArray, Mapping[float, FloatArray]]: ...
