"""The pod and node half of the action catalogue: delete or evict a pod, cordon or
uncordon a node. Part of ``KubernetesCluster`` (see ``_writes`` for the shared rules:
before-state first, resourceVersion-guarded writes, server-side dry run)."""

from __future__ import annotations

from typing import Any

from vigil.actions.kubernetes._base import MERGE
from vigil.actions.kubernetes._errors import ActionRejected, Op
from vigil.actions.kubernetes._reads import Reads
from vigil.core import ActionKind, ActionResult, ObjectRef

__all__ = ["PodNodeActions"]


class PodNodeActions(Reads):
    """Actions on single pods and nodes."""

    # ------------------------------------------------------------------ pods
    def _pod_before(self, ref: ObjectRef, action: str) -> tuple[Any, dict[str, Any]]:
        if ref.kind != "Pod":
            raise ActionRejected(f"{ref}: {action} takes a pod, not a {ref.kind.lower()}")
        pod = self._call(
            Op("get", "pods", "", ref.namespace, str(ref)),
            lambda: self._core.read_namespaced_pod(
                ref.name, ref.namespace, _request_timeout=self._timeout
            ),
        )
        owner = next(
            (f"{o.kind}/{o.name}" for o in pod.metadata.owner_references or () if o.controller),
            None,
        )
        before = {
            "uid": pod.metadata.uid,
            "node": pod.spec.node_name,
            "phase": pod.status.phase if pod.status else None,
            "owner": owner,
            "restarts": sum(c.restart_count or 0 for c in (pod.status.container_statuses or ())),
        }
        return pod, before

    def delete_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        """Delete one pod (its controller makes a new one). The uid precondition makes sure
        a pod that was replaced meanwhile under the same name is left alone."""
        from kubernetes import client

        started = self._clock.now()
        _, before = self._pod_before(ref, "delete_pod")
        # dryRun goes in the body too: when a DELETE has a body, the API server reads the
        # options from it and ignores the query string (found on a real v1.20 server).
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=before["uid"]),
            dry_run=["All"] if dry_run else None,
        )
        self._call(
            Op("delete", "pods", "", ref.namespace, str(ref)),
            lambda: self._core.delete_namespaced_pod(
                ref.name,
                ref.namespace,
                body=options,
                dry_run="All" if dry_run else None,
                _request_timeout=self._timeout,
            ),
        )
        return self._result(
            ActionKind.DELETE_POD,
            ref,
            started,
            dry_run=dry_run,
            before=before,
            after={"deleted_uid": before["uid"]},
            message=f"deleted pod (owner {before['owner']})",
        )

    def evict_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        """Evict one pod through the Eviction API, so PodDisruptionBudgets hold: a budget
        that would be broken gives ``DisruptionBudgetBlocked`` and nothing changes."""
        from kubernetes import client

        started = self._clock.now()
        _, before = self._pod_before(ref, "evict_pod")
        body = client.V1Eviction(
            api_version=self._eviction_version(),
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=ref.name, namespace=ref.namespace),
            delete_options=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=before["uid"]),
                dry_run=["All"] if dry_run else None,
            ),
        )
        self._call(
            Op("create", "pods/eviction", "", ref.namespace, str(ref)),
            lambda: self._core.create_namespaced_pod_eviction(
                ref.name,
                ref.namespace,
                body,
                dry_run="All" if dry_run else None,
                _request_timeout=self._timeout,
            ),
        )
        return self._result(
            ActionKind.EVICT_POD,
            ref,
            started,
            dry_run=dry_run,
            before=before,
            after={"evicted_uid": before["uid"]},
            message=f"evicted pod (owner {before['owner']}), disruption budgets allowed it",
        )

    # ------------------------------------------------------------------ nodes
    def cordon(self, node: str, *, dry_run: bool) -> ActionResult:
        """Mark a node unschedulable (``kubectl cordon``); running pods stay."""
        return self._set_unschedulable(node, True, dry_run=dry_run)

    def uncordon(self, node: str, *, dry_run: bool) -> ActionResult:
        """Make a node schedulable again (``kubectl uncordon``); the revert of ``cordon``."""
        return self._set_unschedulable(node, False, dry_run=dry_run)

    def _set_unschedulable(self, node: str, value: bool, *, dry_run: bool) -> ActionResult:
        ref = ObjectRef("Node", None, node)
        action = ActionKind.CORDON if value else ActionKind.UNCORDON
        started = self._clock.now()

        def attempt() -> ActionResult:
            obj = self._call(
                Op("get", "nodes", "", None, str(ref)),
                lambda: self._core.read_node(node, _request_timeout=self._timeout),
            )
            had = bool(obj.spec.unschedulable)
            before = {"unschedulable": had, "resource_version": obj.metadata.resource_version}
            if had == value:
                return self._result(
                    action,
                    ref,
                    started,
                    dry_run=dry_run,
                    before=before,
                    after={"unschedulable": had},
                    message=f"already {'cordoned' if had else 'schedulable'}, nothing to change",
                )
            body = {
                "metadata": {"resourceVersion": obj.metadata.resource_version},
                # null removes the field, as kubectl's uncordon patch does
                "spec": {"unschedulable": True if value else None},
            }
            out = self._call(
                Op("patch", "nodes", "", None, str(ref)),
                lambda: self._core.patch_node(
                    node, body, _content_type=MERGE, **self._write_options(dry_run)
                ),
            )
            return self._result(
                action,
                ref,
                started,
                dry_run=dry_run,
                before=before,
                after={"unschedulable": bool(out.spec.unschedulable)},
                message="cordoned (unschedulable)" if value else "uncordoned (schedulable)",
            )

        return self._call.retry_conflicts(str(ref), attempt)
