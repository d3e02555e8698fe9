"""Champion/challenger: compare a candidate detector configuration with the active one.

The agent runs a second ``DetectionEngine`` (the challenger) in shadow beside the
active one (the champion) on the same ticks, keeps both lists of anomalies, and calls
``compare_shadow`` with the feedback labels people gave to the champion's findings.
A change of detector is promoted on this evidence. ``sensitivity_from_feedback`` turns
a series' labels into the factor for ``DetectionEngine.set_sensitivity``. Pure
functions over the values given to them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from vigil.core import Anomaly, FeedbackLabel, FindingKind, finding_id

if TYPE_CHECKING:
    from vigil.detectors.settings import DetectionSettings

__all__ = [
    "Recommendation",
    "SeriesSensitivity",
    "ShadowComparison",
    "anomaly_finding_id",
    "compare_shadow",
    "latest_labels",
    "merge_incidents",
    "recommend",
    "sensitivity_from_feedback",
    "sensitivity_table",
    "settings_fingerprint",
]


def settings_fingerprint(settings: DetectionSettings) -> str:
    """A short stable id of a detector configuration (12 hex digits of its JSON's SHA-256),
    stored with each shadow-mode anomaly so runs of different configurations never mix.
    Only the detection model's own fields count (not an agent's queries or the like)."""
    from vigil.detectors.settings import DetectionSettings

    text = settings.model_dump_json(include=set(DetectionSettings.model_fields))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def anomaly_finding_id(anomaly: Anomaly) -> str:
    """The id the agent gives the finding of ``anomaly`` (kind, series, start)."""
    return finding_id(FindingKind.ANOMALY, anomaly.series, anomaly.start)


def _incidents(run: Sequence[Anomaly]) -> list[Anomaly]:
    """One anomaly per incident: a run re-reported on later ticks keeps its start."""
    latest: dict[tuple[str, datetime], Anomaly] = {}
    for a in run:
        key = (a.series, a.start)
        if key not in latest or a.end > latest[key].end:
            latest[key] = a
    return list(latest.values())


def merge_incidents(
    run: Sequence[Anomaly], gap: timedelta
) -> list[tuple[Anomaly, tuple[int, ...]]]:
    """One anomaly per incident as people see it: runs on one series less than ``gap``
    apart are one incident (the agent keeps them as one finding for ``resolve_after``).

    Returns each incident (start of its first run, end of its last, highest score and
    severity, the latest run's value and range) with the indices of the runs in it.
    """
    order = sorted(range(len(run)), key=lambda i: (run[i].series, run[i].start, run[i].end))
    out: list[tuple[Anomaly, tuple[int, ...]]] = []
    current: Anomaly | None = None
    members: list[int] = []
    for i in order:
        a = run[i]
        if current is not None and a.series == current.series and a.start - current.end <= gap:
            latest = a if a.end >= current.end else current
            current = replace(
                latest,
                start=min(current.start, a.start),
                end=max(current.end, a.end),
                score=max(current.score, a.score),
                severity=a.severity if a.severity.at_least(current.severity) else current.severity,
            )
            members.append(i)
            continue
        if current is not None:
            out.append((current, tuple(members)))
        current, members = a, [i]
    if current is not None:
        out.append((current, tuple(members)))
    return out


def _overlap(a: Anomaly, b: Anomaly) -> bool:
    return a.series == b.series and a.start <= b.end and b.start <= a.end


@dataclass(frozen=True)
class ShadowComparison:
    """Agreement of the two runs and their precision on the labelled findings.

    Anomalies re-reported on later ticks count once (one incident per series and
    start). ``agreement`` is the share of incidents, of both runs together, that the
    other run also found (1.0 when both are empty). Precision is ``None`` when a run
    has no labelled anomaly to judge.
    """

    champion: int
    challenger: int
    matched: int
    agreement: float
    labelled: int
    champion_precision: float | None
    challenger_precision: float | None
    challenger_missed_true: int
    true_labelled: int = 0
    champion_judged: int = 0
    challenger_judged: int = 0
    challenger_only: int = 0
    missed_true: tuple[Anomaly, ...] = ()

    def summary(self) -> str:
        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v * 100:.0f} %"

        return (
            f"agreement {self.agreement * 100:.0f} % ({self.matched} shared of "
            f"{self.champion} champion / {self.challenger} challenger); precision on "
            f"{self.labelled} labelled: champion {pct(self.champion_precision)}, "
            f"challenger {pct(self.challenger_precision)}; challenger missed "
            f"{self.challenger_missed_true} true positives"
        )


def compare_shadow(
    champion: Sequence[Anomaly],
    challenger: Sequence[Anomaly],
    labels: Mapping[str, FeedbackLabel],
) -> ShadowComparison:
    """Compare two runs; ``labels`` maps finding ids (of champion anomalies) to labels.

    A challenger anomaly inherits the label of a labelled champion anomaly it overlaps
    (same series, overlapping time); unlabelled ones do not count for precision.
    """
    champion, challenger = _incidents(champion), _incidents(challenger)
    labelled = [
        (a, labels[anomaly_finding_id(a)]) for a in champion if anomaly_finding_id(a) in labels
    ]
    matched = sum(1 for a in champion if any(_overlap(a, b) for b in challenger))
    matched_back = sum(1 for b in challenger if any(_overlap(a, b) for a in champion))
    total = len(champion) + len(challenger)
    agreement = 1.0 if total == 0 else (matched + matched_back) / total

    def verdicts(run: Sequence[Anomaly]) -> list[bool]:
        out = []
        for a in run:
            hits = [lab for b, lab in labelled if _overlap(a, b)]
            if hits:
                out.append(FeedbackLabel.TRUE_POSITIVE in hits)
        return out

    def precision(judged: list[bool]) -> float | None:
        return None if not judged else sum(judged) / len(judged)

    missed = tuple(
        a
        for a, lab in labelled
        if lab is FeedbackLabel.TRUE_POSITIVE and not any(_overlap(a, b) for b in challenger)
    )
    champion_judged, challenger_judged = verdicts(champion), verdicts(challenger)
    return ShadowComparison(
        champion=len(champion),
        challenger=len(challenger),
        matched=matched,
        agreement=agreement,
        labelled=len(labelled),
        champion_precision=precision(champion_judged),
        challenger_precision=precision(challenger_judged),
        challenger_missed_true=len(missed),
        true_labelled=sum(1 for _, lab in labelled if lab is FeedbackLabel.TRUE_POSITIVE),
        champion_judged=len(champion_judged),
        challenger_judged=len(challenger_judged),
        challenger_only=len(challenger) - matched_back,
        missed_true=missed,
    )


@dataclass(frozen=True)
class Recommendation:
    """``promote`` the challenger or ``keep`` the champion, and why."""

    verdict: Literal["promote", "keep"]
    reason: str


def recommend(comparison: ShadowComparison, *, min_labelled: int = 10) -> Recommendation:
    """The evidence rule: promote only when every condition holds.

    1. at least ``min_labelled`` of the champion's incidents are labelled, one or more
       of them true (otherwise the challenger's recall cannot be checked);
    2. the challenger found every labelled true incident;
    3. its precision on the labelled incidents is strictly higher than the champion's;
    4. it raised no more incidents than the champion in all (its own extra incidents
       have no findings, hence no labels, so they could only hide false alarms).
    """
    c = comparison
    if min_labelled < 1:
        raise ValueError(f"min_labelled must be >= 1, got {min_labelled}")

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v * 100:.0f} %"

    if c.labelled < min_labelled:
        return Recommendation(
            "keep",
            f"not enough evidence: {c.labelled} labelled findings, the rule needs "
            f"{min_labelled} (label findings with `vigil feedback`)",
        )
    if c.true_labelled == 0:
        return Recommendation("keep", "no labelled true finding to check the challenger's recall")
    if c.challenger_missed_true:
        return Recommendation(
            "keep",
            f"the challenger missed {c.challenger_missed_true} of {c.true_labelled} "
            "labelled true findings",
        )
    cp, hp = c.champion_precision or 0.0, c.challenger_precision or 0.0
    if hp <= cp:
        return Recommendation(
            "keep",
            f"the challenger is not more precise ({pct(c.challenger_precision)} vs "
            f"{pct(c.champion_precision)})",
        )
    if c.challenger > c.champion:
        return Recommendation(
            "keep",
            f"the challenger raised more incidents ({c.challenger} vs {c.champion}); "
            f"{c.challenger_only} of them have no label to judge them by",
        )
    return Recommendation(
        "promote",
        f"on {c.labelled} labelled findings the challenger is more precise "
        f"({pct(c.challenger_precision)} vs {pct(c.champion_precision)}), found all "
        f"{c.true_labelled} true ones and raised no more incidents ({c.challenger} vs "
        f"{c.champion})",
    )


def sensitivity_from_feedback(
    labels: Sequence[FeedbackLabel],
    *,
    fp_factor: float = 0.8,
    tp_factor: float = 1.05,
    bounds: tuple[float, float] = (0.25, 2.0),
) -> float:
    """A series' sensitivity from its feedback: each false positive × ``fp_factor``,
    each true positive × ``tp_factor``, clamped to ``bounds``."""
    if not (0 < fp_factor <= 1 <= tp_factor):
        raise ValueError(f"need 0 < fp_factor <= 1 <= tp_factor, got {fp_factor} and {tp_factor}")
    factor = 1.0
    for label in labels:
        factor *= fp_factor if FeedbackLabel(label) is FeedbackLabel.FALSE_POSITIVE else tp_factor
    low, high = bounds
    return min(max(factor, low), high)


def latest_labels(
    rows: Sequence[tuple[str, str, FeedbackLabel]],
) -> dict[str, list[FeedbackLabel]]:
    """Series → its findings' labels, from ``(finding_id, series, label)`` rows in the
    order given: a finding labelled again counts once, with its latest label (people
    correct themselves)."""
    per_finding: dict[str, tuple[str, FeedbackLabel]] = {}
    for finding, series, label in rows:
        per_finding.pop(finding, None)  # re-insert: a correction moves to the end
        per_finding[finding] = (series, FeedbackLabel(label))
    out: dict[str, list[FeedbackLabel]] = {}
    for series, label in per_finding.values():
        out.setdefault(series, []).append(label)
    return out


@dataclass(frozen=True)
class SeriesSensitivity:
    """A series' sensitivity factor and the labels behind it."""

    series: str
    factor: float
    false_positives: int
    true_positives: int


def sensitivity_table(
    labels: Mapping[str, Sequence[FeedbackLabel]],
) -> list[SeriesSensitivity]:
    """The series whose feedback moves their sensitivity off 1.0, least sensitive first."""
    out = []
    for series, given in labels.items():
        factor = sensitivity_from_feedback(given)
        if factor != 1.0:
            fps = sum(1 for lab in given if FeedbackLabel(lab) is FeedbackLabel.FALSE_POSITIVE)
            out.append(SeriesSensitivity(series, factor, fps, len(given) - fps))
    return sorted(out, key=lambda s: (s.factor, s.series))
