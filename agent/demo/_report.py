"""The demo's report: a text summary for the terminal and an HTML page with plots.

``render_text`` is plain text (the closing note and tests read it); ``write_html``
draws with matplotlib (imported lazily, Agg backend) from the twin's own metrics.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.core import MUTATING_ACTIONS, ActionStatus, to_timestamp

if TYPE_CHECKING:
    from vigil.agent.demo import DemoResult
    from vigil.agent.demo._scoring import DemoScore
    from vigil.sim import Twin

__all__ = ["plot_data", "render_text", "write_html"]


def _m(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} min"


def _pct_change(new: float, old: float) -> str:
    if old == 0:
        return "n/a"
    return f"{(new - old) / old * 100:+.0f} %"


def _predictive_lines(extras: dict[str, Any]) -> list[str]:
    """Predictive (vigil's forecast-driven floor/replicas + the HPA) vs reactive (the HPA
    alone, the replay with vigil off) on the services vigil scales."""
    if not extras.get("scaled"):
        return []
    v, o = extras["scaled_vigil"], extras["scaled_off"]
    return [
        "",
        f"Predictive vs reactive scaling ({len(extras['scaled'])} scaled services)"
        "  predictive  reactive    change",
        f"  under-provisioned minutes      {v['under_provisioned_minutes']:>12.0f} "
        f"{o['under_provisioned_minutes']:>9.0f}    "
        f"{_pct_change(v['under_provisioned_minutes'], o['under_provisioned_minutes'])}",
        f"  replica-hours                  {v['replica_hours']:>12.0f} "
        f"{o['replica_hours']:>9.0f}    {_pct_change(v['replica_hours'], o['replica_hours'])}",
        f"  predictive scaling actions: {extras['predictive_actions']} "
        f"(refused by guardrails: {extras['predictive_refused']})",
    ]


def render_text(result: DemoResult) -> str:
    s = result.score
    lines = [
        f"vigil demo: seed {result.seed}, {result.days:g} simulated days, "
        f"{result.ticks} ticks every {result.tick_seconds:g} s, {result.wall_seconds:.0f} s wall",
        "",
        f"Incidents: {len(s.incidents)} injected, {s.detected} detected, "
        f"{len(s.incidents) - s.detected} missed; {s.findings_total} findings "
        f"({s.findings_unmatched} not tied to an injected incident)",
        "",
        f"{'incident':<34} {'detected':<9} {'to detect':>9} {'recovery vigil':>15} "
        f"{'recovery off':>13} {'impact vigil':>13} {'impact off':>11}",
    ]
    for i in s.incidents:
        what = f"{i.kind} {i.target}"[:34]
        lines.append(
            f"{what:<34} {'yes' if i.detected else 'MISSED':<9} {_m(i.minutes_to_detect):>9} "
            f"{_m(i.recovery_minutes_vigil):>15} {_m(i.recovery_minutes_off):>13} "
            f"{i.impacted_minutes_vigil:>9.0f} min {i.impacted_minutes_off:>7.0f} min"
        )
    v, o = s.scaling_vigil, s.scaling_off
    lines += [
        "",
        "Scaling (all workloads)              with vigil    vigil off    change",
        f"  under-provisioned minutes      {v['under_provisioned_minutes']:>12.0f} "
        f"{o['under_provisioned_minutes']:>12.0f}    "
        f"{_pct_change(v['under_provisioned_minutes'], o['under_provisioned_minutes'])}",
        f"  unhealthy minutes              {v['unhealthy_minutes']:>12.0f} "
        f"{o['unhealthy_minutes']:>12.0f}    "
        f"{_pct_change(v['unhealthy_minutes'], o['unhealthy_minutes'])}",
        f"  replica-hours                  {v['replica_hours']:>12.0f} "
        f"{o['replica_hours']:>12.0f}    {_pct_change(v['replica_hours'], o['replica_hours'])}",
    ]
    lines += _predictive_lines(s.extras)
    lines += [
        "",
        f"Actions: {len(s.actions)} (people's fixes: {s.people_actions_vigil} with vigil, "
        f"{s.people_actions_off} without)",
    ]
    changes = [e for e in s.actions if e.action in MUTATING_ACTIONS]
    notes = len(s.actions) - len(changes)
    lines.append(f"  changes to the cluster: {len(changes)}; notify-only actions: {notes}")
    for e in changes:
        checks = s.verifications.get(e.id, [])
        verdict = "verified" if any(c.ok for c in checks) else ("verify failed" if checks else "-")
        lines.append(
            f"  #{e.id} {e.created_at:%a %H:%M} {e.playbook}: {e.action} {e.target} "
            f"→ {e.status} ({verdict})"
        )
    lines.append(f"Guardrail refusals: {len(s.refusals)}")
    for e in s.refusals[:20]:
        lines.append(f"  #{e.id} {e.created_at:%a %H:%M} {e.action} {e.target}: {e.reason}")
    if len(s.refusals) > 20:
        lines.append(f"  … and {len(s.refusals) - 20} more (`vigil actions --status refused`)")
    lines += [
        f"Notifications sent: {s.notifications} (to {result.notifications_path})",
        f"Tick errors: {result.tick_errors} of {result.ticks} ticks; time per stage: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items()),
        f"Store: {result.store_path}; its config: {result.out_dir / 'vigil.yaml'} "
        "(read by `vigil status`, `ask`, `forecast` run next to the default ./vigil-demo)",
        f"  try: vigil --config {result.out_dir / 'vigil.yaml'} status",
        f'       vigil --config {result.out_dir / "vigil.yaml"} ask "what happened to checkout?"',
    ]
    return "\n".join(lines)


def plot_data(
    twin: Twin, start: datetime, score: DemoScore
) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    """The series the HTML plots need, taken from the twin before it is dropped."""
    end = twin.now
    step = timedelta(minutes=5)
    services = []
    for inc in score.incidents:
        ns_name = inc.target.split("/")
        if ns_name[0] == "deployment" and len(ns_name) == 3:
            services.append((ns_name[1], ns_name[2]))
    out: dict[str, list[tuple[str, list[float], list[float]]]] = {"p99": [], "errors": []}
    for ns, name in dict.fromkeys(services):
        sel = f'namespace="{ns}",service="{name}"'
        p99 = twin.metrics.query_range(
            f"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
            f"{{{sel}}}[5m])))",
            start,
            end,
            step,
        )
        err = twin.metrics.query_range(
            f'sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) / '
            f"sum(rate(http_requests_total{{{sel}}}[5m]))",
            start,
            end,
            step,
        )
        for key, res in (("p99", p99), ("errors", err)):
            if res:
                out[key].append(
                    (f"{ns}/{name}", res[0].timestamps.tolist(), res[0].values.tolist())
                )
    return out


def _png(fig: object) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode()


def write_html(
    result: DemoResult,
    data: dict[str, list[tuple[str, list[float], list[float]]]],
    path: Path,
) -> Path:
    """Write the HTML report (plots inlined as PNG) to ``path``; also saves the main plot
    as ``main-plot.png`` beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.score
    origin = to_timestamp(result.sim_start) if result.sim_start else 0.0

    def hours(ts: list[float]) -> list[float]:
        return [(t - origin) / 3600.0 for t in ts]

    fig, axes = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    for name, ts, vals in data["p99"]:
        axes[0].plot(hours(ts), [v * 1000 for v in vals], label=name, lw=1)
    for name, ts, vals in data["errors"]:
        axes[1].plot(hours(ts), [v * 100 for v in vals], label=name, lw=1)
    for inc in s.incidents:
        if inc.injected_at is None:
            continue
        a = (to_timestamp(inc.injected_at) - origin) / 3600
        b = a + (inc.impacted_minutes_vigil or 30) / 60
        for ax in axes:
            ax.axvspan(a, b, color="tab:red", alpha=0.12)
        axes[0].annotate(
            inc.kind,
            (a, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
        )
        if inc.detected_at is not None:
            d = (to_timestamp(inc.detected_at) - origin) / 3600
            for ax in axes:
                ax.axvline(d, color="tab:orange", ls="--", lw=0.8)
    acted = [
        (to_timestamp(e.created_at) - origin) / 3600
        for e in s.actions
        if e.action in MUTATING_ACTIONS and e.status is not ActionStatus.DRY_RUN
    ]
    for ax in axes:  # a marker per change to the cluster, along the top edge
        ax.scatter(acted, [0.97] * len(acted), transform=ax.get_xaxis_transform(),
                   marker="v", s=14, color="tab:green", zorder=3)  # fmt: skip
    axes[0].set_ylabel("p99 latency (ms)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("5xx (%)")
    axes[1].set_xlabel("hours since vigil started")
    axes[0].set_title(
        "Services hit by injected incidents: red = incident, orange dashed = detected, "
        "green ▼ = vigil changed the cluster"
    )
    axes[0].legend(fontsize=7, ncol=3, loc="upper left")
    main = _png(fig)
    fig.savefig(path.with_name("main-plot.png"), dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 3.5))
    labels = [f"{i.kind}\n{i.target.split('/')[-1]}" for i in s.incidents]
    xs = range(len(labels))
    ax.bar(
        [x - 0.2 for x in xs],
        [i.impacted_minutes_vigil for i in s.incidents],
        0.4,
        label="with vigil",
    )
    ax.bar(
        [x + 0.2 for x in xs], [i.impacted_minutes_off for i in s.incidents], 0.4, label="vigil off"
    )
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("impacted minutes")
    ax.legend()
    bars = _png(fig)
    plt.close(fig)

    body = html.escape(render_text(result))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>vigil demo report</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}
pre{{background:#f6f8fa;padding:1em;overflow:auto}}</style></head>
<body><h1>vigil demo report</h1>
<h2>Incidents on the services they hit</h2><img src="data:image/png;base64,{main}" width="100%">
<h2>Impact with and without vigil</h2><img src="data:image/png;base64,{bars}" width="100%">
<h2>Summary</h2><pre>{body}</pre></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
