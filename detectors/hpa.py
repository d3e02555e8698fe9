"""An emulation of the Kubernetes HorizontalPodAutoscaler v2 algorithm, for replays.

Called by ``vigil.detectors.replay`` (the ``vigil bench scaling`` benchmark), which
compares vigil's predictive policy with what a stock HPA would have done on the same
demand trace. It follows ``pkg/controller/podautoscaler`` (replica calculator and
``normalizeDesiredReplicasWithBehaviors``): tolerance around the target ratio, new
(unready) pods counted at 0 % on scale-up, the scale-down stabilisation window (max of
recommendations), the scale-up window (min of recommendations) and the rate-limit
policies per period. Pure computation; every modelling choice is in ``docs/scaling.md``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["HpaBehaviour", "HpaEmulator", "hpa_recommendation"]


@dataclass(frozen=True)
class HpaBehaviour:
    """The HPA's knobs; the defaults are Kubernetes' own (autoscaling/v2)."""

    target_utilisation: float = 0.7
    tolerance: float = 0.1
    min_replicas: int = 1
    max_replicas: int = 100
    sync_s: float = 15.0
    up_window_s: float = 0.0
    down_window_s: float = 300.0
    up_percent: float = 100.0
    up_pods: int = 4
    up_period_s: float = 15.0
    down_percent: float = 100.0
    down_period_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0 < self.target_utilisation <= 1:
            raise ValueError(f"target_utilisation must be in (0, 1], got {self.target_utilisation}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"need 1 <= min_replicas ({self.min_replicas}) <= "
                f"max_replicas ({self.max_replicas})"
            )
        if self.tolerance < 0 or self.sync_s <= 0:
            raise ValueError("tolerance must be >= 0 and sync_s > 0")


def hpa_recommendation(
    demand: float,
    capacity: float,
    *,
    target: float,
    tolerance: float,
    current: int,
    ready: int,
    unready: int,
) -> int:
    """The replica calculator for one metric (``GetResourceReplicas``/``calcPlainMetricReplicas``).

    ``demand`` is the total load the ready pods report, ``capacity`` the load one pod
    serves at 100 %; pods not ready yet report no metric (they count as 0 % on scale-up
    and are ignored on scale-down, as in Kubernetes).
    """
    if ready <= 0:
        return current  # no metrics from any ready pod: the HPA errors out and keeps scale
    per_pod_target = capacity * target
    ratio = demand / (ready * per_pod_target)
    if unready == 0 or ratio <= 1.0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return max(0, math.ceil(ratio * ready - 1e-9))
    pods = ready + unready
    new_ratio = demand / (pods * per_pod_target)
    if abs(1.0 - new_ratio) <= tolerance or new_ratio < 1.0:
        return current
    new = math.ceil(new_ratio * pods - 1e-9)
    return current if new < current else new


class HpaEmulator:
    """One HPA's controller state across syncs: recommendations and scale events."""

    def __init__(self, behaviour: HpaBehaviour, capacity: float, initial_replicas: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity per pod must be > 0, got {capacity}")
        self.behaviour = behaviour
        self.capacity = capacity
        self.replicas = min(max(initial_replicas, behaviour.min_replicas), behaviour.max_replicas)
        self._recommendations: deque[tuple[float, int]] = deque()
        self._events: deque[tuple[float, int]] = deque()  # (time, replica change)

    def sync(
        self,
        now: float,
        observed_demand: float,
        ready: int,
        unready: int,
        *,
        min_replicas: int | None = None,
    ) -> int:
        """One controller sync at ``now``: returns the new desired replica count.

        ``min_replicas`` overrides the spec's floor for this sync (vigil's ``hpa-floor``
        mode patches it); below the floor Kubernetes scales straight to it, unthrottled.
        """
        b = self.behaviour
        current = self.replicas
        floor = b.min_replicas if min_replicas is None else min(min_replicas, b.max_replicas)
        if current < floor:
            self._events.append((now, floor - current))
            self.replicas = floor
            return floor
        raw = hpa_recommendation(
            observed_demand,
            self.capacity,
            target=b.target_utilisation,
            tolerance=b.tolerance,
            current=current,
            ready=ready,
            unready=unready,
        )
        stabilised = self._stabilise(now, raw, current)
        desired = self._rate_limit(now, stabilised, current, floor)
        if desired != current:
            self._events.append((now, desired - current))
        self.replicas = desired
        return desired

    def _stabilise(self, now: float, raw: int, current: int) -> int:
        b = self.behaviour
        horizon = max(b.up_window_s, b.down_window_s)
        while self._recommendations and self._recommendations[0][0] < now - horizon:
            self._recommendations.popleft()
        up, down = raw, raw
        for when, rec in self._recommendations:
            # Kubernetes keeps records strictly after the cut-off (timestamp.After(cutoff)).
            if when > now - b.up_window_s:
                up = min(up, rec)
            if when > now - b.down_window_s:
                down = max(down, rec)
        self._recommendations.append((now, raw))
        recommendation = current
        recommendation = max(recommendation, up)
        return min(recommendation, down)

    def _rate_limit(self, now: float, desired: int, current: int, floor: int) -> int:
        b = self.behaviour
        period = max(b.up_period_s, b.down_period_s)
        while self._events and self._events[0][0] <= now - period:
            self._events.popleft()
        added = sum(d for t, d in self._events if d > 0 and t > now - b.up_period_s)
        removed = -sum(d for t, d in self._events if d < 0 and t > now - b.down_period_s)
        if desired > current:
            start = current - added
            limit = max(
                math.ceil(start * (1 + b.up_percent / 100) - 1e-9),
                start + b.up_pods,
            )
            return min(desired, limit, b.max_replicas)
        if desired < current:
            start = current + removed
            limit = math.floor(start * (1 - b.down_percent / 100) + 1e-9)
            return max(desired, limit, floor)
        return min(max(desired, floor), b.max_replicas)
