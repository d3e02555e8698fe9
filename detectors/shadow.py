"""Champion/challenger: compare a candidate detector configuration with the active one.

The agent runs a second ``DetectionEngine`` (the challenger) in shadow beside the
active one (the champion) on the same ticks, keeps both lists of anomalies, and calls
``compare_shadow`` with the feedback labels people gave to the champion's findings.
A change of detector is promoted on this evidence. ``sensitivity_from_feedback`` turns
a series' labels into the factor for ``DetectionEngine.set_sensitivity``. Pure
functions over the values given to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from vigil.core import Anomaly, FeedbackLabel, FindingKind, finding_id

__all__ = ["ShadowComparison", "anomaly_finding_id", "compare_shadow", "sensitivity_from_feedback"]


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

    def precision(run: Sequence[Anomaly]) -> float | None:
        verdicts = []
        for a in run:
            hits = [lab for b, lab in labelled if _overlap(a, b)]
            if hits:
                verdicts.append(FeedbackLabel.TRUE_POSITIVE in hits)
        return None if not verdicts else sum(verdicts) / len(verdicts)

    missed = sum(
        1
        for a, lab in labelled
        if lab is FeedbackLabel.TRUE_POSITIVE and not any(_overlap(a, b) for b in challenger)
    )
    return ShadowComparison(
        champion=len(champion),
        challenger=len(challenger),
        matched=matched,
        agreement=agreement,
        labelled=len(labelled),
        champion_precision=precision(champion),
        challenger_precision=precision(challenger),
        challenger_missed_true=missed,
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
