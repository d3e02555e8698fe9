"""How ``vigil.core`` values become SQLite columns and come back (private).

Used by the ``SqliteStore`` mixins. Times are ISO-8601 UTC text of one fixed width
(``2026-11-23T12:00:00.000000Z``), so text order is time order and SQL can compare
them; JSON columns hold mappings and arrays (NaN as ``null``, so SQLite's JSON
functions can read every column).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import numpy as np

from vigil.core.findings import Anomaly, Forecast
from vigil.core.objects import ObjectRef

__all__ = [
    "anomaly_from_json",
    "anomaly_to_json",
    "dump_json",
    "forecast_arrays",
    "forecast_from_row",
    "forecast_summary",
    "from_ts",
    "load_json",
    "opt_from_ts",
    "ref_from_columns",
    "ref_to_columns",
    "to_ts",
]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_ts(when: datetime, what: str = "time") -> str:
    """Sortable UTC text for an aware datetime; a naive one is refused (its zone is unknown)."""
    if not isinstance(when, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"{what} must be timezone-aware (got naive {when.isoformat()}); "
            "pass e.g. datetime.now(UTC)"
        )
    return when.astimezone(UTC).strftime(_TS_FORMAT)


def from_ts(text: str) -> datetime:
    """An aware UTC datetime from the stored text."""
    return datetime.fromisoformat(text).astimezone(UTC)


def opt_from_ts(text: str | None) -> datetime | None:
    return None if text is None else from_ts(text)


def _jsonable(value: Any) -> Any:
    """``json.dumps`` fallback for the few non-JSON types vigil values carry."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, datetime):
        return to_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, ObjectRef):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return _floats(value) if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be stored as JSON")


def dump_json(value: Any, what: str) -> str:
    """JSON text for a column; ``what`` names the field in the error a bad value gets."""
    try:
        return json.dumps(value, default=_jsonable, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what}: {exc} (store only JSON-able values: str, numbers, lists, mappings)"
        ) from exc


def load_json(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


def _floats(values: Any) -> list[float | None]:
    """A float array as a JSON list: NaN and infinities become ``null``."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _array(values: Sequence[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def ref_to_columns(ref: ObjectRef | None) -> tuple[str | None, str | None, str | None]:
    if ref is None:
        return None, None, None
    return ref.kind, ref.namespace, ref.name


def ref_from_columns(kind: str | None, namespace: str | None, name: str | None) -> ObjectRef | None:
    if kind is None or name is None:
        return None
    return ObjectRef(kind, namespace, name)


def anomaly_to_json(anomaly: Anomaly) -> str:
    return dump_json(
        {
            "metric": anomaly.metric,
            "labels": dict(anomaly.labels),
            "series": anomaly.series,
            "start": to_ts(anomaly.start),
            "end": to_ts(anomaly.end),
            "score": anomaly.score,
            "severity": anomaly.severity.value,
            "value": anomaly.value,
            "expected_low": anomaly.expected_low,
            "expected_high": anomaly.expected_high,
            "detector": anomaly.detector,
            "detector_version": anomaly.detector_version,
            "unit": anomaly.unit,
            "description": anomaly.description,
        },
        f"anomaly on {anomaly.series}",
    )


def anomaly_from_json(text: str) -> Anomaly:
    data = json.loads(text)
    return Anomaly(
        metric=data["metric"],
        labels=data["labels"],
        start=from_ts(data["start"]),
        end=from_ts(data["end"]),
        score=data["score"],
        severity=data["severity"],
        value=data["value"],
        expected_low=data["expected_low"],
        expected_high=data["expected_high"],
        detector=data["detector"],
        detector_version=data["detector_version"],
        unit=data.get("unit", ""),
        description=data.get("description", ""),
    )


def forecast_arrays(forecast: Forecast) -> dict[str, str]:
    """The array columns of a forecast row (also embedded in a forecast finding)."""
    return {
        "timestamps": dump_json(_floats(forecast.timestamps), "forecast timestamps"),
        "mean": dump_json(_floats(forecast.mean), "forecast mean"),
        "quantiles": dump_json(
            {repr(q): _floats(band) for q, band in forecast.quantiles.items()},
            "forecast quantiles",
        ),
    }


def forecast_summary(forecast: Forecast) -> dict[str, Any]:
    """What a reader of the finding wants without the arrays: model, horizon, peak."""
    summary: dict[str, Any] = {
        "series": forecast.series,
        "metric": forecast.metric,
        "labels": dict(forecast.labels),
        "model": forecast.model,
        "model_version": forecast.model_version,
        "unit": forecast.unit,
        "made_at": to_ts(forecast.made_at),
        "points": int(forecast.mean.size),
    }
    finite = np.isfinite(forecast.mean)
    if forecast.mean.size and finite.any():
        peak = int(np.nanargmax(np.where(finite, forecast.mean, -np.inf)))
        summary["peak_mean"] = float(forecast.mean[peak])
        summary["peak_at"] = float(forecast.timestamps[peak])
        summary["horizon_end"] = float(forecast.timestamps[-1])
    return summary


def forecast_from_row(row: Mapping[str, Any]) -> Forecast:
    """A ``Forecast`` from a mapping holding the summary keys plus the array columns."""
    quantiles = {float(q): _array(band) for q, band in json.loads(row["quantiles"]).items()}
    labels = row["labels"]
    return Forecast(
        metric=row["metric"],
        labels=json.loads(labels) if isinstance(labels, str) else labels,
        made_at=from_ts(row["made_at"]),
        timestamps=_array(json.loads(row["timestamps"])),
        mean=_array(json.loads(row["mean"])),
        quantiles=quantiles,
        model=row["model"],
        model_version=row["model_version"],
        unit=row["unit"] or "",
    )
