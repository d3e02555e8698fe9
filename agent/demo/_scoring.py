"""Scores a demo run against the twin's ground truth: detection, recovery, scaling.

Pure functions over the twin (``vigil.sim.Twin``), the "vigil off" replay of the same
seed and the store the run left behind. Called by ``vigil.agent.demo.run_demo``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vigil.core import ActionStatus, Finding, JournalEntry, ObjectRef

if TYPE_CHECKING:
    from vigil.agent.store import SqliteStore
    from vigil.sim import Incident, Twin

__all__ = ["DemoScore", "IncidentOutcome", "score_run"]


@dataclass(frozen=True)
class IncidentOutcome:
    """One injected incident: was it detected, how fast, how fast did it recover."""

    id: str
    kind: str
    target: str
    injected_at: datetime | None
    impact_start: datetime | None
    detected_at: datetime | None
    findings: int
    recovery_minutes_vigil: float | None
    recovery_minutes_off: float | None
    impacted_minutes_vigil: float
    impacted_minutes_off: float
    fixed_by_people: bool

    @property
    def detected(self) -> bool:
        return self.detected_at is not None

    @property
    def minutes_to_detect(self) -> float | None:
        if self.detected_at is None:
            return None
        start = self.impact_start or self.injected_at
        if start is None:
            return None
        return max(0.0, (self.detected_at - start).total_seconds() / 60.0)


@dataclass(frozen=True)
class DemoScore:
    incidents: tuple[IncidentOutcome, ...]
    findings_total: int
    findings_unmatched: int
    actions: tuple[JournalEntry, ...]
    verifications: dict[int, list[Any]]
    refusals: tuple[JournalEntry, ...]
    scaling_vigil: dict[str, float]
    scaling_off: dict[str, float]
    people_actions_vigil: int
    people_actions_off: int
    notifications: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def detected(self) -> int:
        return sum(1 for i in self.incidents if i.detected)


def _minutes(incident: Incident) -> float | None:
    if incident.impact_start is None or incident.recovered_at is None:
        return None
    return (incident.recovered_at - incident.impact_start).total_seconds() / 60.0


def _finding_ref(finding: Finding) -> ObjectRef | None:
    return finding.target


def _raised_at(findings: list[Finding], ticks: list[datetime]) -> dict[str, datetime]:
    """When each finding was first raised: the first tick at or after its start.

    A stored finding's ``observed_at`` is its *last* sighting (every tick of an ongoing
    incident refreshes it), so scoring detection with it made long findings look late
    and let findings raised before an incident count for it.
    """
    out = {}
    for f in findings:
        at = bisect.bisect_left(ticks, f.started_at)
        out[f.id] = ticks[at] if at < len(ticks) else f.observed_at
    return out


def _totals(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    return {
        "replica_hours": sum(v["replica_hours"] for v in summary.values()),
        "under_provisioned_minutes": sum(v["under_provisioned_minutes"] for v in summary.values()),
        "unhealthy_minutes": sum(v["unhealthy_minutes"] for v in summary.values()),
    }


def score_run(
    twin: Twin,
    baseline: Twin,
    store: SqliteStore,
    *,
    start: datetime,
    notifications: int,
    scaled: Sequence[str] = (),
) -> DemoScore:
    """Match findings to incidents (``Incident.covers``) and compare with the replay;
    ``scaled`` (``namespace/name``) are the workloads vigil scales predictively."""
    end = twin.now
    # scaling decisions are plans, not detections: they are scored with the scaling figures
    findings = [
        f for f in store.findings_between(start, end) if not f.subject.startswith("scaling:")
    ]
    ticks = sorted(t.started_at for t in store.recent_ticks(limit=1_000_000))
    raised = _raised_at(findings, ticks)
    incidents = twin.incidents()
    off = {i.id: i for i in baseline.incidents()}
    matched: set[str] = set()
    outcomes = []
    for inc in incidents:
        hits = []
        for f in findings:
            ref = _finding_ref(f)
            if ref is not None and inc.covers(ref, raised[f.id]):
                hits.append(f)
                matched.add(f.id)
        first = min((raised[f.id] for f in hits), default=None)
        twin_off = off.get(inc.id)
        outcomes.append(
            IncidentOutcome(
                id=inc.id,
                kind=str(inc.fault.kind),
                target=str(inc.fault.target),
                injected_at=inc.injected_at,
                impact_start=inc.impact_start,
                detected_at=first,
                findings=len(hits),
                recovery_minutes_vigil=_minutes(inc),
                recovery_minutes_off=_minutes(twin_off) if twin_off else None,
                impacted_minutes_vigil=inc.impacted_minutes,
                impacted_minutes_off=twin_off.impacted_minutes if twin_off else 0.0,
                fixed_by_people=inc.fixed_by_people,
            )
        )
    journal = store.journal_list(since=start, limit=10_000)
    actions = tuple(e for e in journal if e.status is not ActionStatus.REFUSED)
    refusals = tuple(e for e in journal if e.status is ActionStatus.REFUSED)
    verifications = {e.id: store.verifications_for(e.id) for e in actions}
    return DemoScore(
        incidents=tuple(outcomes),
        findings_total=len(findings),
        findings_unmatched=len([f for f in findings if f.id not in matched]),
        actions=actions,
        verifications=verifications,
        refusals=refusals,
        scaling_vigil=_totals(twin.workload_summary()),
        scaling_off=_totals(baseline.workload_summary()),
        people_actions_vigil=len(twin.people_actions),
        people_actions_off=len(baseline.people_actions),
        notifications=notifications,
        extras=_predictive(twin, baseline, journal, scaled),
    )


def _predictive(
    twin: Twin, baseline: Twin, journal: Sequence[JournalEntry], scaled: Sequence[str]
) -> dict[str, Any]:
    """Predictive (vigil + HPA) vs reactive (HPA alone) on the services vigil scales."""
    if not scaled:
        return {}
    on, off = twin.workload_summary(), baseline.workload_summary()
    mine = [e for e in journal if e.playbook.startswith("predictive-")]
    return {
        "scaled": list(scaled),
        "scaled_vigil": _totals({k: on[k] for k in scaled if k in on}),
        "scaled_off": _totals({k: off[k] for k in scaled if k in off}),
        "predictive_actions": sum(1 for e in mine if e.status is not ActionStatus.REFUSED),
        "predictive_refused": sum(1 for e in mine if e.status is ActionStatus.REFUSED),
    }
