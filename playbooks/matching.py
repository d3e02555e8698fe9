"""Findings → plans: the first playbook (by priority) whose ``when`` matches, on a resolved target.

The agent's playbook stage calls ``match_findings`` each tick; ``backtest`` calls it on
replayed findings; ``verification`` calls ``plan_for_step`` to escalate. Resolved and
stale findings never produce a plan. Target resolution follows owner references
(pod → ReplicaSet → Deployment) through ``Cluster.owner_workload``.

What findings must carry (the agent builds them): anomalies their ``Anomaly``;
forecasts their ``Forecast`` plus ``details`` ``capacity`` or ``limit`` (same unit as the
series) and, from the scaling policy, ``desired_replicas``/``current_replicas``;
alerts their labels (``alertname`` …); conditions ``details.condition`` (one of
``CONDITION_TYPES``) and ``details.count`` (repeats, e.g. OOM kills).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.core import (
    ActionKind,
    Anomaly,
    Finding,
    FindingKind,
    Mode,
    NotFoundError,
    ObjectRef,
    Plan,
    idempotency_key,
    to_datetime,
)
from vigil.playbooks.labels import parse_matcher
from vigil.playbooks.schema import Playbook

if TYPE_CHECKING:
    from vigil.core import Cluster

__all__ = [
    "Match",
    "finding_is_live",
    "match_finding",
    "match_findings",
    "plan_for_step",
    "resolve_target",
    "triggers",
]


@dataclass(frozen=True)
class Match:
    """A finding matched to a playbook; ``plan`` is ``None`` when it could not be built."""

    finding: Finding
    playbook: Playbook
    plan: Plan | None
    note: str = ""


def _labels_match(matchers: Sequence[str], labels: Mapping[str, str]) -> bool:
    return all(parse_matcher(m).matches(labels) for m in matchers)


def _metric_match(globs: Sequence[str], metric: str) -> bool:
    return not globs or any(fnmatch.fnmatchcase(metric, g) for g in globs)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _decision_matches(finding: Finding, change: str) -> bool:
    """A scaling decision (desired vs current replicas) in the wanted direction."""
    desired = _number(finding.details.get("desired_replicas"))
    current = _number(finding.details.get("current_replicas"))
    if desired is None or current is None:
        return False
    if change == "up":
        return desired > current
    if change == "down":
        return desired < current
    return desired != current


def _forecast_crosses(finding: Finding, book: Playbook) -> bool:
    spec = book.when.forecast
    fc = finding.forecast
    if spec is None or fc is None:
        return False
    threshold = _number(finding.details.get(spec.crosses))
    if spec.crosses == "capacity":
        mode = str(finding.details.get("apply", "scale"))
        if spec.apply not in ("any", mode):
            return False
        if threshold is None:
            return _decision_matches(finding, spec.change)
        if spec.change == "down":
            return False  # a band crossing the capacity is never a reason to scale down
    if threshold is None:
        return False
    upper = fc.quantiles[max(fc.quantiles)] if fc.quantiles else fc.mean
    ts = fc.timestamps
    if spec.within is not None:
        horizon = fc.made_at.timestamp() + spec.within
        upper = upper[ts <= horizon]
    return bool(upper.size and np.nanmax(upper) > threshold)


def _direction_match(direction: str, anomaly: Anomaly) -> bool:
    if direction == "above":
        return anomaly.value > anomaly.expected_high
    if direction == "below":
        return anomaly.value < anomaly.expected_low
    return True


def triggers(finding: Finding, book: Playbook) -> bool:
    """Whether ``book.when`` (without the rollout-age condition) matches ``finding``."""
    when = book.when
    if when.anomaly is not None:
        a = when.anomaly
        return (
            finding.kind is FindingKind.ANOMALY
            and finding.anomaly is not None
            and finding.severity.at_least(a.min_severity)
            and _metric_match(a.metrics, finding.anomaly.metric)
            and _labels_match(a.matchers, finding.labels)
            and _direction_match(a.direction, finding.anomaly)
        )
    if when.forecast is not None:
        f = when.forecast
        return (
            finding.kind is FindingKind.FORECAST
            and finding.forecast is not None
            and _metric_match(f.metrics, finding.forecast.metric)
            and _labels_match(f.matchers, finding.labels)
            and _forecast_crosses(finding, book)
        )
    if when.alert is not None:
        al = when.alert
        name = finding.labels.get("alertname") or str(finding.details.get("alertname", ""))
        return (
            finding.kind is FindingKind.ALERT
            and fnmatch.fnmatchcase(name, al.alertname)
            and finding.severity.at_least(al.min_severity)
            and _labels_match(al.matchers, finding.labels)
        )
    c = when.condition
    assert c is not None
    kind = finding.details.get("condition") or finding.labels.get("condition")
    count = _number(finding.details.get("count", 1)) or 0
    return (
        finding.kind is FindingKind.CONDITION
        and kind == c.type
        and count >= c.min_count
        and _labels_match(c.matchers, finding.labels)
    )


def finding_is_live(finding: Finding, now: datetime, max_age: float) -> str:
    """``""`` when the finding may act; else why not (resolved, stale)."""
    if finding.resolved:
        assert finding.resolved_at is not None
        return f"finding resolved at {finding.resolved_at:%Y-%m-%d %H:%M} UTC"
    age = (now - finding.observed_at).total_seconds()
    if age > max_age:
        return f"finding is stale: last seen {age / 60:.0f} min ago (limit {max_age / 60:.0f} min)"
    return ""


def _labels_target(labels: Mapping[str, str], want: str) -> ObjectRef | None:
    ns = labels.get("namespace")
    try:
        if want == "node":
            name = labels.get("node") or labels.get("kubernetes_node")
            return ObjectRef("node", None, name) if name else None
        if not ns:
            return None
        if want == "pod":
            return ObjectRef("pod", ns, labels["pod"]) if labels.get("pod") else None
        for key, kind in (
            ("deployment", "deployment"),
            ("statefulset", "statefulset"),
            ("service", "deployment"),
        ):
            if labels.get(key):
                return ObjectRef(kind, ns, labels[key])
        return ObjectRef("pod", ns, labels["pod"]) if labels.get("pod") else None
    except ValueError:
        return None


def resolve_target(
    finding: Finding, want: str, cluster: Cluster | None
) -> tuple[ObjectRef | None, ObjectRef | None]:
    """``(target, owning workload)`` of kind ``want`` (workload, pod, node) for a finding.

    A pod is followed to its Deployment/StatefulSet through the cluster's owner
    references; without a cluster only labels that name a workload resolve.
    """
    ref = finding.target
    if ref is None or (want == "node") != (ref.kind == "Node"):
        ref = _labels_target(finding.labels, want) or ref
    if ref is None:
        return None, None
    if want == "node":
        return (ref, None) if ref.kind == "Node" else (None, None)
    if want == "pod":
        if ref.kind != "Pod":
            return None, None
        return ref, _owner(cluster, ref)
    if ref.kind in ("Deployment", "StatefulSet"):
        return ref, ref
    owner = _owner(cluster, ref) if ref.kind == "Pod" else None
    return owner, owner


def _owner(cluster: Cluster | None, pod: ObjectRef) -> ObjectRef | None:
    if cluster is None:
        return None
    try:
        return cluster.owner_workload(pod)
    except NotFoundError:
        return None  # the pod is gone already


def _rollout_recent(
    finding: Finding, workload: ObjectRef, within: float, cluster: Cluster | None, now: datetime
) -> str:
    """``""`` when the workload's last rollout is at most ``within`` seconds old."""
    when: datetime | None = None
    if cluster is not None:
        try:
            when = cluster.get_workload(workload).last_rollout_at
        except NotFoundError:
            return f"{workload} does not exist"
    else:
        raw = finding.details.get("last_rollout_at")
        stamp = _number(raw)
        if stamp is not None:
            when = to_datetime(stamp)
        elif isinstance(raw, str):
            when = datetime.fromisoformat(raw)
    if when is None:
        return f"no rollout of {workload} is known"
    if now - when > timedelta(seconds=within):
        return f"last rollout of {workload} was {(now - when).total_seconds() / 60:.0f} min ago"
    if finding.started_at < when - _ROLLOUT_SLACK:
        # The anomaly was there before the rollout, so the rollout cannot have caused
        # it; undoing it would roll back whatever it shipped (on the twin: the on-call's
        # leak fix, undone five minutes after it went out).
        return (
            f"the anomaly began at {finding.started_at:%H:%M} UTC, before the last rollout "
            f"of {workload} at {when:%H:%M} UTC"
        )
    return ""


