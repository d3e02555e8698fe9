"""The tick's scaling stage: demand → forecast → replica plan → a finding the playbooks act on.

For each workload in the ``scaling`` group the stage fetches the demand query from the
``MetricSource`` (all of ``history_query_s`` on the first tick, then only new points),
feeds a ``vigil.detectors.scaling.PredictiveScaler``, reads the workload and its HPA from
the ``Cluster`` and asks for a plan. A plan that changes something becomes a
``FindingKind.FORECAST`` finding carrying ``desired_replicas``, ``current_replicas`` and
``apply`` (``scale`` or ``hpa-floor``); the built-in ``predictive-*`` playbooks turn it
into a ``scale`` or ``patch-hpa`` action under the guardrails, in the same tick. Every
``forecast_every_s`` the stage also stores a multi-hour forecast of the demand
(``AutoForecaster``, model name and version kept) for ``vigil status``, ``vigil forecast``
and ``vigil ask``. ``vigil run`` and ``vigil demo`` both compose it through
``vigil.agent.wiring.build_loop``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vigil.agent.loop import TickContext
from vigil.core import (
    Cluster,
    Finding,
    FindingKind,
    FindingStore,
    Forecast,
    ForecastStore,
    MetricSource,
    NotFoundError,
    ObjectRef,
    PermanentError,
    RetryableError,
    Series,
    Severity,
    WarmingUp,
    series_id,
    to_datetime,
    to_timestamp,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from vigil.core import HpaInfo
    from vigil.detectors.forecasting import AutoForecaster
    from vigil.detectors.forecasting.base import Prediction
    from vigil.detectors.scaling import PredictiveScaler, ScalingDecision
    from vigil.detectors.scaling_settings import ScalingGroup, ScalingSettings, ScalingWorkload

__all__ = [
    "DEMAND_METRIC",
    "ScalingOverview",
    "ScalingStage",
    "ScalingStore",
    "demand_labels",
    "demand_series_id",
    "scaling_overview",
    "scaling_subject",
    "workload_overview",
]

log = logging.getLogger(__name__)

DEMAND_METRIC = "workload_demand"
MODEL_VERSION = "1"
_WHAT = {"hpa-floor": "HPA floor", "scale": "replicas"}  # what a decision moves, for people


def demand_labels(workload: ScalingWorkload) -> dict[str, str]:
    """The labels of a workload's demand series and forecasts (namespace + kind → name)."""
    return {"namespace": workload.namespace, workload.kind.lower(): workload.name}


def demand_series_id(workload: ScalingWorkload) -> str:
    """The series id its demand forecasts are stored under."""
    return series_id(DEMAND_METRIC, demand_labels(workload))


def scaling_subject(workload: ScalingWorkload) -> str:
    """The finding subject of a workload's scaling decisions."""
    return f"scaling:{workload.key}"


# The stored forecast is for people, hours ahead: 5-minute means are enough, and make the
# model selection's backtest ~10x cheaper than on 30-second points.
FORECAST_STEP_S = 300.0


def _coarse(series: Series, step: float) -> Series:
    """Means over ``step``-second bins (a series already that coarse is returned as is)."""
    if len(series) < 2 or float(np.median(np.diff(series.timestamps))) >= step:
        return series
    bins = np.floor(series.timestamps / step)
    edges = np.flatnonzero(np.diff(bins)) + 1
    starts = np.concatenate([[0], edges])
    counts = np.diff(np.concatenate([starts, [len(series)]]))
    means = np.add.reduceat(series.values, starts) / counts
    times = (bins[starts] + 1) * step  # a bin is stamped at its end, as a rate would be
    return Series(series.metric, series.labels, times, means)


class _KeyedForecaster:
    """``AutoForecaster`` seen as a plain ``Forecaster`` for one workload: its model choice
    is cached under the workload's key instead of re-selected on every forecast."""

    def __init__(self, auto: AutoForecaster, key: str) -> None:
        self._auto = auto
        self._key = key
        self.name = auto.name
        self.version = auto.version

    def min_history(self, periods: Sequence[int]) -> int:
        return self._auto.min_history(periods)

    def predict(
        self,
        history: npt.NDArray[np.float64],
        horizon: int,
        periods: Sequence[int],
        quantiles: Sequence[float] | None = None,
    ) -> Prediction:
        from vigil.detectors.forecasting import DEFAULT_QUANTILES

        qs = DEFAULT_QUANTILES if quantiles is None else quantiles
        return self._auto.predict(history, horizon, periods, qs, keys=[self._key])


