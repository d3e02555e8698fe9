"""Typed settings of the predictive scaling policy (the config file's ``scaling`` group).

The agent composes ``ScalingSettings`` into its configuration; ``vigil.detectors.scaling``
reads it; the replay benchmark (``vigil.detectors.replay``) overrides the per-workload
fields (capacity, lag, replica bounds) from its command line.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ApplyMode", "ScalingGroup", "ScalingSettings", "ScalingWorkload"]


class ApplyMode(StrEnum):
    """How decisions reach the cluster; an HPA is never fought."""

    AUTO = "auto"  # hpa-floor when an HPA owns the workload, else scale
    SCALE = "scale"  # set replicas through the scale subresource (no HPA)
    HPA_FLOOR = "hpa-floor"  # raise/lower the HPA's minReplicas ahead of load


class ScalingSettings(BaseModel):
    """Knobs of the predictive scaling policy for one workload (or the defaults for all)."""

    model_config = ConfigDict(extra="forbid")

    capacity_per_pod: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Demand one ready pod serves at 100 % utilisation, in the demand query's unit "
            "(e.g. requests/s). None: learned from history as demand per ready pod divided "
            "by the observed utilisation."
        ),
    )
    target_utilisation: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description=(
            "Fraction of a pod's capacity to plan for (ratio). 0.7 matches the usual HPA "
            "target, leaving 30 % headroom for noise inside a sync period."
        ),
    )
    startup_lag_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Seconds from pod creation to ready. Decisions look this far ahead, since a "
            "pod created later cannot help earlier. 60 s is a typical JVM/Python service."
        ),
    )
    metric_delay_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds by which the demand metric lags reality (scrape interval plus rate "
            "window). Added to the look-ahead; 30 s is a 15 s scrape with a 2-sample rate."
        ),
    )
    sync_s: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between decisions; 15 s is the HPA controller's own sync period.",
    )
    quantile: float = Field(
        default=0.9,
        gt=0.5,
        lt=1,
        description=(
            "Upper forecast quantile provisioned for (probability). 0.9: one interval in ten "
            "may exceed the plan before the reactive floor and the headroom catch it."
        ),
    )
    tail_quantile: float = Field(
        default=0.97,
        gt=0.5,
        lt=1,
        description=(
            "Highest forecast quantile headroom may reach (probability, >= quantile). It "
            "is extrapolated from the errors' median and `quantile` as an exponential "
            "tail, so a few rare spikes cannot blow it up the way a direct 0.97 quantile "
            "of a few hundred errors would; headroom_probability decides how much of it "
            "is bought."
        ),
    )
    headroom_probability: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description=(
            "A headroom pod above the mean forecast is planned only while the forecast "
            "errors put at least this probability (ratio) on the next point's demand "
            "landing in the slice that pod serves. 0.02: a pod held for a 5-minute point "
            "(5 pod-minutes) against a 2 % chance of saving about 1.5 minutes short-handed "
            "(start-up lag plus metric delay) - where a thin tail would cost a pod per "
            "rare miss, it is not bought. 0 buys the whole band up to tail_quantile."
        ),
    )
    forecast_window_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Seconds before a forecast point is due that its pods are planned (at least "
            "the lead time always). With 5-minute sampling the next point is always "
            "inside 600 s, as before; with coarse sampling (30 min) the next point's pods "
            "are created 10 minutes ahead instead of for the whole interval, while the "
            "reactive floor keeps up with the demand seen meanwhile."
        ),
    )
    extrapolate_ramps: bool = Field(
        default=True,
        description=(
            "When the demand metric rose on each of the last two syncs (a ramp, not the "
            "single step of a newly scraped sample), the reactive floor plans for the ramp "
            "carried start-up lag + metric delay ahead, where demand will be when new pods "
            "are ready; the HPA's rule on the current value is a lag behind a ramp."
        ),
    )
    forecast_utilisation: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description=(
            "Utilisation planned for the upper-quantile forecast (ratio). Higher than "
            "target_utilisation because the quantile already holds the uncertainty; the "
            "reactive floor keeps target_utilisation for the demand seen now."
        ),
    )
    reactive_tolerance: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description=(
            "The reactive floor ignores a current-demand ratio within this fraction of the "
            "target (ratio), as the HPA's tolerance; avoids a pod of churn per wobble."
        ),
    )
    min_replicas: int = Field(
        default=1, ge=1, description="Never plan fewer pods (count); 1 keeps the service up."
    )
    max_replicas: int = Field(
        default=100,
        ge=1,
        description="Never plan more pods (count); caps cost when a forecast runs away.",
    )
    max_step_up_pods: int = Field(
        default=4,
        ge=1,
        description=(
            "Largest scale-up per decision is max(this many pods, max_step_up_percent of the "
            "current count); the HPA's default policy is 4 pods or 100 % per 15 s."
        ),
    )
    max_step_up_percent: float = Field(
        default=1000.0,
        gt=0,
        description=(
            "Largest relative scale-up per decision, in percent of current replicas. 1000 % "
            "lets a burst or a forecast peak be met in one step: doubling per 15 s as the "
            "HPA does adds a sync per doubling to the start-up lag. max_replicas still caps."
        ),
    )
    max_step_down_percent: float = Field(
        default=100.0,
        gt=0,
        le=100,
        description=(
            "Largest scale-down per decision, in percent of current replicas; 100 % as the "
            "HPA's default: the stabilisation window and tolerance already guard a drop, "
            "and halving steps would spend an action each."
        ),
    )
    scale_down_stabilisation_s: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Seconds a lower plan must persist before pods are removed (the highest plan in "
            "the window wins). Shorter than the HPA's 300 s because the plan already looks "
            "ahead (a coming rise holds the pods); with the tolerance it does not flap."
        ),
    )
    scale_down_tolerance: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description=(
            "Only scale down when the plan is below current replicas by more than this "
            "fraction (ratio); the HPA's tolerance, a dead band against churn."
        ),
    )
    history_s: float = Field(
        default=14 * 86400.0,
        gt=0,
        description=(
            "Seconds of demand history kept per workload: two weekly cycles, enough for "
            "weekly seasonality and bounded memory."
        ),
    )
    apply_mode: ApplyMode = Field(
        default=ApplyMode.AUTO,
        description=(
            "'scale' sets replicas (no HPA), 'hpa-floor' moves the HPA's minReplicas, "
            "'auto' picks hpa-floor when an HPA targets the workload."
        ),
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        if self.tail_quantile < self.quantile:
            raise ValueError(
                f"tail_quantile ({self.tail_quantile}) must be >= quantile ({self.quantile}); "
                "set tail_quantile equal to quantile to plan the plain quantile"
            )
        return self


class ScalingWorkload(BaseModel):
    """One workload vigil scales: where its demand comes from, and its own knobs."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(min_length=1, description="Kubernetes namespace of the workload.")
    name: str = Field(min_length=1, description="Name of the Deployment or StatefulSet.")
    kind: str = Field(
        default="Deployment",
        pattern="^(Deployment|StatefulSet)$",
        description="Workload kind; both have a scale subresource.",
    )
    demand_query: str = Field(
        min_length=1,
        description=(
            "PromQL giving the workload's total demand as one series, e.g. "
            'sum(rate(http_requests_total{namespace="shop",service="api"}[1m])).'
        ),
    )
    utilisation_query: str | None = Field(
        default=None,
        description=(
            "PromQL for the pods' mean utilisation (ratio 0-1) used to learn capacity per pod "
            "when capacity_per_pod is not set; None requires capacity_per_pod."
        ),
    )
    overrides: dict[str, object] = Field(
        default_factory=dict,
        description="Fields of ScalingSettings that differ for this workload (same units).",
    )

    @property
    def key(self) -> str:
        """``namespace/name``, how the workload is named in status, CLI and reports."""
        return f"{self.namespace}/{self.name}"

    def settings(self, defaults: ScalingSettings) -> ScalingSettings:
        """The defaults with this workload's overrides applied (validated)."""
        return ScalingSettings.model_validate({**defaults.model_dump(), **self.overrides})


