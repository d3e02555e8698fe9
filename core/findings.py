"""What the agent noticed: ``Anomaly``, ``Forecast`` and the ``Finding`` that playbooks match.

Detectors and forecasters (``vigil.detectors``) build ``Anomaly`` and ``Forecast``
values; the agent wraps them, Alertmanager alerts and Kubernetes conditions into
``Finding``s, stores them and hands them to ``vigil.playbooks``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.core._validate import (
    frozen_labels,
    frozen_mapping,
    require_aware,
    require_finite,
    require_text,
    require_unit_interval,
)
from vigil.core.objects import ObjectRef
from vigil.core.series import series_id

__all__ = [
    "Anomaly",
    "Finding",
    "FindingKind",
    "Forecast",
    "Severity",
    "finding_id",
    "format_quantity",
]


class Severity(StrEnum):
    """How loud a finding is; ordered ``info < warning < critical``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def format_quantity(value: float, unit: str) -> str:
    """Human form of a value in its unit: seconds as ms/s, bytes as MiB/GiB, ratios as %."""
    if not math.isfinite(value):
        return str(value)
    if unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "bytes":
        for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "cores":
        return f"{value:.2f} cores"
    if unit:
        return f"{value:.4g} {unit}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Anomaly:
    """An anomalous stretch of one series, explainable by itself.

    ``score`` is calibrated in [0, 1]; ``expected_low``/``expected_high`` is the range
    the model expected at ``end`` and ``value`` what it saw there.
    """

    metric: str
    labels: Mapping[str, str]
    start: datetime
    end: datetime
    score: float
    severity: Severity
    value: float
    expected_low: float
    expected_high: float
    detector: str
    detector_version: str
    unit: str = ""
    description: str = ""
    series: str = field(init=False)

    def __post_init__(self) -> None:
        require_text("metric", self.metric)
        require_text("detector", self.detector)
        require_text("detector_version", self.detector_version)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        require_aware("start", self.start)
        require_aware("end", self.end)
        if self.end < self.start:
            raise ValueError(
                f"anomaly on {self.metric}: end {self.end} is before start {self.start}"
            )
        require_unit_interval("score", self.score)
        object.__setattr__(self, "severity", Severity(self.severity))
        for name in ("value", "expected_low", "expected_high"):
            require_finite(name, getattr(self, name))
        if self.expected_low > self.expected_high:
            raise ValueError(
                f"anomaly on {self.metric}: expected_low {self.expected_low} > "
                f"expected_high {self.expected_high}"
            )
        object.__setattr__(self, "series", series_id(self.metric, self.labels))

    def summary(self) -> str:
        """E.g. ``p99 latency 870 ms, expected 120–180 ms``."""
        what = self.description or self.metric
        seen = format_quantity(self.value, self.unit)
        low = format_quantity(self.expected_low, self.unit)
        high = format_quantity(self.expected_high, self.unit)
        low_num, _, low_unit = low.partition(" ")
        if low_unit and high.endswith(" " + low_unit):
            low = low_num  # "120–180 ms", not "120 ms–180 ms"
        return f"{what} {seen}, expected {low}–{high}"


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Forecast:
    """A forecast of one series: point ``mean`` and quantile bands over ``timestamps``.

    ``quantiles`` maps a probability in (0, 1) to an array aligned with ``timestamps``;
    bands are ordered (a higher probability is never below a lower one).
    """

    metric: str
    labels: Mapping[str, str]
    made_at: datetime
    timestamps: FloatArray
    mean: FloatArray
    quantiles: Mapping[float, FloatArray]
    model: str
    model_version: str
    unit: str = ""
    series: str = field(init=False)

    def __post_init__(self) -> None:
        require_text("metric", self.metric)
        require_text("model", self.model)
        require_text("model_version", self.model_version)
        require_aware("made_at", self.made_at)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        ts = np.array(self.timestamps, dtype=np.float64)
        mean = np.array(self.mean, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != mean.shape:
            raise ValueError(
                f"forecast {self.metric}: timestamps and mean must be aligned 1-D arrays"
            )
        bands: dict[float, FloatArray] = {}
        for q in sorted(self.quantiles):
            if not 0.0 < q < 1.0:
                raise ValueError(f"forecast {self.metric}: quantile {q} must be in (0, 1)")
            band = np.array(self.quantiles[q], dtype=np.float64)
            if band.shape != ts.shape:
                raise ValueError(
                    f"forecast {self.metric}: quantile {q} is not aligned with timestamps"
                )
            band.setflags(write=False)
            bands[float(q)] = band
        ordered = list(bands.values())
        for lower, upper in itertools.pairwise(ordered):
            if np.any(upper < lower - 1e-9 * (1 + np.abs(lower))):
                raise ValueError(f"forecast {self.metric}: quantile bands cross")
        ts.setflags(write=False)
        mean.setflags(write=False)
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "quantiles", frozen_mapping(bands))
        object.__setattr__(self, "series", series_id(self.metric, self.labels))

    def quantile(self, q: float) -> FloatArray:
        """The band for probability ``q`` (must be one of ``quantiles``)."""
        try:
            return self.quantiles[q]
        except KeyError:
            known = ", ".join(str(k) for k in sorted(self.quantiles))
            raise KeyError(f"forecast {self.series} has no quantile {q}; it has {known}") from None


class FindingKind(StrEnum):
    """What produced a finding."""

    ANOMALY = "anomaly"
    FORECAST = "forecast"
    ALERT = "alert"
    CONDITION = "condition"


def finding_id(kind: FindingKind | str, subject: str, started_at: datetime) -> str:
    """A stable id for the same finding seen again on a later tick: kind + subject + start."""
    raw = f"{kind}|{subject}|{started_at.isoformat()}"
    return "f-" + hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Finding:
    """One thing worth a playbook's attention, with everything needed to explain it.

    ``subject`` is a stable key (series id, alert fingerprint, object + condition);
    ``target`` the Kubernetes object it is about when known; ``details`` JSON-able extras
    (alert labels, condition reason, forecast peak).
    """

    kind: FindingKind
    subject: str
    title: str
    severity: Severity
    observed_at: datetime
    started_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    target: ObjectRef | None = None
    anomaly: Anomaly | None = None
    forecast: Forecast | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FindingKind(self.kind))
        object.__setattr__(self, "severity", Severity(self.severity))
        require_text("subject", self.subject)
        require_text("title", self.title)
        require_aware("observed_at", self.observed_at)
        require_aware("started_at", self.started_at)
        require_aware("resolved_at", self.resolved_at)
        object.__setattr__(self, "labels", frozen_labels(self.labels))
        object.__setattr__(self, "details", frozen_mapping(self.details))
        if self.kind is FindingKind.ANOMALY and self.anomaly is None:
            raise ValueError(f"finding {self.subject}: kind anomaly needs an anomaly")
        if self.kind is FindingKind.FORECAST and self.forecast is None:
            raise ValueError(f"finding {self.subject}: kind forecast needs a forecast")
        if not self.id:
            object.__setattr__(self, "id", finding_id(self.kind, self.subject, self.started_at))

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None
