"""Settings of the playbook engine: the ``guardrails`` and ``playbooks`` config groups.

The agent composes these into its ``Config`` (``vigil.agent.config``) and passes them to
``Guardrails``, ``load_playbooks`` and the executor. ``GuardrailSettings`` keeps the
field names of the config's ``guardrails`` group and adds what the engine needs beyond it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.playbooks.cron import CronWindow

__all__ = ["GuardrailSettings", "PlaybookSettings", "ResourceBounds"]

Seconds = Annotated[float, Field(gt=0)]
ModeName = Literal["dry-run", "approve", "auto"]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class GuardrailSettings(_Group):
    dry_run: bool = Field(
        True, description="Record what would have been done and change nothing (safe default)."
    )
    namespaces_allow: tuple[str, ...] = Field(
        (), description="Namespaces actions may touch; empty = all not denied."
    )
    namespaces_deny: tuple[str, ...] = Field(
        ("kube-system",),
        description="Namespaces actions never touch; kube-system is always denied.",
    )
    max_actions_per_hour: int = Field(
        10, ge=0, description="Cluster-wide mutating actions per rolling hour."
    )
    max_actions_per_namespace_per_hour: int = Field(
        5, ge=0, description="Mutating actions per namespace per rolling hour."
    )
    cooldown: Seconds = Field(
        900.0, description="Seconds before the same playbook may act on the same target again."
    )
    max_per_playbook_per_hour: int = Field(
        6,
        ge=0,
        description="Mutating actions one playbook may take per rolling hour, all targets "
        "together; 6 stops a flapping signal from remediating in a loop.",
    )
    min_available: int = Field(
        1, ge=0, description="Never leave a workload with fewer ready replicas than this."
    )
    max_unavailable_percent: float = Field(
        25.0, ge=0, le=100, description="Most of a workload one action may take down, in %."
    )
    storm_unhealthy_percent: float = Field(
        50.0,
        gt=0,
        le=100,
        description="When this % of a namespace's workloads (or of the nodes) is unhealthy at "
        "once, it is a storm: no mutating action, people are told. 50 % means a wider "
        "outage that per-workload remedies would only churn.",
    )
    storm_min_unhealthy: int = Field(
        3,
        ge=1,
        description="Fewest unhealthy workloads (or nodes) that can make a storm, so a "
        "namespace of two workloads with one broken is not a storm.",
    )
    verify_after: Seconds = Field(
        300.0, description="Seconds after an action before its verify condition is checked."
    )
    approval_timeout: Seconds = Field(
        3600.0,
        description="Seconds a pending approval stays valid; older ones are denied as expired, "
        "so an approval given tomorrow never acts on yesterday's state.",
    )
    freeze_windows: tuple[str, ...] = Field(
        (),
        description="Cron-like windows with no actions, e.g. '* 22-23 * * 5' (Friday nights).",
    )
    finding_max_age: Seconds = Field(
        900.0,
        description="Seconds since a finding was last observed after which it is stale and "
        "never acts; 15 min is several ticks.",
    )

    @field_validator("namespaces_deny")
    @classmethod
    def _kube_system(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return value if "kube-system" in value else (*value, "kube-system")

    @field_validator("freeze_windows")
    @classmethod
    def _cron(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for spec in value:
            CronWindow.parse(spec)  # raises ValueError naming the bad field
        return value


class ResourceBounds(_Group):
    memory_step_factor: float = Field(
        1.5,
        gt=1,
        le=4,
        description="Factor one 'raise memory limit' step multiplies the limit by; 1.5 clears "
        "most OOM loops without doubling cost.",
    )
    memory_limit_max: int = Field(
        8 * 1024**3,
        gt=0,
        description="Bytes: the highest memory limit the agent may set (8 GiB); beyond it a "
        "person decides.",
    )
    memory_limit_default: int = Field(
        512 * 1024**2,
        gt=0,
        description="Bytes assumed as the current limit when a container has none (512 MiB).",
    )


class PlaybookSettings(_Group):
    directories: tuple[Path, ...] = Field(
        (),
        description="Extra folders of playbook YAML files; a playbook named like a built-in "
        "replaces it.",
    )
    disabled: tuple[str, ...] = Field((), description="Playbook names never matched.")
    modes: dict[str, ModeName] = Field(
        default_factory=dict,
        description="Per-playbook mode override (dry-run, approve, auto); guardrails.dry_run "
        "still wins.",
    )
    resources: ResourceBounds = Field(default_factory=ResourceBounds)
