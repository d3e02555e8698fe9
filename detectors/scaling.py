"""The predictive scaling policy: how many replicas a workload should have, and why.

``PredictiveScaler`` is fed a workload's demand points as they arrive (``observe``) and
asked at every tick for a plan (``plan``/``decide``). The agent turns a
``ScalingDecision`` into a ``scale`` or ``patch-hpa`` plan through the
``predictive-scale`` playbook; the replay benchmark (``vigil.detectors.replay``) calls
``decide`` directly. Pure and causal: a decision at ``now`` uses only points observed
by ``now``.

Rule (docs/scaling.md has the reasoning):
desired = max(reactive need for the observed demand,
              upper-quantile forecast over [now, now + lead] / (capacity × target)),
raised at once (bounded by the max step) and lowered only after the lower plan has
held for the stabilisation window and undercuts current replicas by the tolerance.
The reactive need also covers a rising metric carried a lag ahead (a ramp); forecast
points are planned once due within the forecast window; the upper quantile is the
forecaster's tail band, bought one likely pod at a time.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from vigil.core import ConfigError, WarmingUp
from vigil.detectors.forecasting.online import OnlineDemandForecaster
from vigil.detectors.scaling_settings import ApplyMode, ScalingSettings

__all__ = [
    "HpaFloorChange",
    "PredictiveScaler",
    "ScalingDecision",
    "ScalingReason",
    "apply_decision",
    "learn_capacity",
    "replicas_for_peak",
]


FloatArray = npt.NDArray[np.float64]
NOT_DUE = "not-due"  # model name when the next point is beyond the forecast window


class ScalingReason(StrEnum):
    """Which term of the rule set the plan."""

    FORECAST = "forecast"
    REACTIVE = "reactive"
    HOLD = "hold"  # scale-down withheld by stabilisation or tolerance
    BOUND = "bound"  # clamped by min/max or the step limit
    WARMING_UP = "warming-up"


@dataclass(frozen=True)
class ScalingDecision:
    """One tick's plan for one workload, as a value (the agent applies it, or not)."""

    at: float
    replicas: int
    current: int
    reactive: int
    forecast_need: int | None
    forecast_peak: float | None
    reason: ScalingReason
    model: str

    @property
    def changes(self) -> bool:
        return self.replicas != self.current


@dataclass(frozen=True)
class HpaFloorChange:
    """In ``hpa-floor`` mode: the HPA's ``minReplicas`` to set (never its max or target)."""

    min_replicas: int
    previous: int


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


