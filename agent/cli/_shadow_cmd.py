"""``vigil shadow report``: the challenger detector configuration run in shadow mode
(``detection.shadow``) against the active one, judged on people's feedback labels.

Reads the store's shadow table and feedback (read-only, while the daemon runs) and calls
``vigil.detectors.shadow.compare_shadow`` and ``recommend``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigil.agent.cli._state import fail, state

if TYPE_CHECKING:
    from vigil.agent.store import FeedbackRow, ShadowRow
    from vigil.core import Anomaly, FeedbackLabel

app = typer.Typer(
    help="Champion/challenger: compare the detector configuration run in shadow mode "
    "(detection.shadow) with the active one.",
    no_args_is_help=True,
)


def _pick_config(rows: list[ShadowRow], role: str, configured: str | None) -> str | None:
    """The configured fingerprint, else the one of ``role`` seen last."""
    if configured is not None:
        return configured
    seen = sorted((r.seen_at, r.config) for r in rows if r.role == role)
    return seen[-1][1] if seen else None


def _labels(feedback: list[FeedbackRow]) -> dict[str, FeedbackLabel]:
    """Each finding's latest label (a person may correct themselves)."""
    return {row.finding_id: row.label for row in feedback}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f} %"


def _side(run: list[Anomaly], config: str | None) -> dict[str, Any]:
    versions = sorted({f"{a.detector} {a.detector_version}" for a in run})
    return {"config": config, "detectors": versions}


@app.command()
def report(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            "--since",
            help="Only incidents seen at or after this UTC time (e.g. 2026-11-23T12:00:00); "
            "use the time the challenger was configured. Default: everything kept.",
        ),
    ] = None,
    min_labelled: Annotated[
        int,
        typer.Option(
            "--min-labelled", min=1, help="Labelled findings the promotion rule needs at least."
        ),
    ] = 10,
) -> None:
    """Agreement of the two runs, precision of each on the labelled findings, the true
    findings the challenger missed, and a recommendation: promote or keep.

    Promote only when: at least --min-labelled labelled findings (one or more true),
    the challenger found every labelled true one, its precision is strictly higher,
    and it raised no more incidents in all. Label findings with `vigil feedback`.
    """
    from vigil.agent.wiring import open_store
    from vigil.core import VigilError
    from vigil.detectors.shadow import (
        anomaly_finding_id,
        compare_shadow,
        merge_incidents,
        recommend,
        settings_fingerprint,
    )

    cfg = state.config(reading=True)
    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    try:
        with open_store(cfg, readonly=True) as store:
            rows = store.shadow_anomalies(since=when)
            feedback = store.feedback_since(0)
    except VigilError as exc:
        fail(str(exc))
    challenger_settings = cfg.detection.challenger_settings()
    champion_cfg = _pick_config(
        rows, "champion", settings_fingerprint(cfg.detection.model_settings())
    )
    challenger_cfg = _pick_config(
        rows,
        "challenger",
        settings_fingerprint(challenger_settings) if challenger_settings is not None else None,
    )
    champion = [r for r in rows if r.role == "champion" and r.config == champion_cfg]
    challenger = [r for r in rows if r.role == "challenger" and r.config == challenger_cfg]
    if not challenger and not champion:
        fail(
            "no shadow-mode anomalies in the store for these configurations: set "
            "detection.shadow (the challenger's settings) and run the agent for a while"
        )
    given = _labels(feedback)
    # The champion's incidents are its findings (what people saw and labelled); the
    # challenger's are its runs less than resolve_after apart, as findings are kept.
    gap = timedelta(seconds=cfg.detection.resolve_after)
    by_finding: dict[str, list[Anomaly]] = {}
    loose: list[Anomaly] = []
    for r in champion:
        if r.finding_id is None:
            loose.append(r.anomaly)
        else:
            by_finding.setdefault(r.finding_id, []).append(r.anomaly)
    ours: list[tuple[Anomaly, str | None]] = [
        (merge_incidents(runs, timedelta.max)[0][0], fid) for fid, runs in by_finding.items()
    ]
    ours += [(a, None) for a, _ in merge_incidents(loose, gap)]
    theirs = [a for a, _ in merge_incidents([r.anomaly for r in challenger], gap)]
    labels = {
        anomaly_finding_id(a): given[fid] for a, fid in ours if fid is not None and fid in given
    }
    finding_of = {anomaly_finding_id(a): fid for a, fid in ours if fid is not None}
    c = compare_shadow([a for a, _ in ours], theirs, labels)
    verdict = recommend(c, min_labelled=min_labelled)
    missed = [
        {
            "finding_id": finding_of.get(anomaly_finding_id(a)),
            "series": a.series,
            "start": a.start.isoformat(),
            "what": a.summary(),
        }
        for a in c.missed_true
    ]
    data: dict[str, Any] = {
        "since": when.isoformat() if when else None,
        "champion": {
            **_side([r.anomaly for r in champion], champion_cfg),
            "incidents": c.champion,
            "judged": c.champion_judged,
            "precision": c.champion_precision,
        },
        "challenger": {
            **_side([r.anomaly for r in challenger], challenger_cfg),
            "incidents": c.challenger,
            "judged": c.challenger_judged,
            "precision": c.challenger_precision,
            "only_challenger": c.challenger_only,
        },
        "agreement": c.agreement,
        "matched": c.matched,
        "labelled": c.labelled,
        "labelled_true": c.true_labelled,
        "missed_true": missed,
        "recommendation": verdict.verdict,
        "reason": verdict.reason,
        "min_labelled": min_labelled,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    lines = [
        f"Shadow report{f' since {when:%Y-%m-%d %H:%M} UTC' if when else ''}",
        f"  champion   config {champion_cfg}: {c.champion} incidents "
        f"({', '.join(data['champion']['detectors']) or 'no detector seen'})",
        f"  challenger config {challenger_cfg}: {c.challenger} incidents "
        f"({', '.join(data['challenger']['detectors']) or 'no detector seen'})",
        f"Agreement: {_pct(c.agreement)} ({c.matched} champion incidents also found by the "
        f"challenger; {c.challenger_only} found by the challenger alone)",
        f"Labelled findings: {c.labelled} ({c.true_labelled} true, "
        f"{c.labelled - c.true_labelled} false)",
        f"Precision on labelled: champion {_pct(c.champion_precision)} "
        f"({c.champion_judged} judged), challenger {_pct(c.challenger_precision)} "
        f"({c.challenger_judged} judged)",
        f"True findings the challenger missed: {len(missed) or 'none'}",
        *(f"  {m['finding_id'] or '-'}  {m['what']}  since {m['start']}" for m in missed),
        f"Recommendation: {verdict.verdict.upper()}: {verdict.reason}",
    ]
    typer.echo("\n".join(lines))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="shadow")