# Findings are back-dated to the first anomalous point of their k-of-n window; allow
# that much (and scrape lag) before calling an anomaly older than the rollout.
_ROLLOUT_SLACK = timedelta(minutes=2)


def plan_for_step(
    book: Playbook,
    step: int,
    *,
    finding_id: str,
    target: ObjectRef,
    workload: ObjectRef | None,
    now: datetime,
    dry_run: bool,
    finding: Finding | None = None,
    reason: str = "",
) -> Plan:
    """The plan for ``book.steps[step]`` on ``target``; raises ``ValueError`` if the step's
    parameters need something the finding does not carry."""
    spec = book.steps[step]
    params: dict[str, Any] = dict(spec.params)
    details = finding.details if finding is not None else {}
    if spec.action is ActionKind.SCALE and params.pop("from_decision", False):
        desired = _number(details.get("desired_replicas"))
        if desired is None:
            raise ValueError("the finding carries no scaling decision (details.desired_replicas)")
        params["replicas"] = int(desired)
    if spec.action is ActionKind.PATCH_HPA and params.pop("min_from_decision", False):
        desired = _number(details.get("desired_replicas"))
        if desired is None:
            raise ValueError("the finding carries no scaling decision (details.desired_replicas)")
        params["min_replicas"] = int(desired)
    if workload is not None and target.kind == "Pod":
        params["workload"] = str(workload)
    if spec.action is ActionKind.NOTIFY and finding is not None:
        params.setdefault("title", finding.title)
        params.setdefault("severity", str(params.get("severity") or finding.severity))
    mode = Mode.DRY_RUN if dry_run else Mode(book.mode)
    return Plan(
        finding_id=finding_id,
        playbook=book.name,
        step=step,
        action=spec.action,
        target=target,
        params=params,
        mode=mode,
        created_at=now,
        reason=reason or f"playbook {book.name} step {step + 1}",
        idempotency_key=idempotency_key(finding_id, book.name, step, spec.action, target),
    )