class PredictiveScaler:
    """Stateful, causal policy for one workload (state: recent demand and recent plans)."""

    def __init__(self, settings: ScalingSettings, *, subject: str = "workload") -> None:
        if settings.capacity_per_pod is None:
            raise ConfigError(
                f"{subject}: scaling needs capacity_per_pod; configure it or learn it with "
                "learn_capacity() from demand and utilisation history"
            )
        self.settings = settings
        self.subject = subject
        self.capacity = float(settings.capacity_per_pod)
        self.lead_s = settings.startup_lag_s + settings.sync_s
        self.model = OnlineDemandForecaster(
            lookahead_s=self.lead_s + settings.metric_delay_s,
            quantile=settings.quantile,
            subject=subject,
            tail_quantile=settings.tail_quantile,
            unit=self.capacity * settings.forecast_utilisation,
            slice_probability=settings.headroom_probability,
        )
        self._plans: deque[tuple[float, int]] = deque()
        self._seen: deque[tuple[float, float]] = deque(maxlen=3)  # (now, observed) per plan
        self._last_ts = math.nan

    def observe(self, timestamp: float, value: float) -> None:
        """Feed the next demand point (in time order)."""
        self.model.observe(timestamp, value)
        self._last_ts = timestamp

    def _forecast_need(self, now: float, current: int) -> tuple[int | None, float | None, str]:
        """Pods for the points that can land in [now, now + lead]: the HPA's rule on the
        expected demand, and the upper quantile within ``forecast_utilisation``."""
        model = self.model
        if model.step <= 0 or math.isnan(self._last_ts):
            return None, None, "none"
        if self._last_ts + model.step - now > max(self.settings.forecast_window_s, self.lead_s):
            return None, None, NOT_DUE  # the next point is far off: the reactive rule holds
        last_horizon = math.floor((now + self.lead_s - self._last_ts) / model.step)
        horizons = range(1, min(max(last_horizon, 1), model.horizon) + 1)
        s = self.settings
        peak, mean_peak, name = -math.inf, -math.inf, "none"
        try:
            for h in horizons:
                mean, upper, predictor = model.forecast(h)
                if upper > peak:
                    peak, name = upper, predictor
                mean_peak = max(mean_peak, mean)
        except WarmingUp:
            return None, None, "warming-up"
        need = max(
            self._reactive(mean_peak, current),
            _ceil(peak / (self.capacity * s.forecast_utilisation)),
        )
        return need, peak, name

    def _reactive(self, observed: float, current: int) -> int:
        """The HPA's own recommendation for the demand observed now (with its tolerance)."""
        s = self.settings
        if not math.isfinite(observed) or current <= 0:
            return max(current, s.min_replicas)
        ratio = max(observed, 0.0) / (current * self.capacity * s.target_utilisation)
        if abs(1.0 - ratio) <= s.reactive_tolerance:
            return current
        return _ceil(ratio * current)

    def _ramp_ahead(self, now: float, observed: float) -> float:
        """Where a rising metric will be when pods created now are ready, or ``observed``.

        A metric that rose on each of the last two syncs is on a ramp (demand sampled
        and held between points rises once, in a step, and is left alone); its slope is
        carried over the start-up lag plus the metric delay.
        """
        if not math.isfinite(observed):
            return observed
        self._seen.append((now, observed))
        if not self.settings.extrapolate_ramps or len(self._seen) < 3:
            return observed
        (t0, v0), (_, v1), (t2, v2) = self._seen
        if not v2 > v1 > v0 or t2 <= t0:
            return observed
        slope = (v2 - v0) / (t2 - t0)
        return observed + slope * (self.settings.startup_lag_s + self.settings.metric_delay_s)

    def plan(self, now: float, observed_demand: float, current: int) -> ScalingDecision:
        """The decision at ``now`` given the demand metric as observed and current replicas."""
        s = self.settings
        reactive = max(
            self._reactive(observed_demand, current),
            self._reactive(self._ramp_ahead(now, observed_demand), current),
        )
        need_f, peak, name = self._forecast_need(now, current)
        need = reactive if need_f is None else max(reactive, need_f)
        need = min(max(need, s.min_replicas), s.max_replicas)
        reason = ScalingReason.REACTIVE
        if need_f is None and name != NOT_DUE:
            reason = ScalingReason.WARMING_UP
        elif need_f is not None and need_f > reactive:
            reason = ScalingReason.FORECAST
        # remember plans for the scale-down window (the highest plan inside it wins)
        window = s.scale_down_stabilisation_s
        while self._plans and self._plans[0][0] <= now - window:
            self._plans.popleft()
        self._plans.append((now, need))
        if need > current:
            step = max(s.max_step_up_pods, _ceil(current * s.max_step_up_percent / 100))
            target = min(need, current + step)
            if target < need:
                reason = ScalingReason.BOUND
        elif need < current:
            held = max(p for _, p in self._plans)
            if held <= current * (1 - s.scale_down_tolerance) and held < current:
                floor = current - max(1, math.floor(current * s.max_step_down_percent / 100))
                target = max(held, floor, s.min_replicas)
            else:
                target, reason = current, ScalingReason.HOLD
        else:
            target = current
        target = min(max(target, s.min_replicas), s.max_replicas)
        return ScalingDecision(
            at=now,
            replicas=target,
            current=current,
            reactive=reactive,
            forecast_need=need_f,
            forecast_peak=peak,
            reason=reason,
            model=name,
        )

    def decide(
        self, now: float, observed_demand: float, ready: int, unready: int, current: int
    ) -> int:
        """The replay's entry point: the planned replica count."""
        return self.plan(now, observed_demand, current).replicas


