"""The guardrail limits that apply to one playbook: global settings plus its overrides.

Overrides may set cooldown and the playbook's own rate limit either way, but may only
tighten the shared budgets and the blast radius (a playbook cannot grant itself more of
the cluster than the operator allowed). Used by ``guardrails`` and ``explaining``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigil.playbooks.schema import GuardrailOverrides
from vigil.playbooks.settings import GuardrailSettings

__all__ = ["Limits", "effective_limits"]


@dataclass(frozen=True)
class Limits:
    cooldown: float
    per_playbook_per_hour: int
    per_namespace_per_hour: int
    per_cluster_per_hour: int
    min_available: int
    max_unavailable_percent: float


def _tighter(base: int, override: int | None) -> int:
    return base if override is None else min(base, override)


def effective_limits(
    settings: GuardrailSettings, overrides: GuardrailOverrides | None = None
) -> Limits:
    o = overrides or GuardrailOverrides()
    return Limits(
        cooldown=o.cooldown if o.cooldown is not None else settings.cooldown,
        per_playbook_per_hour=(
            o.max_per_hour if o.max_per_hour is not None else settings.max_per_playbook_per_hour
        ),
        per_namespace_per_hour=_tighter(
            settings.max_actions_per_namespace_per_hour, o.max_actions_per_namespace_per_hour
        ),
        per_cluster_per_hour=_tighter(settings.max_actions_per_hour, o.max_actions_per_hour),
        min_available=max(settings.min_available, o.min_available or 0),
        max_unavailable_percent=(
            settings.max_unavailable_percent
            if o.max_unavailable_percent is None
            else min(settings.max_unavailable_percent, o.max_unavailable_percent)
        ),
    )
