"""The playbook schema: what a playbook YAML file may say, validated with pydantic.

``vigil.playbooks.loading`` reads files into ``Playbook`` values; ``matching`` reads
``when``/``target``/``steps``; ``guardrails`` reads ``mode`` and ``guardrails``;
``verification`` reads ``verify``/``on_failure``. ``playbook_schema()`` is the published
JSON schema (for editors). Every model forbids unknown keys.
"""

from __future__ import annotations

import re
from string import Template
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.core import MUTATING_ACTIONS, ActionKind, Severity
from vigil.playbooks.conditions import parse_condition
from vigil.playbooks.labels import parse_matcher
from vigil.playbooks.quantities import parse_bytes

__all__ = [
    "CONDITION_TYPES",
    "PROMQL_PLACEHOLDERS",
    "AlertWhen",
    "AnomalyWhen",
    "ConditionWhen",
    "ForecastWhen",
    "GuardrailOverrides",
    "Playbook",
    "PromqlCheck",
    "Step",
    "Verify",
    "When",
    "playbook_schema",
]

Seconds = Annotated[float, Field(gt=0)]
CONDITION_TYPES = (
    "CrashLoopBackOff",
    "OOMKilled",
    "NodeNotReady",
    "NodePressure",
    "NodeRecovered",
    "RolloutStuck",
)
PROMQL_PLACEHOLDERS = ("namespace", "name", "workload", "pod", "node", "container")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matchers(value: tuple[str, ...]) -> tuple[str, ...]:
    for text in value:
        parse_matcher(text)
    return value


class AnomalyWhen(_Model):
    """An anomaly on a metric (glob on the metric name) and/or series labels."""

    metrics: tuple[str, ...] = Field(
        (), description="Globs on the anomaly's metric name (e.g. '*latency*'); empty = any."
    )
    matchers: tuple[str, ...] = Field(
        (), description='Label matchers on the series, e.g. namespace=~"prod-.*".'
    )
    min_severity: Severity = Field(Severity.WARNING, description="Lowest severity that matches.")
    direction: Literal["any", "above", "below"] = Field(
        "any",
        description="Only anomalies above (value > expected range) or below it; a scale-out "
        "must not fire on a drop.",
    )

    _check = field_validator("matchers")(_matchers)


class ForecastWhen(_Model):
    """A forecast whose upper band crosses the capacity (or a limit) within a horizon."""

    metrics: tuple[str, ...] = Field((), description="Globs on the forecast's metric name.")
    matchers: tuple[str, ...] = Field((), description="Label matchers on the series.")
    crosses: Literal["capacity", "limit"] = Field(
        "capacity",
        description="Which threshold from the finding's details: `capacity` (what the current "
        "replicas can serve) or `limit` (e.g. a memory limit).",
    )
    within: Seconds | None = Field(
        None, description="Seconds ahead the crossing must happen; null = anywhere in the forecast."
    )
    change: Literal["up", "down", "any"] = Field(
        "up",
        description="For a scaling decision (details desired_replicas/current_replicas): `up` "
        "when the plan needs more than the workload (or HPA floor) has, `down` when the "
        "predicted load has passed and the plan releases replicas, `any` for both.",
    )
    apply: Literal["scale", "hpa-floor", "any"] = Field(
        "any",
        description="Which way the decision reaches the cluster (details.apply): `scale` sets "
        "replicas (no HPA), `hpa-floor` moves the HPA's minReplicas; a decision without "
        "details.apply counts as `scale`.",
    )

    _check = field_validator("matchers")(_matchers)


class AlertWhen(_Model):
    """An Alertmanager alert by name (glob) and label matchers; resolved alerts never match."""

    alertname: str = Field(..., description="Alert name or glob, e.g. 'KubePod*'.")
    matchers: tuple[str, ...] = Field((), description="Label matchers on the alert's labels.")
    min_severity: Severity = Field(Severity.INFO, description="Lowest severity that matches.")

    _check = field_validator("matchers")(_matchers)


class ConditionWhen(_Model):
    """A Kubernetes condition reported by the agent's cluster watch."""

    type: Literal[
        "CrashLoopBackOff",
        "OOMKilled",
        "NodeNotReady",
        "NodePressure",
        "NodeRecovered",
        "RolloutStuck",
    ] = Field(
        ...,
        description="The condition. NodeRecovered: a node vigil cordoned is healthy again.",
    )
    min_count: int = Field(
        1, ge=1, description="Fewest repeats (e.g. OOM kills in the finding's window) that match."
    )
    matchers: tuple[str, ...] = Field((), description="Label matchers on the finding's labels.")

    _check = field_validator("matchers")(_matchers)