class ScalingGroup(BaseModel):
    """The config file's ``scaling`` group: defaults, workloads and forecast display."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Plan predictive scaling at all; off by default until workloads are listed.",
    )
    defaults: ScalingSettings = Field(
        default_factory=ScalingSettings, description="Knobs for every workload."
    )
    workloads: list[ScalingWorkload] = Field(
        default_factory=list, description="Workloads to scale ahead of demand."
    )
    history_query_s: float = Field(
        default=8 * 86400.0,
        gt=0,
        description=(
            "Seconds of demand fetched when a workload's state starts (or restarts): a week "
            "for the daily and weekly shapes, plus a day of margin."
        ),
    )
    forecast_horizon_s: float = Field(
        default=3 * 3600.0,
        gt=0,
        description=(
            "Seconds ahead shown by 'vigil forecast' and 'vigil status' (not the policy's "
            "look-ahead, which is start-up lag + sync): three hours covers a morning ramp."
        ),
    )
    quantiles: tuple[float, ...] = Field(
        default=(0.05, 0.5, 0.95),
        description="Forecast bands stored and shown (probabilities in (0, 1)).",
    )
    forecast_every_s: float = Field(
        default=900.0,
        gt=0,
        description=(
            "Seconds between stored forecasts of a workload's demand (over "
            "forecast_horizon_s); 15 min keeps 'vigil status' current while the model "
            "selection's backtest costs a few ms per workload per tick on average."
        ),
    )

    @model_validator(mode="after")
    def _check(self) -> ScalingGroup:
        if any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must be in (0, 1), got {self.quantiles}")
        for w in self.workloads:
            merged = w.settings(self.defaults)
            if merged.capacity_per_pod is None and w.utilisation_query is None:
                raise ValueError(
                    f"scaling workload {w.key}: set capacity_per_pod (in "
                    "overrides or defaults) or a utilisation_query to learn it from"
                )
        return self
