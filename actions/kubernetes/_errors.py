"""Kubernetes API failures turned into vigil's error tree (private to the adapter).

``KubernetesCluster`` describes each request as an ``Op`` (verb, resource, API group,
namespace, target) before it makes it; when the request fails, ``translate`` turns the
``ApiException`` or transport error into a ``VigilError`` whose message names the object
and, for a 403, the exact RBAC rule that is missing. Nothing above the adapter sees
``ApiException``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from vigil.core import NotFoundError, PermanentError, RetryableError, SourceUnavailable

__all__ = [
    "ActionRejected",
    "ApiServerUnavailable",
    "ConflictPersisted",
    "DisruptionBudgetBlocked",
    "Forbidden",
    "Op",
    "RateLimited",
    "Unauthorized",
]

RBAC_MANIFEST = "deploy/rbac.yaml"

# The API server's own wording of an RBAC refusal (stable since 1.8).
_FORBIDDEN = re.compile(
    r'cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)


@dataclass(frozen=True)
class Op:
    """One request as RBAC sees it, plus the object it is about (for messages)."""

    verb: str
    resource: str
    group: str
    namespace: str | None
    target: str

    def describe(self) -> str:
        return f"{self.verb} {self.resource}"


class Forbidden(PermanentError):
    """RBAC refused a request; names the verb, resource, API group and namespace to grant."""

    def __init__(
        self, message: str, *, verb: str, resource: str, group: str, namespace: str | None
    ) -> None:
        super().__init__(message)
        self.verb = verb
        self.resource = resource
        self.group = group
        self.namespace = namespace


class Unauthorized(PermanentError):
    """The API server rejected vigil's credentials (401)."""


class ActionRejected(PermanentError):
    """The request is invalid for this object (400/422, paused rollout, no history, …)."""


class DisruptionBudgetBlocked(PermanentError):
    """An eviction would violate a PodDisruptionBudget; the budget holds, nothing changed."""


class RateLimited(RetryableError):
    """The API server kept answering 429 after the bounded waits; retry after ``delay``."""


class ConflictPersisted(RetryableError):
    """Every bounded retry of a read-modify-write met a newer version of the object."""


class ApiServerUnavailable(SourceUnavailable):
    """The API server could not be reached, timed out, dropped the connection or said 5xx."""


def status_message(exc: Any) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            return str(body)[:300]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    return str(getattr(exc, "reason", "") or "no reason given")


def status_causes(exc: Any) -> list[dict[str, Any]]:
    body = getattr(exc, "body", None)
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return []
    details = data.get("details") if isinstance(data, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    return [c for c in causes or [] if isinstance(c, dict)]


def is_disruption_budget(exc: Any) -> bool:
    """A 429 from the Eviction API because of a PodDisruptionBudget (not a rate limit)."""
    if any(c.get("reason") == "DisruptionBudget" for c in status_causes(exc)):
        return True
    return "disruption budget" in status_message(exc).lower()


def retry_after(exc: Any, default: float) -> float:
    """Seconds from a ``Retry-After`` header (the API server sends whole seconds)."""
    headers = getattr(exc, "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def forbidden(exc: Any, op: Op) -> Forbidden:
    """A 403 as an error that says exactly which rule vigil's ServiceAccount lacks."""
    server = status_message(exc)
    found = _FORBIDDEN.search(server)
    verb, resource, group = op.verb, op.resource, op.group
    namespace = op.namespace
    if found:
        verb, resource, group = found["verb"], found["resource"], found["group"]
        namespace = found["namespace"] or namespace
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    message = (
        f"{op.target}: forbidden: vigil needs verb {verb!r} on {resource!r} "
        f"({group or 'core'}) {where}; see {RBAC_MANIFEST} (server said: {server})"
    )
    return Forbidden(message, verb=verb, resource=resource, group=group, namespace=namespace)


def translate(exc: Any, op: Op, *, delay: float) -> Exception:
    """An ``ApiException`` (by its status) as the vigil error to raise ``from`` it."""
    status = getattr(exc, "status", None)
    said = status_message(exc)
    if status == 403:
        return forbidden(exc, op)
    if status == 401:
        return Unauthorized(
            f"{op.target}: the API server rejected vigil's credentials (401: {said}); "
            "check the kubeconfig/context or the ServiceAccount token"
        )
    if status == 404:
        return NotFoundError(f"{op.target}: not found ({said})")
    if status == 409:
        return ConflictPersisted(
            f"{op.target}: {op.describe()} conflicted with a newer version: {said}"
        )
    if status == 429:
        if is_disruption_budget(exc):
            causes = "; ".join(str(c.get("message", "")) for c in status_causes(exc)) or said
            return DisruptionBudgetBlocked(
                f"{op.target}: eviction refused, a PodDisruptionBudget holds: {causes}"
            )
        wait = retry_after(exc, delay)
        return RateLimited(
            f"{op.target}: API server rate-limited {op.describe()} (429); retry in {wait:g}s",
            delay=wait,
        )
    if status in (400, 422):
        return ActionRejected(f"{op.target}: {op.describe()} rejected by the API server: {said}")
    if isinstance(status, int) and status >= 500:
        wait = retry_after(exc, delay)
        return ApiServerUnavailable(
            f"{op.target}: API server error {status} on {op.describe()}: {said}", delay=wait
        )
    return PermanentError(f"{op.target}: {op.describe()} failed with HTTP {status}: {said}")


def transport(exc: BaseException, op: Op, *, delay: float) -> Exception:
    """A connection refusal, timeout or dropped connection (urllib3) as a vigil error."""
    reason = getattr(exc, "reason", None) or exc
    kind = type(reason).__name__
    if "SSL" in kind or "Certificate" in kind:
        return PermanentError(
            f"{op.target}: TLS to the API server failed ({reason}); check the cluster CA "
            "in the kubeconfig or the in-cluster service account"
        )
    return ApiServerUnavailable(
        f"{op.target}: API server unreachable during {op.describe()} ({kind}: {reason})",
        delay=delay,
    )
