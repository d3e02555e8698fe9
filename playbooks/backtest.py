"""Backtest: what the playbooks would have done over a past window, before switching them on.

The agent replays history from a ``MetricSource`` through the detectors into findings
and calls ``backtest`` (``vigil backtest --from … --to …``). Each finding is matched
and decided, in time order, at the time it was observed, in dry-run against a
throwaway in-memory journal, so cooldowns, rate limits and budgets interact as they
would have. Without a cluster, blast radius and storm protection are not evaluated (the
report says so). A pure function: the report is a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vigil.core import ActionStatus, Finding
from vigil.playbooks.guardrails import Guardrails
from vigil.playbooks.journal_memory import MemoryJournal
from vigil.playbooks.matching import match_finding
from vigil.playbooks.schema import Playbook
from vigil.playbooks.settings import GuardrailSettings, ResourceBounds

if TYPE_CHECKING:
    from vigil.core import Cluster

__all__ = ["BacktestReport", "Firing", "PlaybookSummary", "backtest"]


@dataclass(frozen=True)
class Firing:
    """One time a playbook would have fired: on what, and what the guardrails decided."""

    at: datetime
    finding_id: str
    finding: str
    playbook: str
    action: str
    target: str
    decision: str
    guardrail: str
    reason: str


@dataclass(frozen=True)
class PlaybookSummary:
    name: str
    fired: int
    would_act: int
    refused: Counter[str]
    targets: Counter[str]


@dataclass(frozen=True)
class BacktestReport:
    start: datetime
    end: datetime
    findings: int
    unmatched: int
    repeats: int
    firings: tuple[Firing, ...]
    playbooks: tuple[PlaybookSummary, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "findings": self.findings,
            "unmatched": self.unmatched,
            "repeats": self.repeats,
            "notes": list(self.notes),
            "playbooks": [
                {
                    "name": s.name,
                    "fired": s.fired,
                    "would_act": s.would_act,
                    "refused": dict(s.refused),
                    "targets": dict(s.targets),
                }
                for s in self.playbooks
            ],
            "firings": [{**f.__dict__, "at": f.at.isoformat()} for f in self.firings],
        }

    def render(self) -> str:
        """The human report: per playbook, how often, on what, and what guardrails said."""
        lines = [
            f"Backtest {self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC: "
            f"{self.findings} findings, {self.unmatched} matched no playbook, "
            f"{self.repeats} repeats of an open finding (idempotent, not counted).",
        ]
        lines += [f"note: {n}" for n in self.notes]
        for s in self.playbooks:
            refused = ", ".join(f"{k} {v}" for k, v in s.refused.most_common()) or "none"
            lines.append("")
            lines.append(
                f"{s.name}: fired {s.fired}, would have acted {s.would_act}, refused: {refused}"
            )
            for target, count in s.targets.most_common(5):
                lines.append(f"  {count:>4} × {target}")
        if self.firings:
            lines += ["", "Decisions:"]
            lines += [
                f"  {f.at:%m-%d %H:%M} {f.playbook}: {f.decision} – {f.reason}"
                for f in self.firings
            ]
        return "\n".join(lines) + "\n"


def backtest(
    findings: Iterable[Finding],
    playbooks: Sequence[Playbook],
    *,
    start: datetime,
    end: datetime,
    guardrails: GuardrailSettings | None = None,
    resources: ResourceBounds | None = None,
    cluster: Cluster | None = None,
) -> BacktestReport:
    """Match and decide every finding observed in ``[start, end]`` in dry-run."""
    if end <= start:
        raise ValueError(f"backtest window is empty: --to {end} is not after --from {start}")
    settings = (guardrails or GuardrailSettings()).model_copy(update={"dry_run": True})
    journal = MemoryJournal()
    books = {b.name: b for b in playbooks}
    rails = Guardrails(journal, settings, books, resources=resources)
    window = sorted(
        (f for f in findings if start <= f.observed_at <= end), key=lambda f: f.observed_at
    )
    firings: list[Firing] = []
    unmatched = repeats = 0
    for finding in window:
        match = match_finding(
            finding,
            playbooks,
            now=finding.observed_at,
            cluster=cluster,
            dry_run=True,
            max_age=settings.finding_max_age,
        )
        if match is None or match.plan is None:
            unmatched += 1
            continue
        decision = rails.decide(
            match.plan, now=finding.observed_at, cluster=cluster, finding=finding
        )
        if decision.guardrail == "idempotency":
            repeats += 1
            continue
        firings.append(
            Firing(
                at=finding.observed_at,
                finding_id=finding.id,
                finding=finding.title,
                playbook=match.playbook.name,
                action=str(match.plan.action),
                target=str(match.plan.target),
                decision=str(decision.status) if match.plan.mutating else "notify",
                guardrail=decision.guardrail,
                reason=decision.reason,
            )
        )
    summaries = []
    for name in sorted({f.playbook for f in firings}, key=lambda n: (books[n].priority, n)):
        mine = [f for f in firings if f.playbook == name]
        summaries.append(
            PlaybookSummary(
                name=name,
                fired=len(mine),
                would_act=sum(
                    1
                    for f in mine
                    if f.decision in (ActionStatus.DRY_RUN, ActionStatus.RUNNING, "notify")
                ),
                refused=Counter(f.guardrail for f in mine if f.decision == ActionStatus.REFUSED),
                targets=Counter(f.target for f in mine),
            )
        )
    notes = []
    if cluster is None:
        notes.append(
            "no cluster given: blast radius, storm protection and rollout age were not "
            "evaluated, and pods could not be followed to their workloads"
        )
    return BacktestReport(
        start,
        end,
        len(window),
        unmatched,
        repeats,
        tuple(firings),
        tuple(summaries),
        tuple(notes),
    )
