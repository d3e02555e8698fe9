"""Small checks shared by the domain values in ``vigil.core`` (private)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def require_aware(name: str, value: datetime | None) -> None:
    """Reject naive datetimes: every timestamp in vigil is timezone-aware (UTC inside)."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()})")


def require_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def require_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def require_text(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def frozen_labels(labels: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only, key-sorted copy of a label set; keys and values must be strings."""
    for key, val in labels.items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise ValueError(f"labels must map str to str, got {key!r}: {val!r}")
    return MappingProxyType(dict(sorted(labels.items())))


def frozen_mapping(data: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only shallow copy of a JSON-like mapping (details, params, before/after state)."""
    return MappingProxyType(dict(data))