@dataclass
class _State:
    """What the stage keeps per workload between ticks."""

    workload: ScalingWorkload
    settings: ScalingSettings
    ref: ObjectRef
    scaler: PredictiveScaler | None = None
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    baseline_min: int | None = None
    forecast_at: datetime | None = None
    open_finding: str | None = None

    @property
    def key(self) -> str:
        return self.workload.key

    def history(self) -> Series:
        return Series(
            DEMAND_METRIC,
            demand_labels(self.workload),
            np.asarray(self.times, dtype=np.float64),
            np.asarray(self.values, dtype=np.float64),
        )


class ScalingStore(FindingStore, ForecastStore, Protocol):
    """The store ports the stage writes to (findings and forecasts)."""

    def latest_finding(self, subject: str, kind: str | None = None) -> Finding | None: ...


class ScalingStage:
    """Plans replicas for every configured workload each tick (see the module docstring)."""

    name = "scaling"

    def __init__(
        self,
        group: ScalingGroup,
        source: MetricSource,
        cluster: Cluster | None,
        store: ScalingStore,
        *,
        interval: float,
        step: float,
        max_step_down_percent: float = 100.0,
    ) -> None:
        """``interval``: seconds between ticks (decisions look one tick further ahead);
        ``step``: query resolution in seconds; ``max_step_down_percent``: the guardrails'
        blast radius, so a scale-down the guardrails would refuse is planned in steps."""
        if interval <= 0 or step <= 0:
            raise ValueError("interval and step must be > 0 seconds")
        self._group = group
        self._source = source
        self._cluster = cluster
        self._store = store
        self._step = step
        self._max_down = max_step_down_percent
        self._forecast_every = timedelta(seconds=group.forecast_every_s)
        self._states: list[_State] = []
        for w in group.workloads:
            merged = w.settings(group.defaults)
            # Decisions happen once a tick, so each one must cover the tick that follows.
            settings = merged.model_copy(update={"sync_s": max(merged.sync_s, interval)})
            ref = ObjectRef(w.kind, w.namespace, w.name)
            self._states.append(_State(w, settings, ref))
        self._restarted = True
        self._selector: AutoForecaster | None = None

    @property
    def workloads(self) -> list[str]:
        return [s.key for s in self._states]

    @property
    def capacities(self) -> dict[str, float | None]:
        """Capacity per pod by workload: configured, learned, or None until learned."""
        return {s.key: s.settings.capacity_per_pod for s in self._states}

    def run(self, ctx: TickContext) -> None:
        if self._restarted:
            self._close_stale_decisions(ctx.now)
            self._restarted = False
        failures: list[str] = []
        retryable = True
        for state in self._states:
            try:
                self._one(state, ctx)
            except WarmingUp as exc:
                ctx.warming_up[f"scaling {state.key}"] = (exc.have, exc.need)
            except RetryableError as exc:
                failures.append(f"{state.key}: {exc}")
            except (PermanentError, NotFoundError) as exc:
                failures.append(f"{state.key}: {exc}")
                retryable = False
        if failures:
            summary = f"scaling failed for {len(failures)} of {len(self._states)} workloads: "
            summary += "; ".join(failures)
            raise RetryableError(summary) if retryable else PermanentError(summary)

    # ------------------------------------------------------------------ one workload

    def _one(self, state: _State, ctx: TickContext) -> None:
        self._resolve_previous(state, ctx.now)
        fresh = self._fetch(state, ctx.now)
        scaler = self._scaler(state)
        for t, v in fresh:
            scaler.observe(t, v)
        if not state.times:
            raise WarmingUp(f"demand of {state.key}", have=0, need=scaler.model.min_points)
        self._store_forecast(state, ctx)
        if self._cluster is None:
            return
        workload = self._cluster.get_workload(state.ref)
        hpa = self._hpa_of(state.ref)
        current = (hpa.current_replicas or workload.replicas) if hpa else workload.replicas
        observed = state.values[-1]
        decision = scaler.plan(to_timestamp(ctx.now), observed, max(current, 1))
        change = self._change(state, decision, hpa)
        if change is None:
            return
        desired, before, apply = change
        self._record(state, ctx, decision, desired=desired, current=before, apply=apply)

    def _scaler(self, state: _State) -> PredictiveScaler:
        if state.scaler is None:
            from vigil.detectors.scaling import PredictiveScaler

            if state.settings.capacity_per_pod is None:
                capacity = self._learn_capacity(state)
                state.settings = state.settings.model_copy(update={"capacity_per_pod": capacity})
            state.scaler = PredictiveScaler(state.settings, subject=f"scaling {state.key}")
        return state.scaler

    def _fetch(self, state: _State, now: datetime) -> list[tuple[float, float]]:
        """New demand points, oldest first (only points after the last one fed)."""
        last = state.times[-1] if state.times else None
        start = now - timedelta(seconds=self._group.history_query_s)
        if last is not None:
            start = max(start, to_datetime(last))
        if start >= now:
            return []
        found = self._source.query_range(
            state.workload.demand_query, start, now, timedelta(seconds=self._step)
        )
        if len(found) > 1:
            raise PermanentError(
                f"demand_query of {state.key} gave {len(found)} series; it must give one "
                f"(wrap it in sum(...)): {state.workload.demand_query}"
            )
        if not found:
            return []
        s = found[0]
        ok = np.isfinite(s.values)
        if last is not None:
            ok &= s.timestamps > last
        points = [(float(t), float(v)) for t, v in zip(s.timestamps[ok], s.values[ok], strict=True)]
        keep_from = to_timestamp(now) - state.settings.history_s
        state.times.extend(t for t, _ in points)
        state.values.extend(v for _, v in points)
        if state.times and state.times[0] < keep_from:
            cut = int(np.searchsorted(np.asarray(state.times), keep_from))
            del state.times[:cut], state.values[:cut]
        return points

    def _learn_capacity(self, state: _State) -> float:
        """Capacity per pod from demand, ready pods and utilisation history."""
        from vigil.detectors.scaling import learn_capacity

        w = state.workload
        assert w.utilisation_query is not None  # the settings validator guarantees it
        kind = w.kind.lower()
        # kube-state-metrics: Deployments report available replicas (ready for
        # minReadySeconds), StatefulSets ready ones
        field = "available" if kind == "deployment" else "ready"
        ready = (
            f'sum(kube_{kind}_status_replicas_{field}{{namespace="{w.namespace}",'
            f'{kind}="{w.name}"}})'
        )
        if not state.times:
            raise WarmingUp(f"capacity per pod of {state.key}", have=0, need=12)
        start, end = to_datetime(state.times[0]), to_datetime(state.times[-1])
        step = timedelta(seconds=self._step)
        aligned = []
        for query in (ready, w.utilisation_query):
            found = self._source.query_range(query, start, end, step)
            if len(found) != 1:
                raise PermanentError(
                    f"learning capacity of {state.key}: {query} gave {len(found)} series, "
                    "need one; set capacity_per_pod instead"
                )
            s = found[0]
            aligned.append(np.interp(state.times, s.timestamps, s.values, left=np.nan))
        capacity = learn_capacity(np.asarray(state.values), aligned[0], aligned[1])
        log.info("learned capacity per pod of %s: %.4g", state.key, capacity)
        return capacity

    def _hpa_of(self, ref: ObjectRef) -> HpaInfo | None:
        assert self._cluster is not None
        found = [h for h in self._cluster.list_hpas(ref.namespace) if h.target == ref]
        return found[0] if found else None

    def _change(
        self, state: _State, decision: ScalingDecision, hpa: HpaInfo | None
    ) -> tuple[int, int, str] | None:
        """``(desired, current, apply)`` to put on the cluster, or None to leave it."""
        from vigil.detectors.scaling import HpaFloorChange, apply_decision
        from vigil.detectors.scaling_settings import ApplyMode

        mode = state.settings.apply_mode
        if hpa is None:
            if mode is ApplyMode.HPA_FLOOR:
                raise PermanentError(
                    f"{state.key}: apply_mode 'hpa-floor' but no HPA targets it; use 'auto'"
                )
            out = apply_decision(decision, mode, has_hpa=False)
            if out is None or isinstance(out, HpaFloorChange):
                return None
            desired = int(out)
            if desired < decision.current:  # plan big drops in steps the guardrails allow
                most = math.floor(decision.current * self._max_down / 100)
                if most < 1:
                    # too few replicas for the blast radius to allow any scale-down: asking
                    # each tick would only collect refusals; a person decides
                    return None
                desired = max(desired, decision.current - most)
            return desired, decision.current, "scale"
        if state.baseline_min is None:
            state.baseline_min = self._baseline(state, hpa)
        baseline = state.baseline_min
        # Only the forecast term matters under an HPA: the HPA serves today's demand itself.
        need = decision.forecast_need if decision.forecast_need is not None else 0
        want = min(max(need, baseline), hpa.max_replicas)
        floor = hpa.min_replicas
        if want > floor and want > hpa.current_replicas:
            return want, floor, "hpa-floor"  # ahead of the load the HPA has not seen
        s = state.settings
        if want < floor and floor - want >= max(1, math.ceil(floor * s.scale_down_tolerance)):
            # the predicted load has passed: give the HPA its own floor back in one step
            return max(want, baseline), floor, "hpa-floor"
        return None

    def _baseline(self, state: _State, hpa: HpaInfo) -> int:
        """The HPA floor people configured: the one vigil's last decision recorded (so a
        restart while the floor is raised still lowers it back), else the current one."""
        last = self._store.latest_finding(scaling_subject(state.workload), FindingKind.FORECAST)
        if last is not None and last.details.get("baseline_min") is not None:
            return int(last.details["baseline_min"])
        return hpa.min_replicas

    # ------------------------------------------------------------------ findings, forecasts

    def _record(
        self,
        state: _State,
        ctx: TickContext,
        decision: ScalingDecision,
        *,
        desired: int,
        current: int,
        apply: str,
    ) -> None:
        fc = self._decision_forecast(state, ctx.now)
        what = _WHAT[apply]
        verb = "raise" if desired > current else "lower"
        peak = decision.forecast_peak
        peak_text = f"; demand forecast peak {peak:.4g}" if peak is not None else ""
        title = f"{state.key}: {verb} {what} {current} → {desired} ({decision.reason}{peak_text})"
        s = state.settings
        finding = Finding(
            kind=FindingKind.FORECAST,
            subject=scaling_subject(state.workload),
            title=title,
            severity=Severity.INFO,
            observed_at=ctx.now,
            started_at=ctx.now,
            labels=demand_labels(state.workload),
            target=state.ref,
            forecast=fc,
            details={
                "desired_replicas": desired,
                "current_replicas": current,
                "apply": apply,
                "reason": str(decision.reason),
                "planned_replicas": decision.replicas,
                "reactive_replicas": decision.reactive,
                "forecast_replicas": decision.forecast_need,
                "forecast_peak": peak,
                "capacity_per_pod": s.capacity_per_pod,
                "target_utilisation": s.target_utilisation,
                "lead_s": s.startup_lag_s + s.sync_s,
                "model": decision.model,
                "baseline_min": state.baseline_min,
            },
        )
        self._store.record_finding(finding)
        state.open_finding = finding.id
        ctx.findings.append(finding)
        log.info("scaling decision %s: %s", finding.id, title)

    def _decision_forecast(self, state: _State, now: datetime) -> Forecast:
        """The policy's own short forecast (the look-ahead it decided on)."""
        assert state.scaler is not None
        model = state.scaler.model
        hs = range(1, max(model.horizon, 1) + 1)
        rows = []
        for h in hs:
            try:
                rows.append((state.times[-1] + h * model.step, *model.forecast(h)[:2]))
            except (WarmingUp, ValueError):
                break
        if not rows:  # warming up: a flat forecast at the last value, said so by the model
            rows = [(state.times[-1] + self._step, state.values[-1], state.values[-1])]
        ts, mean, upper = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
        return Forecast(
            metric=DEMAND_METRIC,
            labels=demand_labels(state.workload),
            made_at=now,
            timestamps=ts,
            mean=mean,
            quantiles={state.settings.quantile: np.maximum(upper, mean)},
            model="vigil-online",
            model_version=MODEL_VERSION,
        )

    def _store_forecast(self, state: _State, ctx: TickContext) -> None:
        """Every ``forecast_every_s``: the demand forecast over ``forecast_horizon_s``."""
        if state.forecast_at is not None and ctx.now - state.forecast_at < self._forecast_every:
            return
        from vigil.detectors.forecasting import forecast_series

        history = _coarse(state.history(), FORECAST_STEP_S)
        step = float(np.median(np.diff(history.timestamps))) if len(history) > 1 else self._step
        horizon = max(1, math.ceil(self._group.forecast_horizon_s / step))
        try:
            fc = forecast_series(
                _KeyedForecaster(self._auto(), state.key),
                history,
                horizon=horizon,
                quantiles=self._group.quantiles,
                made_at=ctx.now,
            )
        except WarmingUp:
            return  # the policy reports its own warming up
        except ValueError as exc:  # irregular history: say so, keep scaling
            log.warning("no stored forecast for %s: %s", state.key, exc)
            return
        self._store.record_forecast(fc)
        state.forecast_at = ctx.now
        ctx.forecasts.append(fc)

    def _auto(self) -> AutoForecaster:
        """One model selector for all workloads, remembering each one's choice (the
        rolling-origin backtest runs again every ``reselect_every`` forecasts)."""
        if self._selector is None:
            from vigil.detectors.forecasting import AutoForecaster

            self._selector = AutoForecaster()
        return self._selector

    def _resolve_previous(self, state: _State, now: datetime) -> None:
        """A decision is one-shot: the tick after it, it is done (acted on or refused)."""
        if state.open_finding is not None:
            self._store.resolve_finding(state.open_finding, now)
            state.open_finding = None

    def _close_stale_decisions(self, now: datetime) -> None:
        """After a restart, decisions a previous run left open are closed, never re-acted."""
        subjects = {scaling_subject(s.workload) for s in self._states}
        for f in self._store.open_findings(limit=10_000):
            if f.kind is FindingKind.FORECAST and f.subject in subjects:
                self._store.resolve_finding(f.id, now)


