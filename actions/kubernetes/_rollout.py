"""Rollout restart and undo exactly as ``kubectl rollout`` does them (pure, no I/O).

``kubectl rollout restart`` sets the pod template annotation
``kubectl.kubernetes.io/restartedAt``; ``kubectl rollout undo`` finds the ReplicaSets the
Deployment controls, takes the pod template of the wanted revision (by default the one
before the current), and patches the Deployment's template and annotations with it
(k8s.io/kubectl/pkg/polymorphichelpers/rollback.go). ``KubernetesCluster`` reads the
objects, these functions decide, and it writes the patch they return.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vigil.actions.kubernetes._errors import ActionRejected
from vigil.core import NotFoundError

__all__ = [
    "RESTARTED_AT",
    "owned_history",
    "pick_revision",
    "restart_patch",
    "undo_patch",
]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "pod-template-hash"
# Annotations kubectl keeps from the Deployment instead of copying from the ReplicaSet.
_KEEP_ON_DEPLOYMENT = (
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
)


def restart_patch(resource_version: str, at: datetime) -> dict[str, Any]:
    """The merge patch ``kubectl rollout restart`` sends (RFC 3339 time), guarded by the
    resourceVersion the before-state was read at."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"resourceVersion": resource_version},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}},
    }


def _revision(obj: Mapping[str, Any]) -> int:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def owned_history(
    replicasets: list[dict[str, Any]], deployment_uid: str
) -> dict[int, dict[str, Any]]:
    """Revision → ReplicaSet for the ReplicaSets the Deployment controls."""
    history: dict[int, dict[str, Any]] = {}
    for rs in replicasets:
        owners = rs.get("metadata", {}).get("ownerReferences") or []
        if any(o.get("controller") and o.get("uid") == deployment_uid for o in owners):
            revision = _revision(rs)
            if revision > 0:
                history[revision] = rs
    return history


def pick_revision(history: Mapping[int, Any], to_revision: int | None, target: str) -> int:
    """The revision to roll back to: ``to_revision``, or the one before the newest."""
    if to_revision is not None:
        if to_revision < 1:
            raise ActionRejected(f"{target}: to_revision must be >= 1, got {to_revision}")
        if to_revision not in history:
            known = ", ".join(str(r) for r in sorted(history)) or "none"
            raise NotFoundError(
                f"{target}: revision {to_revision} not in its rollout history (revisions: {known})"
            )
        return to_revision
    if len(history) < 2:
        raise ActionRejected(
            f"{target}: no rollout history to undo (only {len(history)} revision kept); "
            "check spec.revisionHistoryLimit"
        )
    return sorted(history)[-2]


def _template_without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(TEMPLATE_HASH, None)
    return out


def undo_patch(deployment: Mapping[str, Any], rs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON patch that restores ``rs``'s pod template on ``deployment`` (``None`` when
    the template already matches, as kubectl's "skipped rollback").

    The resourceVersion it carries makes the server refuse it with 409 if the
    Deployment changed since it was read, so the recorded before-state stays exact."""
    template = _template_without_hash(rs["spec"]["template"])
    current = _template_without_hash(deployment["spec"]["template"])
    if template == current:
        return None
    dep_annotations = deployment["metadata"].get("annotations") or {}
    annotations = {k: v for k, v in dep_annotations.items() if k in _KEEP_ON_DEPLOYMENT}
    annotations.update(
        {
            k: v
            for k, v in (rs["metadata"].get("annotations") or {}).items()
            if k not in _KEEP_ON_DEPLOYMENT
        }
    )
    return [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": deployment["metadata"]["resourceVersion"],
        },
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
