"""Per-pod series of a workload whose pod count just changed: the shift is explained.

When a Deployment scales from 3 to 4 pods, each pod's CPU and request rate drop by a
quarter: a real level shift in every sibling's per-pod series, caused by the scale and
not a fault (on the twin, 74 of the 76 per-pod CPU alarms left in a quiet run fell
within 30 minutes of a pod joining or leaving). ``ReplicaChanges`` counts, from the
fetched series alone, the pods of each workload that have live series; an anomaly on a
pod's series in the direction a recent change explains (more pods: down, fewer pods:
up) opens no finding for ``hold`` seconds. A spike the wrong way still does. Used by
``vigil.agent.stages.DetectStage``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from vigil.core import Anomaly, Series, to_timestamp

__all__ = ["ReplicaChanges", "workload_of_pod"]

# <deployment>-<pod-template-hash>-<suffix>, <statefulset>-<ordinal>, <daemonset>-<suffix>
_DEPLOYMENT_POD = re.compile(
    r"^(?P<base>[a-z0-9][a-z0-9-]*?)-[bcdfghjklmnpqrstvwxz2-9]{6,10}-[a-z0-9]{5}$"
)
_STATEFUL_POD = re.compile(r"^(?P<base>[a-z0-9][a-z0-9-]*)-\d+$")
_DAEMON_POD = re.compile(r"^(?P<base>[a-z0-9][a-z0-9-]*)-[a-z0-9]{5}$")

Key = tuple[str, str, str]  # metric, namespace, workload


def workload_of_pod(pod: str) -> str | None:
    """The controller name a pod name was generated from, by Kubernetes' naming rules."""
    for pattern in (_DEPLOYMENT_POD, _STATEFUL_POD, _DAEMON_POD):
        found = pattern.match(pod)
        if found:
            return found.group("base")
    return None


class ReplicaChanges:
    """Live pods per (metric, namespace, workload), and when that count last moved."""

    def __init__(self, hold: float = 1800.0, live_within: float = 180.0) -> None:
        if hold < 0 or live_within <= 0:
            raise ValueError("hold must be >= 0 and live_within > 0 seconds")
        self._hold = timedelta(seconds=hold)
        self._live_within = live_within
        self._count: dict[Key, int] = {}
        self._changes: dict[Key, list[tuple[datetime, int]]] = {}

    @staticmethod
    def _key(metric: str, labels: object) -> Key | None:
        get = getattr(labels, "get", None)
        if get is None:
            return None
        pod, namespace = get("pod"), get("namespace")
        if not pod or not namespace:
            return None
        workload = workload_of_pod(pod)
        return (metric, namespace, workload) if workload else None

    def observe(self, series: Sequence[Series], now: datetime) -> None:
        """Count this tick's live pod series and note any change in the counts."""
        cutoff = to_timestamp(now) - self._live_within
        counts: Counter[Key] = Counter()
        for s in series:
            key = self._key(s.metric, s.labels)
            if key is None or not len(s):
                continue
            tail = slice(max(0, len(s) - 16), None)
            recent = (s.timestamps[tail] >= cutoff) & ~np.isnan(s.values[tail])
            if recent.any():
                counts[key] += 1
        for key in set(counts) | set(self._count):
            new, old = counts.get(key, 0), self._count.get(key)
            if old is not None and new != old:
                self._changes.setdefault(key, []).append((now, 1 if new > old else -1))
        self._count = dict(counts)
        for key in list(self._changes):
            kept = [c for c in self._changes[key] if now - c[0] <= self._hold]
            if kept:
                self._changes[key] = kept
            else:
                del self._changes[key]

    def explains(self, anomaly: Anomaly, now: datetime) -> bool:
        """Whether a recent change in the pod count explains ``anomaly``'s direction."""
        key = self._key(anomaly.metric, anomaly.labels)
        if key is None or key not in self._changes:
            return False
        if anomaly.value < anomaly.expected_low:
            wanted = 1  # more pods share the load: each one's share drops
        elif anomaly.value > anomaly.expected_high:
            wanted = -1
        else:
            return False
        return any(sign == wanted and now - at <= self._hold for at, sign in self._changes[key])