def replicas_for_peak(peak: float, capacity: float, settings: ScalingSettings) -> int:
    """Pods that serve ``peak`` demand at the forecast utilisation, within min/max: what
    the policy plans for an upper-quantile forecast (``vigil status`` shows it per peak)."""
    need = _ceil(peak / (capacity * settings.forecast_utilisation))
    return min(max(need, settings.min_replicas), settings.max_replicas)


def learn_capacity(demand: FloatArray, ready_pods: FloatArray, utilisation: FloatArray) -> float:
    """Capacity per pod from history: the demand per ready pod at which utilisation reaches 1.

    The three arrays are aligned samples (e.g. request rate, ready pods, mean CPU
    utilisation of what a pod can use). Utilisation is modelled as ``idle + slope ×
    demand per pod``: pods burn some CPU doing nothing, so demand / utilisation alone
    would underestimate capacity. The line is fitted robustly (Theil–Sen: the median of
    pairwise slopes, so bursts of bad samples do not move it); without a usable rising
    line (one operating point only) the median of demand per pod / utilisation is used.
    Samples with a utilisation under 20 % are ignored (idle pods say little about their
    limit). Raises ``WarmingUp`` with fewer than 12 usable samples.
    """
    d, n, u = (np.asarray(a, dtype=np.float64) for a in (demand, ready_pods, utilisation))
    if not d.shape == n.shape == u.shape:
        raise ValueError("demand, ready_pods and utilisation must be aligned arrays")
    ok = np.isfinite(d) & np.isfinite(n) & np.isfinite(u) & (n >= 1) & (u >= 0.2) & (d > 0)
    if int(ok.sum()) < 12:
        raise WarmingUp("capacity per pod", have=int(ok.sum()), need=12)
    x, y = d[ok] / n[ok], u[ok]
    ratio = float(np.median(x / y))
    rng = np.random.default_rng(0)  # fixed pairs: the same history gives the same answer
    i, j = rng.integers(0, x.size, (2, min(20_000, x.size * (x.size - 1))))
    dx = x[j] - x[i]
    apart = np.abs(dx) > 0.05 * float(np.median(x))  # pairs at one operating point say nothing
    if int(apart.sum()) < 12:
        return ratio
    slope = float(np.median((y[j] - y[i])[apart] / dx[apart]))
    if slope <= 0:
        return ratio
    idle = float(np.median(y - slope * x))
    capacity = (1.0 - idle) / slope
    # a line that puts most of the utilisation in idle is extrapolating far: keep the ratio
    return capacity if 0 <= idle < 0.9 and math.isfinite(capacity) and capacity > 0 else ratio


def apply_decision(
    decision: ScalingDecision,
    mode: ApplyMode,
    *,
    has_hpa: bool,
    hpa_min: int | None = None,
    baseline_min: int | None = None,
) -> int | HpaFloorChange | None:
    """What to change on the cluster for ``decision``, or None for nothing.

    ``scale`` mode (or ``auto`` without an HPA) returns the replica count to set. With
    an HPA, vigil only moves the HPA's ``minReplicas``: up to the plan ahead of load,
    and back down — never below ``baseline_min`` (the floor people configured) — after.
    It never sets replicas under an HPA, which would fight it.
    """
    use_floor = mode is ApplyMode.HPA_FLOOR or (mode is ApplyMode.AUTO and has_hpa)
    if not use_floor:
        if has_hpa:
            raise ConfigError(
                "apply_mode 'scale' on a workload an HPA owns would fight the HPA; "
                "use 'hpa-floor' or 'auto'"
            )
        return decision.replicas if decision.changes else None
    if hpa_min is None:
        raise ConfigError("hpa-floor mode needs the HPA's current minReplicas")
    floor = max(decision.replicas, baseline_min if baseline_min is not None else 1)
    return None if floor == hpa_min else HpaFloorChange(min_replicas=floor, previous=hpa_min)
