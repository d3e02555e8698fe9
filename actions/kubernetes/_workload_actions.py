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

from vigil.actions.kubernetes._base import JSON_PATCH, MERGE, STRATEGIC
from vigil.actions.kubernetes._convert import quantity, revision_of
from vigil.actions.kubernetes._errors import ActionRejected, Op
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


def _method(api: Any, verb: str, kind: str, suffix: str = "") -> Any:
    snake = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}
    return getattr(api, f"{verb}_namespaced_{snake[kind]}{suffix}")


class WorkloadActions(Reads):
    """Workload actions; each returns an ``ActionResult`` with ``before`` and ``after``."""

    # ------------------------------------------------------------------ scale
    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        """Set desired replicas through the scale subresource (what ``kubectl scale`` does)."""
        resource = self._workload_resource(ref, "scale", _SCALABLE) + "/scale"
        if not isinstance(replicas, int) or replicas < 0:
            raise ActionRejected(f"{ref}: replicas must be an integer >= 0, got {replicas!r}")
        read, patch = (
            _method(self._apps, "read", ref.kind, "_scale"),
            _method(self._apps, "patch", ref.kind, "_scale"),
        )
        started = self._clock.now()

        def attempt() -> ActionResult:
            current = self._call(
                Op("get", resource, "apps", ref.namespace, str(ref)),
                lambda: read(ref.name, ref.namespace, _request_timeout=self._timeout),
            )
            had = current.spec.replicas or 0
            before = {"replicas": had, "resource_version": current.metadata.resource_version}
            if had == replicas:
                return self._result(
                    ActionKind.SCALE,
                    ref,
                    started,
                    dry_run=dry_run,
                    before=before,
                    after={"replicas": had},
                    message=f"already at {had} replicas, nothing to change",
                )
            body = {
                "metadata": {"resourceVersion": current.metadata.resource_version},
                "spec": {"replicas": replicas},
            }
            out = self._call(
                Op("patch", resource, "apps", ref.namespace, str(ref)),
                lambda: patch(
                    ref.name,
                    ref.namespace,
                    body,
                    _content_type=MERGE,
                    **self._write_options(dry_run),
                ),
            )
            return self._result(
                ActionKind.SCALE,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after={"replicas": out.spec.replicas},
                message=f"scaled {had} → {replicas} replicas",
            )

        return self._call.retry_conflicts(str(ref), attempt)

    # ------------------------------------------------------------------ rollouts
    def rollout_restart(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        """Restart every pod by stamping the pod template (``kubectl rollout restart``)."""
        resource = self._workload_resource(ref, "rollout restart", _TEMPLATED)
        read, patch = _method(self._apps, "read", ref.kind), _method(self._apps, "patch", ref.kind)
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._call(
                Op("get", resource, "apps", ref.namespace, str(ref)),
                lambda: read(ref.name, ref.namespace, _request_timeout=self._timeout),
            )
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
            out = self._call(
                Op("patch", resource, "apps", ref.namespace, str(ref)),
                lambda: patch(
                    ref.name,
                    ref.namespace,
                    body,
                    _content_type=MERGE,
                    **self._write_options(dry_run),
                ),
            )
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
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._call(
                Op("get", "deployments", "apps", ref.namespace, str(ref)),
                lambda: self._apps.read_namespaced_deployment(
                    ref.name, ref.namespace, _request_timeout=self._timeout
                ),
            )
            if obj.spec.paused:
                raise ActionRejected(
                    f"{ref}: cannot roll back a paused deployment; resume it first "
                    "(kubectl rollout resume)"
                )
            replicasets = self._list(("replicasets", "apps"), ref.namespace)
            history = owned_history([self._to_dict(rs) for rs in replicasets], obj.metadata.uid)
            revision = pick_revision(history, to_revision, str(ref))
            deployment = self._to_dict(obj)
            current = revision_of(obj)
            before = {
                "revision": current,
                "images": [c.image for c in obj.spec.template.spec.containers],
                "resource_version": obj.metadata.resource_version,
            }
            patch = undo_patch(deployment, history[revision])
            if patch is None:
                return self._result(
                    ActionKind.ROLLOUT_UNDO,
                    ref,
                    started,
                    dry_run=dry_run,
                    before=before,
                    after={
                        "revision": current,
                        "to_revision": revision,
                        "images": before["images"],
                    },
                    message=f"skipped rollback, the template already matches revision {revision}",
                )
            out = self._call(
                Op("patch", "deployments", "apps", ref.namespace, str(ref)),
                lambda: self._apps.patch_namespaced_deployment(
                    ref.name,
                    ref.namespace,
                    patch,
                    _content_type=JSON_PATCH,
                    **self._write_options(dry_run),
                ),
            )
            images = [c.image for c in out.spec.template.spec.containers]
            return self._result(
                ActionKind.ROLLOUT_UNDO,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after={
                    "to_revision": revision,
                    "images": images,
                    "generation": out.metadata.generation,
                },
                message=f"rolled back from revision {current} to revision {revision}",
            )

        return self._call.retry_conflicts(str(ref), attempt)

    # ------------------------------------------------------------------ HPA
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
        started = self._clock.now()
        namespace = ref.namespace

        def attempt() -> ActionResult:
            obj = self._call(
                Op("get", "horizontalpodautoscalers", "autoscaling", namespace, str(ref)),
                lambda: api.read_namespaced_horizontal_pod_autoscaler(
                    ref.name, namespace, _request_timeout=self._timeout
                ),
            )
            had_min = obj.spec.min_replicas if obj.spec.min_replicas is not None else 1
            had_max = obj.spec.max_replicas
            new_min = had_min if min_replicas is None else min_replicas
            new_max = had_max if max_replicas is None else max_replicas
            if not 1 <= new_min <= new_max:
                raise ActionRejected(
                    f"{ref}: need 1 <= min_replicas ({new_min}) <= max_replicas ({new_max})"
                )
            before = {
                "min_replicas": had_min,
                "max_replicas": had_max,
                "api_version": version,
                "resource_version": obj.metadata.resource_version,
            }
            body = {
                "metadata": {"resourceVersion": obj.metadata.resource_version},
                "spec": {"minReplicas": new_min, "maxReplicas": new_max},
            }
            out = self._call(
                Op("patch", "horizontalpodautoscalers", "autoscaling", namespace, str(ref)),
                lambda: api.patch_namespaced_horizontal_pod_autoscaler(
                    ref.name,
                    namespace,
                    body,
                    _content_type=MERGE,
                    **self._write_options(dry_run),
                ),
            )
            return self._result(
                ActionKind.PATCH_HPA,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after={
                    "min_replicas": out.spec.min_replicas,
                    "max_replicas": out.spec.max_replicas,
                },
                message=f"min/max replicas {had_min}/{had_max} → {new_min}/{new_max}",
            )

        return self._call.retry_conflicts(str(ref), attempt)

    # ------------------------------------------------------------------ resources
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
        if not changes["requests"] and not changes["limits"]:
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
        read, patch = _method(self._apps, "read", ref.kind), _method(self._apps, "patch", ref.kind)
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._call(
                Op("get", resource, "apps", ref.namespace, str(ref)),
                lambda: read(ref.name, ref.namespace, _request_timeout=self._timeout),
            )
            found = {c.name: c for c in obj.spec.template.spec.containers}
            if container not in found:
                raise NotFoundError(
                    f"{ref}: no container {container!r}; it has {', '.join(sorted(found))}"
                )
            res = found[container].resources
            had = {
                "requests": dict((res.requests if res else None) or {}),
                "limits": dict((res.limits if res else None) or {}),
            }
            merged = {
                part: {k: v for k, v in {**had[part], **changes[part]}.items() if v}
                for part in ("requests", "limits")
            }
            for name in set(merged["requests"]) & set(merged["limits"]):
                if quantity(merged["requests"][name]) > quantity(merged["limits"][name]):  # type: ignore[operator]
                    raise ActionRejected(
                        f"{ref}: container {container}: request {name}="
                        f"{merged['requests'][name]} would exceed its limit "
                        f"{merged['limits'][name]}"
                    )
            patch_res = {
                part: {k: (v or None) for k, v in changes[part].items()}
                for part in ("requests", "limits")
                if changes[part]
            }
            body = {
                "metadata": {"resourceVersion": obj.metadata.resource_version},
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": container, "resources": patch_res}]}
                    }
                },
            }
            out = self._call(
                Op("patch", resource, "apps", ref.namespace, str(ref)),
                lambda: patch(
                    ref.name,
                    ref.namespace,
                    body,
                    _content_type=STRATEGIC,
                    **self._write_options(dry_run),
                ),
            )
            new = next(c for c in out.spec.template.spec.containers if c.name == container)
            after = {
                "requests": dict((new.resources.requests if new.resources else None) or {}),
                "limits": dict((new.resources.limits if new.resources else None) or {}),
            }
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
