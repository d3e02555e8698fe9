"""Kubernetes resource quantities (``250m``, ``1.5``, ``512Mi``, ``1G``) to base units and back.

Used by ``vigil.sim.cluster`` to validate ``patch_resources`` arguments and to report
container resources in the ``before``/``after`` state of an ``ActionResult``.
"""

from __future__ import annotations

import re

from vigil.core import PermanentError

__all__ = ["format_cpu", "format_memory", "parse_cpu", "parse_memory"]

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$")
_MEMORY_SUFFIX = {
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def _split(what: str, text: str) -> tuple[float, str]:
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise PermanentError(
            f"{what} quantity {text!r} is not a Kubernetes quantity "
            "(write e.g. '250m' or '1.5' for cpu, '512Mi' or '2Gi' for memory)"
        )
    return float(match.group(1)), match.group(2)


def parse_cpu(text: str) -> float:
    """``"250m"`` → 0.25 cores; ``"2"`` → 2.0."""
    value, suffix = _split("cpu", text)
    if suffix == "m":
        return value / 1000.0
    if suffix:
        raise PermanentError(f"cpu quantity {text!r}: unknown suffix {suffix!r} (use 'm' or none)")
    return value


def parse_memory(text: str) -> float:
    """``"512Mi"`` → 536870912.0 bytes."""
    value, suffix = _split("memory", text)
    if suffix not in _MEMORY_SUFFIX:
        allowed = ", ".join(s for s in _MEMORY_SUFFIX if s)
        raise PermanentError(f"memory quantity {text!r}: unknown suffix {suffix!r} ({allowed})")
    return value * _MEMORY_SUFFIX[suffix]


def format_cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def format_memory(size: float) -> str:
    mib = size / 2.0**20
    if mib >= 1024 and float(mib / 1024).is_integer():
        return f"{int(mib / 1024)}Gi"
    return f"{round(mib)}Mi"
