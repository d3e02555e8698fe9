"""``KubernetesCluster``: vigil's ``Cluster`` port on a real API server.

The composition root builds one with ``KubernetesCluster.from_settings`` (in-cluster
ServiceAccount or a kubeconfig and context) and hands it to the playbook runner, which
sees only ``vigil.core.Cluster``: reads come back as ``vigil.core`` snapshots, actions
as ``ActionResult``s, and failures as vigil errors (``Forbidden`` naming the missing
RBAC rule, ``NotFoundError``, ``DisruptionBudgetBlocked``, ``RateLimited``,
``ConflictPersisted``, ``ApiServerUnavailable``), never as ``ApiException``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vigil.actions.kubernetes._pod_node_actions import PodNodeActions
from vigil.actions.kubernetes._workload_actions import WorkloadActions
from vigil.actions.kubernetes.settings import KubernetesSettings
from vigil.core import ConfigError

if TYPE_CHECKING:
    from vigil.core import Clock

__all__ = ["KubernetesCluster"]


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
