"""The pod and node half of the action catalogue: delete or evict a pod, cordon or
uncordon a node. Part of ``KubernetesCluster`` (see ``_workload_actions`` for the shared
rules: before-state first, resourceVersion-guarded writes, server-side dry run)."""

from __future__ import annotations

from typing import Any

from vigil.actions.kubernetes._errors import ActionRejected, Op
from vigil.actions.kubernetes._reads import Reads
from vigil.core import ActionKind, ActionResult, ObjectRef

__all__ = ["PodNodeActions"]


class PodNodeActions(Reads):
    """Actions on single pods and nodes."""

    def _pod_before(self, ref: ObjectRef, action: str) -> dict[str, Any]:
        """What a pod was (uid, node, phase, owner, restarts) before ``action`` on it."""
        if ref.kind != "Pod":
            raise ActionRejected(f"{ref}: {action} takes a pod, not a {ref.kind.lower()}")
        pod = self._get(ref, "pods", "", self._core.read_namespaced_pod)
        owners = pod.metadata.owner_references or ()
        return {
            "uid": pod.metadata.uid,
            "node": pod.spec.node_name,
            "phase": pod.status.phase if pod.status else None,
            "owner": next((f"{o.kind}/{o.name}" for o in owners if o.controller), None),
            "restarts": sum(c.restart_count or 0 for c in (pod.status.container_statuses or ())),
        }

    def _delete_options(self, uid: str, dry_run: bool) -> Any:
        from kubernetes import client

        # The uid precondition leaves alone a pod that was replaced under the same name
        # meanwhile (StatefulSets). dryRun goes in the body as well as the query: when a
        # DELETE has a body the API server takes the options from it alone (seen on v1.20).
        return client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), dry_run=["All"] if dry_run else None
        )

    def delete_pod(self, ref: ObjectRef, *, dry_run: bool) -> ActionResult:
        """Delete one pod; its controller makes a new one. Not revertible, and it ignores
        PodDisruptionBudgets (``evict_pod`` honours them)."""
        started = self._clock.now()
        before = self._pod_before(ref, "delete_pod")
        body = self._delete_options(before["uid"], dry_run)
        self._call(
            Op("delete", "pods", "", ref.namespace, str(ref)),
            lambda: self._core.delete_namespaced_pod(
                ref.name,
                ref.namespace,
                body=body,
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
        before = self._pod_before(ref, "evict_pod")
        body = client.V1Eviction(
            api_version=self._eviction_version(),
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=ref.name, namespace=ref.namespace),
            delete_options=self._delete_options(before["uid"], dry_run),
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
            obj = self._get(ref, "nodes", "", self._core.read_node)
            had = bool(obj.spec.unschedulable)
            rv = obj.metadata.resource_version
            if had == value:
                message = f"already {'cordoned' if had else 'schedulable'}, nothing to change"
                now = had
            else:
                # null removes the field, as kubectl's uncordon patch does
                body = {
                    "metadata": {"resourceVersion": rv},
                    "spec": {"unschedulable": True if value else None},
                }
                out = self._patch(ref, "nodes", "", self._core.patch_node, body, dry_run=dry_run)
                message = "cordoned (unschedulable)" if value else "uncordoned (schedulable)"
                now = bool(out.spec.unschedulable)
            return self._result(
                action,
                ref,
                started,
                dry_run=dry_run,
                message=message,
                before={"unschedulable": had, "resource_version": rv},
                after={"unschedulable": now},
            )

        return self._call.retry_conflicts(str(ref), attempt)