@dataclass(frozen=True)
class ScalingOverview:
    """What ``vigil status`` and ``vigil forecast --stored`` show for one scaled workload,
    from the store alone: the latest stored forecast, its next peak (the peak of the
    expected demand, provisioned at the upper band there: the band's own maximum is
    usually its far end, where it is widest), the pods planned for it, the last decision."""

    workload: str
    forecast: Forecast | None
    peak_index: int | None
    capacity: float | None
    peak_replicas: int | None
    last_decision: str | None
    last_decision_at: datetime | None

    @property
    def peak_at(self) -> datetime | None:
        if self.forecast is None or self.peak_index is None:
            return None
        return to_datetime(float(self.forecast.timestamps[self.peak_index]))

    @property
    def peak_mean(self) -> float | None:
        if self.forecast is None or self.peak_index is None:
            return None
        return float(self.forecast.mean[self.peak_index])

    @property
    def peak_upper(self) -> float | None:
        fc = self.forecast
        if fc is None or self.peak_index is None:
            return None
        band = fc.quantiles[max(fc.quantiles)] if fc.quantiles else fc.mean
        return float(band[self.peak_index])

    def as_dict(self) -> dict[str, object]:
        peak_at, last_at = self.peak_at, self.last_decision_at
        return {
            "workload": self.workload,
            "next_peak_at": peak_at.isoformat() if peak_at else None,
            "next_peak_demand": self.peak_upper,
            "planned_replicas_at_peak": self.peak_replicas,
            "forecast_model": self.forecast.model if self.forecast is not None else None,
            "last_decision": self.last_decision,
            "last_decision_at": last_at.isoformat() if last_at else None,
        }


