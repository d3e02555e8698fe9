"""What the reading and acting halves of ``KubernetesCluster`` share (private).

Holds the ``ApiClient``, the typed API handles, the ``Caller`` every request goes
through, API discovery (which autoscaling and policy versions the server serves: a
v1.20 server has autoscaling/v1 and v2beta2 but no v2, and Eviction only in
policy/v1beta1), and how an ``ActionResult`` is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from vigil.actions.kubernetes._calls import Caller
from vigil.actions.kubernetes._errors import ActionRejected, Op
from vigil.actions.kubernetes.settings import KubernetesSettings
from vigil.core import ActionKind, ActionResult, ActionStatus, Clock, ObjectRef, SystemClock

__all__ = ["JSON_PATCH", "MERGE", "STRATEGIC", "WORKLOAD_RESOURCES", "ClusterBase"]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Kind → plural resource (API group apps) for the workload kinds vigil acts on.
WORKLOAD_RESOURCES = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
}


class ClusterBase:
    """State and plumbing shared by the read and write halves of the adapter."""

    def __init__(
        self,
        api_client: Any,
        settings: KubernetesSettings | None = None,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        from kubernetes import client

        self._client = api_client
        self._settings = settings or KubernetesSettings()
        self._clock: Clock = clock or SystemClock()
        self._call = Caller(self._settings, sleep=sleep or time.sleep)
        # Typed as Any: the client's models mark every field Optional, and the adapter
        # reads objects the API server guarantees (metadata, spec) without re-checking.
        self._core: Any = client.CoreV1Api(api_client)
        self._apps: Any = client.AppsV1Api(api_client)
        self._groups: dict[str, tuple[str, ...]] | None = None

    # ------------------------------------------------------------------ plumbing
    @property
    def _timeout(self) -> tuple[float, float]:
        return (self._settings.connect_timeout_s, self._settings.read_timeout_s)

    def _write_options(self, dry_run: bool) -> dict[str, Any]:
        return {
            "dry_run": "All" if dry_run else None,
            "field_manager": self._settings.field_manager,
            "_request_timeout": self._timeout,
        }

    def _get(self, ref: ObjectRef, resource: str, group: str, method: Any) -> Any:
        """GET one object (namespaced or cluster-scoped) through the typed ``method``."""
        args = (ref.name,) if ref.namespace is None else (ref.name, ref.namespace)
        return self._call(
            Op("get", resource, group, ref.namespace, str(ref)),
            lambda: method(*args, _request_timeout=self._timeout),
        )

    def _patch(
        self,
        ref: ObjectRef,
        resource: str,
        group: str,
        method: Any,
        body: Any,
        *,
        dry_run: bool,
        content_type: str = MERGE,
    ) -> Any:
        """PATCH one object with ``body`` (server-side dry run when asked)."""
        args = (ref.name, body) if ref.namespace is None else (ref.name, ref.namespace, body)
        return self._call(
            Op("patch", resource, group, ref.namespace, str(ref)),
            lambda: method(*args, _content_type=content_type, **self._write_options(dry_run)),
        )

    def _to_dict(self, obj: Any) -> dict[str, Any]:
        """A typed model as the JSON the API server sent (camelCase keys)."""
        data = self._client.sanitize_for_serialization(obj)
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ discovery
    def _served_versions(self, group: str) -> tuple[str, ...]:
        """Versions of an API group the server serves (one /apis request, cached)."""
        if self._groups is None:
            from kubernetes import client

            apis = client.ApisApi(self._client)
            found = self._call(
                Op("get", "/apis", "", None, "API discovery"),
                lambda: apis.get_api_versions(_request_timeout=self._timeout),
            )
            self._groups = {
                g.name: tuple(v.version for v in g.versions or ()) for g in found.groups or ()
            }
        return self._groups.get(group, ())

    def _autoscaling(self) -> tuple[Any, str]:
        """The typed HPA API to use: autoscaling/v2 when served (1.23+), else v1, which
        every server to date serves and which carries all an ``HpaInfo`` needs."""
        from kubernetes import client

        if "v2" in self._served_versions("autoscaling"):
            return client.AutoscalingV2Api(self._client), "autoscaling/v2"
        return client.AutoscalingV1Api(self._client), "autoscaling/v1"

    def _eviction_version(self) -> str:
        """``policy/v1`` Eviction on 1.22+, ``policy/v1beta1`` before (e.g. v1.20)."""
        return "policy/v1" if "v1" in self._served_versions("policy") else "policy/v1beta1"

    def capabilities(self) -> dict[str, str]:
        """What this server offers vigil (for ``vigil doctor``-style reports)."""
        from kubernetes import client

        version = self._call(
            Op("get", "/version", "", None, "API server version"),
            lambda: client.VersionApi(self._client).get_code(_request_timeout=self._timeout),
        )
        return {
            "server_version": str(version.git_version),
            "autoscaling": self._autoscaling()[1],
            "eviction": self._eviction_version(),
        }

    # ------------------------------------------------------------------ results
    def _workload_resource(self, ref: ObjectRef, action: str, kinds: tuple[str, ...]) -> str:
        if ref.kind not in kinds:
            allowed = ", ".join(k.lower() for k in kinds)
            raise ActionRejected(f"{ref}: {action} works on {allowed}, not {ref.kind.lower()}")
        return WORKLOAD_RESOURCES[ref.kind]

    def _result(
        self,
        action: ActionKind,
        ref: ObjectRef,
        started: datetime,
        *,
        dry_run: bool,
        message: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
    ) -> ActionResult:
        finished = max(self._clock.now(), started)
        prefix = "dry run passed, would have: " if dry_run else ""
        return ActionResult(
            action=action,
            target=ref,
            status=ActionStatus.DRY_RUN if dry_run else ActionStatus.SUCCEEDED,
            started_at=started,
            finished_at=finished,
            dry_run=dry_run,
            message=f"{ref}: {prefix}{message}",
            before=before,
            after=after,
        )
