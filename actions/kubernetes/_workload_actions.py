"""The workload half of the action catalogue (scale, rollout restart/undo, HPA
min/max, container resources), part of ``KubernetesCluster``; pods and nodes are in
``_pod_node_actions``.

Every action reads the object first (its ``before`` state, what a revert needs), then
writes a patch that carries the read's ``resourceVersion``: if anyone changed the object
in between, the server answers 409 and the whole read-then-write runs again on a fresh
read (bounded by ``conflict_retries``), so ``before`` is always exactly what was
replaced. ``dry_run`` sends the same request with ``dryRun=All``: admission, validation
and RBAC run, nothing is stored. docs/actions.md is the catalogue for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.actions.kubernetes._base import JSON_PATCH, STRATEGIC
from vigil.actions.kubernetes._convert import quantity, revision_of
from vigil.actions.kubernetes._errors import ActionRejected
from vigil.actions.kubernetes._reads import Reads
from vigil.actions.kubernetes._rollout import (
    RESTARTED_AT,
    owned_history,
    pick_revision,
    restart_patch,
    undo_patch,
)
from vigil.core import ActionKind, ActionResult, NotFoundError, ObjectRef

__all__ = ["WorkloadActions"]

_SCALABLE = ("Deployment", "StatefulSet")
_TEMPLATED = ("Deployment", "StatefulSet", "DaemonSet")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_PARTS = ("requests", "limits")


def _method(api: Any, verb: str, kind: str, suffix: str = "") -> Any:
    snake = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}
    return getattr(api, f"{verb}_namespaced_{snake[kind]}{suffix}")


def _resources(container: Any) -> dict[str, dict[str, str]]:
    res = container.resources
    return {
        "requests": dict((res.requests if res else None) or {}),
        "limits": dict((res.limits if res else None) or {}),
    }


def _check_changes(ref: ObjectRef, changes: Mapping[str, Mapping[str, str]]) -> None:
    """Reject unknown resource names and unparsable quantities before any request."""
    if not any(changes.values()):
        raise ActionRejected(f"{ref}: patch_resources needs requests and/or limits")
    for part, values in changes.items():
        for name, value in values.items():
            if name not in _RESOURCE_NAMES:
                raise ActionRejected(
                    f"{ref}: {part}.{name}: unknown resource; use one of "
                    + ", ".join(_RESOURCE_NAMES)
                )
            try:
                quantity(value or None)
            except ValueError as exc:
                raise ActionRejected(
                    f"{ref}: {part}.{name}={value!r} is not a Kubernetes quantity "
                    "(e.g. 500m, 2, 256Mi, 1Gi)"
                ) from exc


def _check_request_within_limit(
    ref: ObjectRef, container: str, merged: Mapping[str, Mapping[str, str]]
) -> None:
    for name in sorted(set(merged["requests"]) & set(merged["limits"])):
        request, limit = merged["requests"][name], merged["limits"][name]
        if (quantity(request) or 0.0) > (quantity(limit) or 0.0):
            raise ActionRejected(
                f"{ref}: container {container}: request {name}={request} would exceed "
                f"its limit {limit}"
            )


class WorkloadActions(Reads):
    """Workload actions; each returns an ``ActionResult`` with ``before`` and ``after``."""

    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        """Set desired replicas through the scale subresource (what ``kubectl scale`` does).

        Revert: ``scale(ref, before["replicas"])``."""
        resource = self._workload_resource(ref, "scale", _SCALABLE) + "/scale"
        if not isinstance(replicas, int) or replicas < 0:
            raise ActionRejected(f"{ref}: replicas must be an integer >= 0, got {replicas!r}")
        read = _method(self._apps, "read", ref.kind, "_scale")
        patch = _method(self._apps, "patch", ref.kind, "_scale")
        started = self._clock.now()

        def attempt() -> ActionResult:
            current = self._get(ref, resource, "apps", read)
            had = current.spec.replicas or 0
            rv = current.metadata.resource_version
            before = {"replicas": had, "resource_version": rv}
            if had == replicas:
                message, now = f"already at {had} replicas, nothing to change", had
            else:
                body = {"metadata": {"resourceVersion": rv}, "spec": {"replicas": replicas}}
                out = self._patch(ref, resource, "apps", patch, body, dry_run=dry_run)
                message, now = f"scaled {had} → {replicas} replicas", out.spec.replicas
            return self._result(
                ActionKind.SCALE,
                ref,
                started,
                dry_run=dry_run,
                message=message,
                before=before,
                after={"replicas": now},
            )

        return self._call.retry_conflicts(str(ref), attempt)

    def rollout_restart(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        """Restart every pod by stamping the pod template (``kubectl rollout restart``).

        Not revertible (pods restarted are restarted); ``before`` keeps the revision."""
        resource = self._workload_resource(ref, "rollout restart", _TEMPLATED)
        read, patch = _method(self._apps, "read", ref.kind), _method(self._apps, "patch", ref.kind)
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._get(ref, resource, "apps", read)
            if getattr(obj.spec, "paused", False):
                raise ActionRejected(
                    f"{ref}: cannot restart a paused rollout; resume it first "
                    "(kubectl rollout resume)"
                )
            annotations = obj.spec.template.metadata.annotations or {}
            before = {
                "restarted_at": annotations.get(RESTARTED_AT),
                "revision": revision_of(obj),
                "generation": obj.metadata.generation,
                "resource_version": obj.metadata.resource_version,
            }
            body = restart_patch(obj.metadata.resource_version, self._clock.now())
            out = self._patch(ref, resource, "apps", patch, body, dry_run=dry_run)
            stamped = (out.spec.template.metadata.annotations or {}).get(RESTARTED_AT)
            return self._result(
                ActionKind.ROLLOUT_RESTART,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after={"restarted_at": stamped, "generation": out.metadata.generation},
                message=f"restarted the rollout (pod template stamped {stamped})",
            )

        return self._call.retry_conflicts(str(ref), attempt)

    def rollout_undo(
        self, ref: ObjectRef, *, to_revision: int | None = None, dry_run: bool
    ) -> ActionResult:
        """Roll back to the previous (or a given) revision as ``kubectl rollout undo`` does.

        Revert: ``rollout_undo(ref, to_revision=before["revision"])``."""
        self._workload_resource(ref, "rollout undo", ("Deployment",))
        read, patch = self._apps.read_namespaced_deployment, self._apps.patch_namespaced_deployment
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._get(ref, "deployments", "apps", read)
            if obj.spec.paused:
                raise ActionRejected(
                    f"{ref}: cannot roll back a paused deployment; resume it first "
                    "(kubectl rollout resume)"
                )
            replicasets = self._list(("replicasets", "apps"), ref.namespace)
            history = owned_history([self._to_dict(rs) for rs in replicasets], obj.metadata.uid)
            revision = pick_revision(history, to_revision, str(ref))
            current = revision_of(obj)
            images = [c.image for c in obj.spec.template.spec.containers]
            before = {
                "revision": current,
                "images": images,
                "resource_version": obj.metadata.resource_version,
            }
            ops = undo_patch(self._to_dict(obj), history[revision])
            if ops is None:
                message = f"skipped rollback, the template already matches revision {revision}"
                after = {"revision": current, "to_revision": revision, "images": images}
            else:
                out = self._patch(
                    ref,
                    "deployments",
                    "apps",
                    patch,
                    ops,
                    dry_run=dry_run,
                    content_type=JSON_PATCH,
                )
                message = f"rolled back from revision {current} to revision {revision}"
                after = {
                    "to_revision": revision,
                    "images": [c.image for c in out.spec.template.spec.containers],
                    "generation": out.metadata.generation,
                }
            return self._result(
                ActionKind.ROLLOUT_UNDO,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after=after,
                message=message,
            )

        return self._call.retry_conflicts(str(ref), attempt)

    def patch_hpa(
        self,
        ref: ObjectRef,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        dry_run: bool,
    ) -> ActionResult:
        """Change an HPA's min/max replicas. Revert: patch back ``before``'s values."""
        if ref.kind != "HorizontalPodAutoscaler":
            raise ActionRejected(f"{ref}: patch_hpa takes an hpa, not a {ref.kind.lower()}")
        if min_replicas is None and max_replicas is None:
            raise ActionRejected(f"{ref}: patch_hpa needs min_replicas and/or max_replicas")
        api, version = self._autoscaling()
        resource, group = "horizontalpodautoscalers", "autoscaling"
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._get(ref, resource, group, api.read_namespaced_horizontal_pod_autoscaler)
            had_min = obj.spec.min_replicas if obj.spec.min_replicas is not None else 1
            had_max = obj.spec.max_replicas
            new_min = had_min if min_replicas is None else min_replicas
            new_max = had_max if max_replicas is None else max_replicas
            if not 1 <= new_min <= new_max:
                raise ActionRejected(
                    f"{ref}: need 1 <= min_replicas ({new_min}) <= max_replicas ({new_max})"
                )
            rv = obj.metadata.resource_version
            body = {
                "metadata": {"resourceVersion": rv},
                "spec": {"minReplicas": new_min, "maxReplicas": new_max},
            }
            out = self._patch(
                ref,
                resource,
                group,
                api.patch_namespaced_horizontal_pod_autoscaler,
                body,
                dry_run=dry_run,
            )
            return self._result(
                ActionKind.PATCH_HPA,
                ref,
                started,
                dry_run=dry_run,
                before={
                    "min_replicas": had_min,
                    "max_replicas": had_max,
                    "api_version": version,
                    "resource_version": rv,
                },
                after={
                    "min_replicas": out.spec.min_replicas,
                    "max_replicas": out.spec.max_replicas,
                },
                message=f"min/max replicas {had_min}/{had_max} → {new_min}/{new_max}",
            )

        return self._call.retry_conflicts(str(ref), attempt)

    def patch_resources(
        self,
        ref: ObjectRef,
        container: str,
        *,
        requests: Mapping[str, str] | None = None,
        limits: Mapping[str, str] | None = None,
        dry_run: bool,
    ) -> ActionResult:
        """Set a container's requests/limits in the workload's pod template (a rollout
        follows). A value of ``""`` removes that entry, so ``before`` can always be
        restored: revert with ``requests=before["requests"]`` and ``limits=before["limits"]``
        plus ``""`` for every key the patch added."""
        resource = self._workload_resource(ref, "patch_resources", _TEMPLATED)
        changes = {"requests": dict(requests or {}), "limits": dict(limits or {})}
        _check_changes(ref, changes)
        read, patch = _method(self._apps, "read", ref.kind), _method(self._apps, "patch", ref.kind)
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._get(ref, resource, "apps", read)
            found = {c.name: c for c in obj.spec.template.spec.containers}
            if container not in found:
                raise NotFoundError(
                    f"{ref}: no container {container!r}; it has {', '.join(sorted(found))}"
                )
            had = _resources(found[container])
            merged = {p: {k: v for k, v in {**had[p], **changes[p]}.items() if v} for p in _PARTS}
            _check_request_within_limit(ref, container, merged)
            # null deletes a key in a strategic merge patch; containers merge by name
            resources = {p: {k: (v or None) for k, v in changes[p].items()} for p in _PARTS}
            body = {
                "metadata": {"resourceVersion": obj.metadata.resource_version},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": container,
                                    "resources": {p: v for p, v in resources.items() if v},
                                }
                            ]
                        }
                    }
                },
            }
            out = self._patch(
                ref, resource, "apps", patch, body, dry_run=dry_run, content_type=STRATEGIC
            )
            new = next(c for c in out.spec.template.spec.containers if c.name == container)
            after = _resources(new)
            return self._result(
                ActionKind.PATCH_RESOURCES,
                ref,
                started,
                dry_run=dry_run,
                before={
                    "container": container,
                    **had,
                    "resource_version": obj.metadata.resource_version,
                },
                after={"container": container, **after},
                message=f"container {container}: resources {had} → {after}",
            )

        return self._call.retry_conflicts(str(ref), attempt)