class When(_Model):
    """Exactly one trigger, plus an optional recent-rollout requirement."""

    anomaly: AnomalyWhen | None = None
    forecast: ForecastWhen | None = None
    alert: AlertWhen | None = None
    condition: ConditionWhen | None = None
    after_rollout_within: Seconds | None = Field(
        None,
        description="Seconds: match only when the target workload's last rollout is at most "
        "this recent (needs a cluster to read it).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> When:
        given = [k for k in ("anomaly", "forecast", "alert", "condition") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of anomaly, forecast, alert, condition "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        for key in ("anomaly", "forecast", "alert", "condition"):
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated When has a trigger")


class ScaleParams(_Model):
    replicas: int | None = Field(None, ge=0, description="Set exactly this many replicas.")
    by: int | None = Field(None, ge=1, description="Add this many replicas.")
    from_decision: bool = Field(
        False, description="Take replicas from the finding's scaling decision (desired_replicas)."
    )
    max_replicas: int | None = Field(None, ge=1, description="Never scale above this.")

    @model_validator(mode="after")
    def _one(self) -> ScaleParams:
        given = [k for k in ("replicas", "by") if getattr(self, k) is not None]
        if self.from_decision:
            given.append("from_decision")
        if len(given) != 1:
            raise ValueError("give exactly one of replicas, by, from_decision")
        return self


class RolloutUndoParams(_Model):
    to_revision: int | None = Field(None, ge=1, description="Revision; null = the previous.")


class PatchResourcesParams(_Model):
    resource: Literal["memory"] = Field("memory", description="Which resource to raise.")
    container: str | None = Field(None, description="Container; null = the first container.")
    step_factor: float | None = Field(
        None, gt=1, le=4, description="Multiply the limit by this; null = the configured step."
    )
    max: str | None = Field(
        None, description="Highest limit (e.g. 4Gi); never above the configured maximum."
    )
    memory_limit: str | None = Field(
        None, description="Set exactly this limit (e.g. 1Gi) instead of one step up."
    )

    @field_validator("max", "memory_limit")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bytes(value)
        return value


class PatchHpaParams(_Model):
    min_replicas: int | None = Field(None, ge=1)
    max_replicas: int | None = Field(None, ge=1)
    min_from_decision: bool = Field(
        False,
        description="Set minReplicas to the finding's desired_replicas (raised ahead of "
        "predicted load, lowered after it).",
    )


class NotifyParams(_Model):
    severity: Severity | None = Field(None, description="Override the finding's severity.")
    text: str | None = Field(None, description="Extra text for people.")


class _NoParams(_Model):
    pass


PARAMS: dict[ActionKind, type[_Model]] = {
    ActionKind.SCALE: ScaleParams,
    ActionKind.ROLLOUT_RESTART: _NoParams,
    ActionKind.ROLLOUT_UNDO: RolloutUndoParams,
    ActionKind.DELETE_POD: _NoParams,
    ActionKind.EVICT_POD: _NoParams,
    ActionKind.CORDON: _NoParams,
    ActionKind.UNCORDON: _NoParams,
    ActionKind.PATCH_HPA: PatchHpaParams,
    ActionKind.PATCH_RESOURCES: PatchResourcesParams,
    ActionKind.NOTIFY: NotifyParams,
}
_TARGETS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.SCALE: ("workload",),
    ActionKind.ROLLOUT_RESTART: ("workload",),
    ActionKind.ROLLOUT_UNDO: ("workload",),
    ActionKind.PATCH_HPA: ("workload",),
    ActionKind.PATCH_RESOURCES: ("workload",),
    ActionKind.DELETE_POD: ("pod",),
    ActionKind.EVICT_POD: ("pod",),
    ActionKind.CORDON: ("node",),
    ActionKind.UNCORDON: ("node",),
    ActionKind.NOTIFY: ("workload", "pod", "node"),
}


class Step(_Model):
    """One action with its parameters; a failed verification escalates to the next step."""

    action: ActionKind = Field(..., description="The action, from the action catalogue.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the action (see docs/playbooks.md)."
    )

    @model_validator(mode="after")
    def _params(self) -> Step:
        model = PARAMS[self.action]
        validated = model.model_validate(self.params)
        object.__setattr__(self, "params", validated.model_dump(exclude_defaults=True))
        return self

    def typed_params(self) -> Any:
        return PARAMS[self.action].model_validate(self.params)


class PromqlCheck(_Model):
    expr: str = Field(
        ...,
        description="PromQL; $namespace, $name, $workload, $pod, $node, $container are "
        "replaced by the target's.",
    )
    op: Literal["<", "<=", ">", ">=", "==", "!="] = Field(..., description="Comparison.")
    threshold: float = Field(..., description="Every returned sample must compare true.")
    empty: Literal["fail", "pass"] = Field(
        "fail", description="What an empty result means (the series vanished)."
    )

    @field_validator("expr")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        template = Template(value)
        if not template.is_valid():
            raise ValueError("bad $placeholder; write $$ for a literal dollar sign")
        unknown = set(template.get_identifiers()) - set(PROMQL_PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(PROMQL_PLACEHOLDERS)}"
            )
        return value


