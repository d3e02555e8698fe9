"""The cluster watch stage: node and pod conditions read from the ``Cluster`` each tick.

Reports ``NodeNotReady``, ``NodePressure``, ``NodeRecovered`` (a node vigil cordoned is
healthy again) and ``OOMKilled`` (per workload) as ``condition`` findings for the
playbook stage, which runs after it. ``vigil demo`` wires it on the twin's cluster;
``vigil run`` can wire it on the Kubernetes adapter the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from vigil.agent.loop import TickContext
from vigil.core import (
    ActionKind,
    ActionStatus,
    Cluster,
    Finding,
    FindingKind,
    ObjectRef,
    Severity,
    Store,
)

__all__ = ["ClusterWatchStage"]

log = logging.getLogger(__name__)


class ClusterWatchStage:
    """Node and pod conditions read from the cluster each tick, as ``condition`` findings.

    ``OOMKilled`` per workload with the number of OOM kills in the last hour (the
    ``oom-raise-memory-limit`` playbook acts from three).

    ``NodeNotReady`` and ``NodePressure`` for nodes that report them (the node playbooks
    cordon on them), and ``NodeRecovered`` for a node that vigil itself cordoned (its
    journal's last change to the node is a cordon that succeeded), that is Ready without
    pressure again for ``recovered_after`` seconds and still unschedulable: the
    ``node-recovered-uncordon`` playbook gives it back, under the same guardrails. A
    node a person cordoned is never reported as recovered. One finding per episode (its
    start is when the condition was first seen); it is resolved when the condition clears.
    """

    name = "cluster-watch"

    def __init__(
        self,
        cluster: Cluster,
        store: Store,
        *,
        recovered_after: float = 600.0,
        journal_window: float = 7 * 86_400.0,
    ) -> None:
        if recovered_after < 0 or journal_window <= 0:
            raise ValueError("recovered_after must be >= 0 and journal_window > 0 seconds")
        self._cluster = cluster
        self._store = store
        self._recovered_after = timedelta(seconds=recovered_after)
        self._window = timedelta(seconds=journal_window)
        self._since: dict[tuple[str, str], datetime] = {}  # (object, condition) → first seen
        self._open: dict[tuple[str, str], str] = {}  # (object, condition) → finding id
        self._healthy_since: dict[str, datetime] = {}
        self._restarts: dict[ObjectRef, int] = {}  # pod → restarts last seen
        self._owners: dict[ObjectRef, ObjectRef | None] = {}
        self._ooms: dict[ObjectRef, list[datetime]] = {}  # workload → OOM kills seen

    def run(self, ctx: TickContext) -> None:
        now = ctx.now
        seen: set[tuple[str, str]] = set()
        self._oom_kills(ctx, seen)
        for node in self._cluster.list_nodes():
            healthy = node.ready and not node.pressure
            if healthy:
                self._healthy_since.setdefault(node.name, now)
            else:
                self._healthy_since.pop(node.name, None)
            conditions = []
            if not node.ready:
                conditions.append(("NodeNotReady", f"node {node.name} is NotReady"))
            if node.pressure:
                conditions.append(
                    ("NodePressure", f"node {node.name} reports {', '.join(node.pressure)}")
                )
            if (
                healthy
                and node.unschedulable
                and now - self._healthy_since[node.name] >= self._recovered_after
                and self._cordoned_by_vigil(node.name, now)
            ):
                since = self._healthy_since[node.name]
                conditions.append(
                    (
                        "NodeRecovered",
                        f"node {node.name} is Ready again since {since:%H:%M} UTC and "
                        "still cordoned by vigil",
                    )
                )
            for condition, title in conditions:
                key = (node.name, condition)
                seen.add(key)
                self._report(ctx, node.name, condition, title, key)
        for key in [k for k in self._open if k not in seen]:
            self._store.resolve_finding(self._open.pop(key), now)
            self._since.pop(key, None)

    def _oom_kills(self, ctx: TickContext, seen: set[tuple[str, str]]) -> None:
        """``OOMKilled`` per workload: containers OOM-killed in the last hour, counted from
        restart counters that rose since the previous tick with OOMKilled as the reason."""
        window = timedelta(hours=1)
        live = set()
        for pod in self._cluster.list_pods():
            live.add(pod.ref)
            before = self._restarts.get(pod.ref)
            self._restarts[pod.ref] = pod.restarts
            if before is None or pod.restarts <= before:
                continue
            if pod.last_termination_reason != "OOMKilled":
                continue
            if pod.ref not in self._owners:
                self._owners[pod.ref] = self._cluster.owner_workload(pod.ref)
            owner = self._owners[pod.ref]
            if owner is not None:
                self._ooms.setdefault(owner, []).extend([ctx.now] * (pod.restarts - before))
        for gone in [p for p in self._restarts if p not in live]:
            del self._restarts[gone]
            self._owners.pop(gone, None)
        for workload, kills in list(self._ooms.items()):
            recent = [t for t in kills if ctx.now - t < window]
            if not recent:
                del self._ooms[workload]
                continue
            self._ooms[workload] = recent
            key = (str(workload), "OOMKilled")
            seen.add(key)
            title = f"{workload}: {len(recent)} container(s) OOM-killed in the last hour"
            self._report(ctx, workload, "OOMKilled", title, key, count=len(recent))

    def _report(
        self,
        ctx: TickContext,
        obj: str | ObjectRef,
        condition: str,
        title: str,
        key: tuple[str, str],
        *,
        count: int = 1,
    ) -> None:
        started = self._since.setdefault(key, ctx.now)
        if isinstance(obj, ObjectRef):
            target = obj
            labels = {"namespace": obj.namespace or "", obj.kind.lower(): obj.name}
        else:
            target = ObjectRef("Node", None, obj)
            labels = {"node": obj}
        finding = Finding(
            kind=FindingKind.CONDITION,
            subject=f"{target}|{condition}",
            title=title,
            severity=Severity.INFO if condition == "NodeRecovered" else Severity.CRITICAL,
            observed_at=ctx.now,
            started_at=started,
            labels={**labels, "condition": condition},
            target=target,
            details={"condition": condition, "count": count},
        )
        if self._store.record_finding(finding):
            log.info("new finding %s: %s", finding.id, title)
        self._open[key] = finding.id
        ctx.findings.append(finding)

    def _cordoned_by_vigil(self, node: str, now: datetime) -> bool:
        """Whether vigil's last change to ``node`` is a cordon that took effect."""
        changes = [
            e
            for e in self._store.journal_list(since=now - self._window, limit=10_000)
            if e.target.kind == "Node"
            and e.target.name == node
            and e.action in (ActionKind.CORDON, ActionKind.UNCORDON)
            and e.status in (ActionStatus.SUCCEEDED, ActionStatus.REVERTED)
        ]
        if not changes:
            return False
        last = max(changes, key=lambda e: (e.updated_at, e.id))
        return last.action is ActionKind.CORDON and last.status is ActionStatus.SUCCEEDED
