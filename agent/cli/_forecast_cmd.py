"""``vigil forecast WORKLOAD``: a scaled workload's demand history, forecast band, next
peak and the replicas planned for it, in the terminal (and optionally as a PNG)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigil.agent.cli._state import fail, state

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.detectors.forecast_view import ForecastView
    from vigil.detectors.scaling_settings import ScalingWorkload

__all__ = ["forecast", "register"]

_PROMQL_CHARS = set("({[")


def _workload(cfg: Config, name: str) -> ScalingWorkload | None:
    """The configured workload named ``namespace/name`` or ``name`` (when unique)."""
    ws = cfg.scaling.workloads
    exact = [w for w in ws if w.key == name]
    if exact:
        return exact[0]
    by_name = [w for w in ws if w.name == name]
    if len(by_name) > 1:
        fail(
            f"{name!r} names {len(by_name)} workloads: "
            + ", ".join(w.key for w in by_name)
            + "; give namespace/name"
        )
    return by_name[0] if by_name else None


def _planned(cfg: Config, w: ScalingWorkload, peak: float, capacity: float | None) -> str:
    from vigil.detectors.scaling import replicas_for_peak

    s = w.settings(cfg.scaling.defaults)
    capacity = s.capacity_per_pod or capacity
    if not capacity:
        return "replicas planned: unknown until capacity per pod is learned"
    pods = replicas_for_peak(peak, capacity, s)
    return (
        f"replicas planned for that peak: {pods} ({capacity:.4g} per pod at "
        f"{s.forecast_utilisation:.0%}, min {s.min_replicas}, max {s.max_replicas})"
    )


def _stored_view(cfg: Config, w: ScalingWorkload) -> tuple[ForecastView, float | None]:
    """The forecast the agent stored last, with no history (read from the store only)."""
    import numpy as np

    from vigil.agent.scaling_stage import DEMAND_METRIC, demand_labels, workload_overview
    from vigil.agent.wiring import open_store
    from vigil.core import Series, VigilError
    from vigil.detectors.forecast_view import ForecastView

    try:
        with open_store(cfg, readonly=True) as store:
            row = workload_overview(w, cfg.scaling, store)
    except VigilError as exc:
        fail(str(exc))
    fc, peak_at = row.forecast, row.peak_at
    if fc is None or peak_at is None or row.peak_mean is None or row.peak_upper is None:
        fail(
            f"no stored forecast of {w.key} in {cfg.store.path}: the agent "
            "stores one every scaling.forecast_every_s once the workload has history"
        )
    view = ForecastView(
        history=Series(DEMAND_METRIC, demand_labels(w), np.empty(0), np.empty(0)),
        forecast=fc,
        upper_q=max(fc.quantiles),
        peak_at=peak_at.timestamp(),
        peak_mean=row.peak_mean,
        peak_upper=row.peak_upper,
    )
    return view, row.capacity


def _live_view(cfg: Config, query: str, horizon: float, history: float) -> ForecastView:
    from vigil.agent.wiring import prometheus_source
    from vigil.core import VigilError, WarmingUp
    from vigil.detectors.forecast_view import forecast_view

    now = datetime.now(UTC)
    try:
        found = prometheus_source(cfg).query_range(
            query, now - timedelta(seconds=history), now, timedelta(seconds=cfg.prometheus.step)
        )
    except VigilError as exc:
        fail(str(exc))
    if len(found) != 1:
        fail(f"the query gave {len(found)} series; narrow it to one (e.g. sum(...)): {query}")
    try:
        return forecast_view(
            found[0], horizon_s=horizon, history_s=history, quantiles=cfg.scaling.quantiles
        )
    except WarmingUp as exc:
        fail(str(exc))


def _png(view: ForecastView, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def when(ts: np.ndarray) -> np.ndarray:
        return (ts * 1000).astype("datetime64[ms]")

    fig, ax = plt.subplots(figsize=(10, 4))
    h, f = view.history, view.forecast
    if len(h):
        ax.plot(when(h.timestamps), h.values, label="history", lw=1)
    ax.plot(when(f.timestamps), f.mean, label="forecast (mean)", lw=1)
    low_q = min(f.quantiles)
    band = f"band p{round(low_q * 100)}–p{round(view.upper_q * 100)}"
    ax.fill_between(when(f.timestamps), f.quantile(low_q), f.quantile(view.upper_q), alpha=0.3,
                    label=band)  # fmt: skip
    ax.set_title(title)
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def forecast(
    workload: Annotated[
        str,
        typer.Argument(
            help="A workload of scaling.workloads (namespace/name, or name when unique); "
            "or a PromQL query giving one series."
        ),
    ],
    horizon: Annotated[
        float | None,
        typer.Option(help="Seconds ahead (default: scaling.forecast_horizon_s, 3 h)."),
    ] = None,
    history: Annotated[float, typer.Option(help="Seconds of history shown and fitted.")] = 7
    * 86400.0,
    stored: Annotated[
        bool,
        typer.Option(
            "--stored",
            help="Show the forecast the agent stored last (from the store; no Prometheus), "
            "e.g. after `vigil demo`.",
        ),
    ] = False,
    png: Annotated[Path | None, typer.Option(help="Also save a plot here.")] = None,
) -> None:
    """Show a workload's demand history, forecast band, next peak and planned replicas."""
    from vigil.detectors.engine import guess_unit

    cfg = state.config(reading=True)
    target = _workload(cfg, workload)
    if target is None and not _PROMQL_CHARS & set(workload):
        known = ", ".join(w.key for w in cfg.scaling.workloads)
        fail(
            f"no workload {workload!r} in scaling.workloads"
            + (f" (configured: {known})" if known else " (none configured)")
            + "; add it to the config, or pass a PromQL query giving one series"
        )
    capacity = None
    if target is not None and stored:
        view, capacity = _stored_view(cfg, target)
    elif stored:
        fail("--stored needs a workload of scaling.workloads, not a query")
    else:
        query = target.demand_query if target is not None else workload
        view = _live_view(cfg, query, horizon or cfg.scaling.forecast_horizon_s, history)
    name = f"{target.key} demand" if target is not None else workload
    typer.echo(view.text(unit="" if target is not None else guess_unit(view.history.metric)))
    if target is not None:
        typer.echo(_planned(cfg, target, view.peak_upper, capacity))
    if png is not None:
        _png(view, png, name)
        typer.echo(f"plot: {png}")


def register(app: typer.Typer) -> None:
    app.command()(forecast)