class Verify(_Model):
    """What must hold ``within`` seconds after the action; both checks when both are given."""

    promql: tuple[PromqlCheck, ...] = Field(
        (), description="PromQL checks (one mapping or a list); every one must hold."
    )
    kubernetes: str | None = Field(
        None, description="A condition on the target, e.g. 'ready_replicas >= replicas'."
    )
    within: Seconds | None = Field(
        None, description="Seconds after the action to check; null = guardrails.verify_after."
    )

    @field_validator("promql", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("kubernetes")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            parse_condition(value)
        return value

    @model_validator(mode="after")
    def _something(self) -> Verify:
        if not self.promql and self.kubernetes is None:
            raise ValueError("give promql, kubernetes or both")
        return self


class GuardrailOverrides(_Model):
    """Per-playbook guardrails. Budgets and blast radius may only be tightened here."""

    cooldown: Seconds | None = Field(None, description="Seconds between actions on one target.")
    max_per_hour: int | None = Field(None, ge=0, description="This playbook's actions per hour.")
    max_actions_per_namespace_per_hour: int | None = Field(None, ge=0)
    max_actions_per_hour: int | None = Field(None, ge=0)
    min_available: int | None = Field(None, ge=0)
    max_unavailable_percent: float | None = Field(None, ge=0, le=100)


class Playbook(_Model):
    """One playbook: when it fires, what it does, how success is checked."""

    name: str = Field(..., description="Unique name, lowercase letters, digits and dashes.")
    description: str = Field(..., min_length=1)
    priority: int = Field(100, description="Lower numbers are tried first; ties by name.")
    when: When
    target: Literal["workload", "pod", "node"] = Field(
        "workload", description="What the steps act on, resolved from the finding."
    )
    steps: tuple[Step, ...] = Field(..., min_length=1)
    verify: Verify | None = None
    on_failure: tuple[Literal["revert", "escalate", "notify"], ...] = Field(
        ("revert", "escalate"), description="What a failed verification leads to."
    )
    mode: Literal["dry-run", "approve", "auto"] = Field(
        "approve", description="dry-run records only; approve asks a person; auto acts."
    )
    guardrails: GuardrailOverrides = Field(default_factory=GuardrailOverrides)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or len(value) > 63:
            raise ValueError("use lowercase letters, digits and dashes (at most 63)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Playbook:
        for i, step in enumerate(self.steps):
            allowed = _TARGETS[step.action]
            if self.target not in allowed:
                raise ValueError(
                    f"steps.{i}: {step.action} acts on a {' or '.join(allowed)}, but target is "
                    f"{self.target!r}"
                )
        if self.mutating and self.verify is None:
            raise ValueError("a playbook that changes things needs `verify`")
        if self.verify is not None and self.verify.kubernetes is not None:
            scope = parse_condition(self.verify.kubernetes).scope
            if (scope == "node") != (self.target == "node"):
                raise ValueError(
                    f"verify.kubernetes is about a {scope}, but target is {self.target!r}"
                )
        return self

    @property
    def mutating(self) -> bool:
        return any(step.action in MUTATING_ACTIONS for step in self.steps)


def playbook_schema() -> dict[str, Any]:
    """The JSON schema of one playbook document, for editors and ``vigil playbooks schema``."""
    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vigil playbook"
    return schema
