"""``KubernetesCluster``: vigil's ``Cluster`` port on a real API server.

The composition root builds one with ``KubernetesCluster.from_settings`` (in-cluster
ServiceAccount or a kubeconfig and context) and hands it to the playbook runner, which
sees only ``vigil.core.Cluster``: reads come back as ``vigil.core`` snapshots, actions
as ``ActionResult``s, and failures as vigil errors (``Forbidden`` naming the missing
RBAC rule, ``NotFoundError``, ``DisruptionBudgetBlocked``, ``RateLimited``,
``ConflictPersisted``, ``ApiServerUnavailable``), never as ``ApiException``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vigil.actions.kubernetes._errors import Op
from vigil.actions.kubernetes._pod_node_actions import PodNodeActions
from vigil.actions.kubernetes._workload_actions import WorkloadActions
from vigil.actions.kubernetes.settings import KubernetesSettings
from vigil.core import ConfigError, ObjectRef

if TYPE_CHECKING:
    from vigil.core import Clock

__all__ = ["KubernetesCluster"]

# Kind → (resource, API group, API, read method) to find an object's uid for an Event.
_READERS = {
    "Deployment": ("deployments", "apps", "_apps", "read_namespaced_deployment"),
    "StatefulSet": ("statefulsets", "apps", "_apps", "read_namespaced_stateful_set"),
    "DaemonSet": ("daemonsets", "apps", "_apps", "read_namespaced_daemon_set"),
    "ReplicaSet": ("replicasets", "apps", "_apps", "read_namespaced_replica_set"),
    "Pod": ("pods", "", "_core", "read_namespaced_pod"),
    "Node": ("nodes", "", "_core", "read_node"),
    "Namespace": ("namespaces", "", "_core", "read_namespace"),
}


class KubernetesCluster(WorkloadActions, PodNodeActions):
    """The ``Cluster`` port through the official ``kubernetes`` client.

    Build it with ``from_settings`` (or pass a ready ``kubernetes.client.ApiClient``).
    ``clock`` stamps results; ``sleep`` is how Retry-After and the qps limit wait
    (tests pass a recorder)."""

    @classmethod
    def from_settings(
        cls,
        settings: KubernetesSettings,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> KubernetesCluster:
        """Connect with the pod's ServiceAccount (``in_cluster``) or a kubeconfig/context."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            if settings.in_cluster:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(settings.kubeconfig.expanduser())
                    if settings.kubeconfig
                    else None,
                    context=settings.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            source = (
                "the in-cluster ServiceAccount"
                if settings.in_cluster
                else f"kubeconfig {settings.kubeconfig or '(default)'}"
                + (f" context {settings.context!r}" if settings.context else "")
            )
            raise ConfigError(
                f"kubernetes: cannot load {source}: {exc}; set kubernetes.kubeconfig/context, "
                "or kubernetes.in_cluster: true when running in a pod"
            ) from exc
        # vigil decides about retries itself (bounded, typed errors); urllib3 must not
        # silently resend a PATCH or DELETE.
        configuration.retries = False
        return cls(client.ApiClient(configuration), settings, clock=clock, sleep=sleep)

    def record_event(
        self, ref: ObjectRef, reason: str, message: str, *, warning: bool = False
    ) -> None:
        """Post a Kubernetes Event on ``ref`` (``kubectl describe`` shows it), so people
        looking at the object see what vigil did and why. Not part of the ``Cluster``
        port: the agent calls it after journaling an action and treats a failure as
        harmless. Events about nodes go to the ``default`` namespace, as kubelet's do."""
        from datetime import UTC

        if ref.kind == "HorizontalPodAutoscaler":
            api: Any = self._autoscaling()[0]
            resource, group, read = (
                "horizontalpodautoscalers",
                "autoscaling",
                api.read_namespaced_horizontal_pod_autoscaler,
            )
        else:
            resource, group, attr, method = _READERS[ref.kind]
            read = getattr(getattr(self, attr), method)
        obj = self._get(ref, resource, group, read)
        namespace = ref.namespace or "default"
        stamp = self._clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": "vigil-", "namespace": namespace},
            "involvedObject": {
                "kind": ref.kind,
                "namespace": ref.namespace,
                "name": ref.name,
                "uid": obj.metadata.uid,
                "apiVersion": obj.api_version,
                "resourceVersion": obj.metadata.resource_version,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "vigil", "host": socket.gethostname()},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": "vigil",
            "reportingInstance": socket.gethostname(),
        }
        self._call(
            Op("create", "events", "", namespace, str(ref)),
            lambda: self._core.create_namespaced_event(
                namespace, body, _request_timeout=self._timeout
            ),
        )