def match_finding(
    finding: Finding,
    playbooks: Sequence[Playbook],
    *,
    now: datetime,
    cluster: Cluster | None = None,
    dry_run: bool = True,
    max_age: float = 900.0,
) -> Match | None:
    """The first playbook by priority that matches, with its first step's plan."""
    if finding_is_live(finding, now, max_age):
        return None
    for book in sorted(playbooks, key=lambda b: (b.priority, b.name)):
        if not triggers(finding, book):
            continue
        target, workload = resolve_target(finding, book.target, cluster)
        if target is None and not book.mutating:
            # telling people needs no workload: any object the finding names will do
            target = (
                finding.target
                or _labels_target(finding.labels, "workload")
                or _labels_target(finding.labels, "node")
            )
        if target is None:
            continue  # this playbook cannot act on it; a later (e.g. notify) one may
        if book.when.after_rollout_within is not None:
            if workload is None:
                continue
            if _rollout_recent(finding, workload, book.when.after_rollout_within, cluster, now):
                continue
        try:
            plan = plan_for_step(
                book,
                0,
                finding_id=finding.id,
                target=target,
                workload=workload,
                now=now,
                dry_run=dry_run,
                finding=finding,
                reason=f"{finding.title} → playbook {book.name}",
            )
        except ValueError as exc:
            return Match(finding, book, None, note=f"{book.name}: {exc}")
        return Match(finding, book, plan)
    return None


def match_findings(
    findings: Iterable[Finding],
    playbooks: Sequence[Playbook],
    *,
    now: datetime,
    cluster: Cluster | None = None,
    dry_run: bool = True,
    max_age: float = 900.0,
) -> list[Match]:
    """``match_finding`` for each finding; findings no playbook matches are left out."""
    out = []
    for finding in findings:
        found = match_finding(
            finding, playbooks, now=now, cluster=cluster, dry_run=dry_run, max_age=max_age
        )
        if found is not None:
            out.append(found)
    return out
