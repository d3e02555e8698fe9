"""The read half of ``KubernetesCluster``: namespaces, workloads, pods, nodes, HPAs and
owner references, as ``vigil.core`` snapshots. Needs only get/list RBAC."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from vigil.actions.kubernetes._base import ClusterBase
from vigil.actions.kubernetes._convert import (
    controller_ref,
    hpa_info,
    node_info,
    pod_info,
    revision_of,
    workload_info,
)
from vigil.actions.kubernetes._errors import ActionRejected, Op
from vigil.core import HpaInfo, NodeInfo, ObjectRef, PodInfo, WorkloadInfo

__all__ = ["Reads"]


def _continue_token(meta: Any) -> str | None:
    """The list's continue token (``var_continue`` in the pydantic-based client 37+,
    ``_continue`` before)."""
    if meta is None:
        return None
    token = getattr(meta, "var_continue", None) or getattr(meta, "_continue", None)
    return str(token) if token else None


def _where(namespace: str | None) -> str:
    return f"namespace {namespace}" if namespace else "all namespaces"


class Reads(ClusterBase):
    """Reads through the typed client; every request goes through ``self._call``."""

    def list_namespaces(self) -> list[str]:
        found = self._call(
            Op("list", "namespaces", "", None, "namespaces"),
            lambda: self._core.list_namespace(_request_timeout=self._timeout),
        )
        return sorted(ns.metadata.name for ns in found.items)

    def _list(self, resource_group: tuple[str, str], namespace: str | None, **kw: Any) -> list[Any]:
        """List one resource (pods, deployments, statefulsets, replicasets) in a namespace
        or across all of them."""
        resource, group = resource_group
        api = self._core if group == "" else self._apps
        singular = {
            "pods": "pod",
            "deployments": "deployment",
            "statefulsets": "stateful_set",
            "replicasets": "replica_set",
        }[resource]
        if namespace is None:
            method = getattr(api, f"list_{singular}_for_all_namespaces")
            args: tuple[str, ...] = ()
        else:
            method = getattr(api, f"list_namespaced_{singular}")
            args = (namespace,)
        op = Op("list", resource, group, namespace, f"{resource} in {_where(namespace)}")
        items: list[Any] = []
        token: str | None = None
        while True:  # pages of list_page_size, so a large cluster never needs one huge answer
            request = partial(
                method, *args, limit=self._settings.list_page_size, _continue=token,
                _request_timeout=self._timeout, **kw,
            )  # fmt: skip
            page = self._call(op, request)
            items.extend(page.items)
            token = _continue_token(page.metadata)
            if not token:
                return items

    def _rollout_times(self, namespace: str | None) -> dict[str, datetime]:
        """Deployment uid → creation time of the ReplicaSet of its newest revision."""
        newest: dict[str, tuple[int, datetime]] = {}
        for rs in self._list(("replicasets", "apps"), namespace):
            for owner in rs.metadata.owner_references or ():
                if owner.controller and owner.kind == "Deployment":
                    revision = revision_of(rs)
                    if owner.uid not in newest or revision > newest[owner.uid][0]:
                        newest[owner.uid] = (revision, rs.metadata.creation_timestamp)
        return {uid: created for uid, (_, created) in newest.items() if created is not None}

    def list_workloads(self, namespace: str | None = None) -> list[WorkloadInfo]:
        rollouts = self._rollout_times(namespace)
        out = [
            workload_info(d, "Deployment", rollouts.get(d.metadata.uid))
            for d in self._list(("deployments", "apps"), namespace)
        ]
        out += [
            workload_info(s, "StatefulSet") for s in self._list(("statefulsets", "apps"), namespace)
        ]
        return sorted(out, key=lambda w: w.ref)

    def _read_workload(self, ref: ObjectRef) -> Any:
        resource = self._workload_resource(ref, "reading", ("Deployment", "StatefulSet"))
        method = getattr(
            self._apps,
            "read_namespaced_deployment"
            if ref.kind == "Deployment"
            else "read_namespaced_stateful_set",
        )
        return self._get(ref, resource, "apps", method)

    def get_workload(self, ref: ObjectRef) -> WorkloadInfo:
        obj = self._read_workload(ref)
        if ref.kind != "Deployment":
            return workload_info(obj, ref.kind)
        rollouts = self._rollout_times(ref.namespace)
        return workload_info(obj, "Deployment", rollouts.get(obj.metadata.uid))

    def list_pods(
        self, namespace: str | None = None, selector: Mapping[str, str] | None = None
    ) -> list[PodInfo]:
        kw = {}
        if selector:
            kw["label_selector"] = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = self._list(("pods", ""), namespace, **kw)
        return sorted((pod_info(p) for p in pods), key=lambda p: p.ref)

    def list_nodes(self) -> list[NodeInfo]:
        found = self._call(
            Op("list", "nodes", "", None, "nodes"),
            lambda: self._core.list_node(_request_timeout=self._timeout),
        )
        return sorted((node_info(n) for n in found.items), key=lambda n: n.name)

    def list_hpas(self, namespace: str | None = None) -> list[HpaInfo]:
        api, _ = self._autoscaling()
        op = Op(
            "list",
            "horizontalpodautoscalers",
            "autoscaling",
            namespace,
            f"HPAs in {_where(namespace)}",
        )
        if namespace is None:
            found = self._call(
                op,
                lambda: api.list_horizontal_pod_autoscaler_for_all_namespaces(
                    _request_timeout=self._timeout
                ),
            )
        else:
            found = self._call(
                op,
                lambda: api.list_namespaced_horizontal_pod_autoscaler(
                    namespace, _request_timeout=self._timeout
                ),
            )
        infos = (hpa_info(h) for h in found.items)
        return sorted((i for i in infos if i is not None), key=lambda h: h.ref)

    def owner_workload(self, pod: ObjectRef) -> ObjectRef | None:
        """Pod → ReplicaSet → Deployment (or the StatefulSet/DaemonSet owning the pod)."""
        if pod.kind != "Pod":
            raise ActionRejected(f"{pod}: owner_workload takes a pod, not a {pod.kind.lower()}")
        obj = self._get(pod, "pods", "", self._core.read_namespaced_pod)
        owner = controller_ref(obj, pod.namespace)
        if owner is None or owner.kind != "ReplicaSet":
            return owner
        rs = self._get(owner, "replicasets", "apps", self._apps.read_namespaced_replica_set)
        # A bare ReplicaSet (no Deployment above it) is itself the workload.
        return controller_ref(rs, owner.namespace) or owner
