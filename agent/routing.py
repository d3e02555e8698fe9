"""Which channels hear about an incident: routes by severity, namespace and state.

``notify.routes`` in the config is a list of ``Route``s; ``Router.channels_for`` returns
every channel whose route matches (union, in route order). With no routes, every
configured channel gets warning and critical incidents. Used by
``vigil.agent.notifying.NotifyStage`` when it queues a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core import IncidentState, Notification, Severity

__all__ = ["Route", "Router"]


class Route(BaseModel):
    """One routing rule; every condition must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[str, ...] = Field(
        ..., min_length=1, description="Channel names (notifier names) that get the message."
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="Least severity routed here; info is usually too noisy for chat."
    )
    namespaces: tuple[str, ...] = Field(
        (),
        description="Namespace globs (e.g. 'payments-*'); empty = any, including cluster-wide.",
    )
    states: tuple[IncidentState, ...] = Field(
        (), description="Incident states routed here; empty = every state."
    )


class Router:
    """Picks channels for a message from ``routes`` over the ``channels`` that exist."""

    def __init__(self, routes: Sequence[Route], channels: Sequence[str]) -> None:
        known = set(channels)
        for i, route in enumerate(routes):
            unknown = [c for c in route.channels if c not in known]
            if unknown:
                have = ", ".join(sorted(known)) or "none configured"
                raise ValueError(
                    f"notify.routes[{i}] names unknown channel(s) {', '.join(unknown)}; "
                    f"configured channels: {have}"
                )
        self.channels = tuple(channels)
        default = (Route(channels=self.channels),) if self.channels else ()
        self.routes = tuple(routes) or default

    def channels_for(self, message: Notification, severity: Severity | None = None) -> list[str]:
        """Channels for ``message`` (judged at ``severity`` when given, e.g. the incident's)."""
        level = severity or message.severity
        out: list[str] = []
        for route in self.routes:
            if not level.at_least(Severity(route.min_severity)):
                continue
            if route.states and message.state not in route.states:
                continue
            if route.namespaces and not any(
                fnmatchcase(message.namespace or "", pattern) for pattern in route.namespaces
            ):
                continue
            out.extend(c for c in route.channels if c not in out)
        return out
