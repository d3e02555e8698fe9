"""``DetectionSettings``: the ``detection`` group of vigil's configuration.

The agent's config composes it; ``vigil.detectors.engine.DetectionEngine`` takes it.
Every field gives its unit and why its default.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DetectionSettings", "SloRuleSettings"]


class SloRuleSettings(BaseModel):
    """One static SLO rule on the series of one metric (optionally narrowed by labels)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Metric name the rule watches, as the series carry it.")
    kind: str = Field(
        description="'threshold' (limit = ceiling in the series' unit) or 'burn-rate' "
        "(limit = objective such as 0.999, on an error-ratio series)."
    )
    limit: float = Field(description="Ceiling (threshold) or SLO objective in (0, 1) (burn-rate).")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Label values a series must have; empty: all series."
    )

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in ("threshold", "burn-rate"):
            raise ValueError(f"kind must be 'threshold' or 'burn-rate', got {value!r}")
        return value


class DetectionSettings(BaseModel):
    """Anomaly detection: history kept, refit cadence, alarm level, persistence, stages."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run anomaly detection each tick.")
    history: float = Field(
        8 * 86_400.0,
        gt=0,
        description="Seconds of history kept and fitted per series. 8 days: enough for "
        "two daily cycles with margin; weekly seasons need 14+ days (raise it for them).",
    )
    refit_interval: float = Field(
        6 * 3600.0,
        gt=0,
        description="Seconds between refits of a bank of series. Six hours keeps season "
        "and scale current (the models adapt level and season online in between) while "
        "10,000 series cost about 50 s of refit per 6 h, under 1 s per 5-minute tick.",
    )
    max_refits_per_tick: int = Field(
        1,
        ge=1,
        description="Banks refitted per tick at most, so one tick never refits all series.",
    )
    bank_size: int = Field(
        500,
        ge=1,
        description="Series per bank (rows fitted together). 500 bounds one refit to "
        "about 2.5 s and 40 MB at 8 days of 5-minute points, while still vectorising well.",
    )
    min_points: int = Field(
        36,
        ge=16,
        description="Valid points a series needs before it is scored (3 h at 5 minutes); "
        "until then it is reported as warming up.",
    )
    alarm_level: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Calibrated ensemble score (0–1) at which a point counts as "
        "anomalous; 0.5 means one member at its own threshold.",
    )
    persistence_k: int = Field(
        2, ge=1, description="Anomalous points needed among the last persistence_n to page."
    )
    persistence_n: int = Field(
        3,
        ge=1,
        description="Window (points) of the k-of-n persistence rule; 2 of 3 stops single "
        "blips from paging while a 10-minute excursion at 5-minute steps still pages.",
    )
    critical_score: float = Field(
        0.99,
        gt=0,
        le=1,
        description="Calibrated score from which an anomaly is critical (else warning).",
    )
    min_change: float = Field(
        0.2,
        ge=0,
        description="Smallest departure from the expected value that pages, as a fraction "
        "of the expected value (0.2: 20 %). Busy metrics are smooth and strongly "
        "autocorrelated, so a 5 % wiggle can be many sigmas out yet mean nothing to a "
        "person; on the twin every injected incident departs by 30 % or more while 97 % "
        "of the quiet-time alarms stay under 20 %. 0 pages on statistics alone.",
    )
    min_change_by_unit: dict[str, float] = Field(
        default_factory=lambda: {"ratio": 0.005},
        description="Unit → smallest absolute departure that pages, in that unit, for "
        "metrics that sit near zero where a relative change means little: 'ratio': 0.005 "
        "(half a percentage point of 5xx). Units as in 'units' or guessed from the name.",
    )
    stale_after: float = Field(
        6 * 3600.0,
        gt=0,
        description="Seconds without a point after which a series is dropped at its "
        "bank's refit (a deleted pod's series should not be carried forever).",
    )
    workload_labels: list[str] = Field(
        default_factory=lambda: ["namespace", "workload"],
        description="Labels whose values group a workload's metrics for the multivariate "
        "IsolationForest stage; series without them are not grouped.",
    )
    multivariate_budget: float = Field(
        0.5,
        ge=0,
        description="Seconds per tick the IsolationForest stage may spend on flagged "
        "workloads (about 0.1 s each); the rest are skipped and counted in the report, "
        "so a storm of anomalies cannot blow the 1 s tick. 0 disables the stage.",
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="Metric name → unit ('seconds', 'bytes', 'ratio', 'cores' or free "
        "text) for anomaly summaries; otherwise guessed from the name's suffix.",
    )
    descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="Metric name → human name used in summaries ('p99 latency').",
    )
    slo_rules: list[SloRuleSettings] = Field(
        default_factory=list, description="Static SLO rules (threshold, burn rate)."
    )

    @model_validator(mode="after")
    def _persistence(self) -> DetectionSettings:
        if self.persistence_k > self.persistence_n:
            raise ValueError(
                f"persistence_k ({self.persistence_k}) must be <= persistence_n "
                f"({self.persistence_n})"
            )
        return self
