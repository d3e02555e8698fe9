"""Kubernetes memory quantities (``512Mi``, ``1G``, ``1073741824``) to bytes and back.

Used by the playbook schema (``max: 4Gi``) and by the patch-resources step, which
writes limits in the binary suffixes kubectl users read.
"""

from __future__ import annotations

import re

__all__ = ["format_bytes", "parse_bytes"]

_SUFFIX = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kMGT]i?|)\s*$")


def parse_bytes(text: str | int | float) -> int:
    """``"768Mi"`` → 805306368; a clear ``ValueError`` for anything else."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"memory quantity must be positive, got {text}")
        return int(text)
    found = _QUANTITY.match(str(text))
    if found is None or found[2] not in _SUFFIX:
        raise ValueError(
            f"cannot read memory quantity {text!r}: write a number with an optional suffix "
            "Ki, Mi, Gi, Ti, k, M, G, T (e.g. 512Mi)"
        )
    value = int(float(found[1]) * _SUFFIX[found[2]])
    if value <= 0:
        raise ValueError(f"memory quantity must be positive, got {text!r}")
    return value


def format_bytes(value: float) -> str:
    """Bytes as a Kubernetes quantity, rounded up to whole MiB (``805306368`` → ``768Mi``)."""
    mib = 1024**2
    whole = -(-int(value) // mib)
    if whole % 1024 == 0:
        return f"{whole // 1024}Gi"
    return f"{whole}Mi"
