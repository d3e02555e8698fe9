"""``vigil demo``: the simulated cluster, the whole loop at fast-forward, a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigil.agent.cli._state import fail, state


def demo(
    seed: Annotated[int | None, typer.Option(help="Random seed (default: sim.seed, 7).")] = None,
    days: Annotated[
        float | None, typer.Option(min=0.5, max=14, help="Simulated days (default: sim.days, 3).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the store, notifications and reports.")
    ] = Path("vigil-demo"),
    tick: Annotated[
        float,
        typer.Option(
            min=30,
            help="Seconds of simulated time between agent ticks (each tick scores every "
            "point since the last, so a longer tick only batches the same data).",
        ),
    ] = 600.0,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Write report.html.")] = True,
) -> None:
    """Run vigil on a simulated cluster with injected incidents and print a report.

    Nothing is needed but vigil: the twin stands in for Prometheus and Kubernetes. The
    same seed is replayed with vigil off to show what it changed. The store is left in
    OUT/vigil.db for `vigil status` and `vigil ask`.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from vigil.agent.demo import render_text, run_demo
    from vigil.core import VigilError

    cfg = state.config()
    sim = cfg.sim.model_copy(
        update={k: v for k, v in (("seed", seed), ("days", days)) if v is not None}
    )
    cfg = cfg.model_copy(update={"sim": sim})
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]vigil demo[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("building the twin", total=1.0)

        def progress(fraction: float, what: str) -> None:
            bar.update(task, completed=fraction, description=what)

        try:
            result = run_demo(cfg, out, tick_seconds=tick, progress=progress, html=html)
        except (VigilError, ValueError) as exc:
            fail(str(exc))
    typer.echo(render_text(result))
    if result.html_path is not None:
        typer.echo(f"HTML report: {result.html_path.resolve()}")


def register(app: typer.Typer) -> None:
    app.command()(demo)
