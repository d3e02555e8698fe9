"""``vigil bench nab|scaling`` and ``vigil feedback``: the detection and scaling
benchmarks, and labels on findings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from vigil.agent.cli._state import fail, state

bench_app = typer.Typer(
    help="Benchmarks: NAB anomaly detection, predictive scaling replay against the HPA.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@bench_app.command()
def nab(
    data: Annotated[Path, typer.Option("--data", help="NAB data folder (category subfolders).")],
    out: Annotated[Path, typer.Option("--out", help="Results folder (NAB's layout).")],
    detector: Annotated[
        str | None, typer.Option(help="One member instead of the ensemble (e.g. seasonal).")
    ] = None,
    name: Annotated[str, typer.Option(help="Detector name in the results layout.")] = "vigil",
) -> None:
    """Score every CSV of a NAB-layout folder causally with one configuration and write
    <out>/<NAME>/<category>/<NAME>_<file>.csv; score it with NAB's scorer."""
    from rich.progress import Progress

    from vigil.core import VigilError
    from vigil.detectors.nab import run_nab

    if not data.is_dir():
        fail(f"--data {data}: not a folder of NAB categories", code=2)
    with Progress(transient=True) as bar:
        task = bar.add_task("scoring", total=None)

        def progress(path: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=path[-48:])

        try:
            results = run_nab(data, out, name=name, detector=detector, progress=progress)
        except (VigilError, ValueError) as exc:
            fail(str(exc))
    typer.echo(f"scored {len(results)} files into {out / name}")


@bench_app.command()
def scaling(  # noqa: PLR0917 - typer maps parameters to options
    traces: Annotated[list[Path], typer.Argument(help="Demand traces (timestamp,value CSV).")],
    capacity: Annotated[
        float | None, typer.Option(help="Demand one pod serves (default: p95 needs 10 pods).")
    ] = None,
    lag: Annotated[float, typer.Option(help="Pod start-up lag, seconds.")] = 60.0,
    out: Annotated[
        Path | None, typer.Option(help="Write vigil's decisions (timestamp,replicas) here.")
    ] = None,
    interpolate: Annotated[
        bool, typer.Option(help="Interpolate demand linearly between trace points.")
    ] = False,
    delay: Annotated[float, typer.Option(help="Metrics observed this late, seconds.")] = 30.0,
    floor: Annotated[
        bool, typer.Option(help="Also run vigil raising an HPA's minReplicas floor.")
    ] = False,
) -> None:
    """Replay demand traces through vigil's predictive policy and an emulated Kubernetes
    HPA v2; print under-provisioned time, replica-hours and scaling actions for both."""
    from vigil.core import VigilError
    from vigil.detectors.replay import format_report, replay_scaling

    if out is not None and len(traces) > 1:
        fail("--out takes one trace; replay traces one at a time to keep their decisions", code=2)
    reports = []
    for trace in traces:
        try:
            reports.append(
                replay_scaling(
                    trace, capacity, lag, out, interpolate, delay_s=delay, with_floor=floor
                )
            )
        except (VigilError, ValueError, OSError) as exc:
            fail(f"{trace}: {exc}")
    typer.echo(format_report(reports))


def feedback(
    finding_id: Annotated[str, typer.Argument(help="Finding id (f-…), from `vigil status`.")],
    false_positive: Annotated[
        bool, typer.Option("--false-positive", help="It was not a real problem.")
    ] = False,
    true_positive: Annotated[
        bool, typer.Option("--true-positive", help="It was a real problem.")
    ] = False,
) -> None:
    """Label a finding; the series' sensitivity adapts from its labels (shown here and
    applied by the running agent at its next tick)."""
    from vigil.agent.wiring import open_store
    from vigil.core import FeedbackLabel, VigilError
    from vigil.detectors.shadow import latest_labels, sensitivity_from_feedback

    if false_positive == true_positive:
        fail("give exactly one of --false-positive or --true-positive", code=2)
    label = FeedbackLabel.FALSE_POSITIVE if false_positive else FeedbackLabel.TRUE_POSITIVE
    try:
        with open_store(state.config()) as store:
            finding = store.get_finding(finding_id)
            store.record_feedback(finding_id, label, at=datetime.now(UTC))
            # as the agent and `vigil status` count them: a relabelled finding counts once
            rows = [
                (r.finding_id, r.series, r.label)
                for r in store.feedback_since(0)
                if r.series == finding.subject
            ]
    except VigilError as exc:
        fail(str(exc))
    labels = latest_labels(rows).get(finding.subject, [])
    factor = sensitivity_from_feedback(labels)
    typer.echo(
        f"{finding_id} labelled {label}; {finding.subject} now has {len(labels)} labelled "
        "finding(s), "
        f"sensitivity ×{factor:.2f}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
    app.command()(feedback)