def _short(decision: Finding) -> str:
    d = decision.details
    what = _WHAT.get(str(d.get("apply")), "replicas")
    return f"{what} {d.get('current_replicas')} → {d.get('desired_replicas')} ({d.get('reason')})"


def workload_overview(
    workload: ScalingWorkload, group: ScalingGroup, store: ScalingStore
) -> ScalingOverview:
    """One workload's ``ScalingOverview``; the capacity is the configured one, else the one
    the last decision recorded (learned)."""
    from vigil.detectors.scaling import replicas_for_peak

    s = workload.settings(group.defaults)
    fc = store.latest_forecast(demand_series_id(workload))
    last = store.latest_finding(scaling_subject(workload), FindingKind.FORECAST)
    capacity = s.capacity_per_pod
    if capacity is None and last is not None and last.details.get("capacity_per_pod"):
        capacity = float(last.details["capacity_per_pod"])
    peak = None
    if fc is not None and fc.mean.size and np.isfinite(fc.mean).any():
        peak = int(np.nanargmax(fc.mean))
    row = ScalingOverview(
        workload=workload.key,
        forecast=fc,
        peak_index=peak,
        capacity=capacity,
        peak_replicas=None,
        last_decision=_short(last) if last is not None else None,
        last_decision_at=last.observed_at if last is not None else None,
    )
    upper = row.peak_upper
    if upper is None or not capacity:
        return row
    return replace(row, peak_replicas=replicas_for_peak(upper, capacity, s))


def scaling_overview(group: ScalingGroup, store: ScalingStore) -> list[ScalingOverview]:
    """``workload_overview`` of every configured workload."""
    return [workload_overview(w, group, store) for w in group.workloads]
