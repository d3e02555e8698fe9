"""``vigil run`` (the daemon, in the foreground) and ``vigil status`` (what it has done)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from vigil.agent.cli._state import fail, state


def _setup_logging() -> None:
    from vigil.agent.logs import configure_logging

    cfg = state.config()
    configure_logging(state.log_level or cfg.logging.level, state.log_format or cfg.logging.format)


def run(
    once: Annotated[
        bool, typer.Option("--once", help="Run one tick and exit (for cron jobs and checks).")
    ] = False,
    max_ticks: Annotated[
        int | None, typer.Option("--max-ticks", min=1, help="Exit after this many ticks.")
    ] = None,
    kubernetes: Annotated[
        bool,
        typer.Option(
            "--kubernetes/--no-kubernetes",
            help="Act through the Kubernetes API (default). --no-kubernetes detects and "
            "notifies only: playbooks are matched and journaled, nothing is changed.",
        ),
    ] = True,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve /healthz, /metrics, /alertmanager."),
    ] = True,
) -> None:
    """Run the agent in the foreground: a tick every `agent.interval` seconds until SIGTERM.

    Dry-run unless `guardrails.dry_run: false`. Each tick is recorded in the store; a
    failing stage (Prometheus down, bad query) is recorded and the loop goes on. Beside
    the loop: the HTTP server, the notification delivery thread and, with
    `leader.enabled`, leader election (only the leader ticks).
    """
    import logging

    from vigil.agent.cluster_watch import ClusterWatchStage
    from vigil.agent.daemon import DaemonServices, approval_links, build_notify
    from vigil.agent.metrics import Metrics
    from vigil.agent.playbook_stage import PlaybookStage, build_playbook_engine
    from vigil.agent.scheduler import Job, Runner
    from vigil.agent.wiring import (
        build_loop,
        challenger_engine,
        detection_engine,
        open_store,
        prometheus_source,
        refit_job,
    )
    from vigil.core import SystemClock, VigilError

    _setup_logging()
    cfg = state.config()
    log = logging.getLogger("vigil.run")
    clock = SystemClock()
    try:
        store = open_store(cfg)
    except VigilError as exc:
        fail(str(exc), code=2)
    try:
        source = prometheus_source(cfg)
        cluster = None
        if kubernetes:
            from vigil.actions.kubernetes import KubernetesCluster

            cluster = KubernetesCluster.from_settings(cfg.kubernetes)
        metrics = Metrics(outbox_depth=store.outbox_depth, clock=clock)
        server = cfg.server
        links = approval_links(server, public_url=server.public_url, ttl=server.approval_ttl)
        notify, worker = build_notify(
            cfg,
            store,
            clock,
            routes=cfg.notify.routes,
            links=links,
            metrics=metrics,
            base_delay=cfg.notify.base_delay,
            max_delay=cfg.notify.max_delay,
        )
        engine = build_playbook_engine(cfg, store=store, cluster=cluster, metrics=source)
        # node conditions, recoveries and OOM kills become findings the playbooks act on
        watch = [ClusterWatchStage(cluster, store)] if cluster is not None else []
        detector, challenger = detection_engine(cfg), challenger_engine(cfg)
        loop = build_loop(
            cfg,
            source=source,
            store=store,
            clock=clock,
            engine=detector,
            extra_stages=[*watch, PlaybookStage(engine, store, clock), notify],
            cluster=cluster,
            challenger=challenger,
            refit_in_tick=False,
        )
        refits = Job("refit", refit_job([detector, challenger], clock), cfg.detection.refit_every)
        services = DaemonServices(
            cfg,
            store,
            clock,
            metrics,
            worker=worker,
            links=links,
            poll_interval=cfg.notify.poll_interval,
            request_timeout=server.request_timeout,
            ready_max_age=server.ready_max_age,
            identity=cfg.leader.identity,
            renew_deadline=cfg.leader.renew_deadline,
        )
    except VigilError as exc:
        store.close()
        fail(str(exc), code=2)
    log.info(
        "vigil running: prometheus %s, store %s, every %.0f s, %s%s",
        cfg.prometheus.url,
        cfg.store.path,
        cfg.agent.interval,
        "dry-run" if cfg.guardrails.dry_run else "acting",
        "" if cluster is not None else ", no Kubernetes (nothing is changed)",
    )
    try:
        if serve:
            services.start()
        tick = services.gated(loop.tick)
        if once:
            outcome = tick()
            errors = outcome.errors if outcome is not None else ()
            for err in errors:
                log.warning("%s", err)
            raise SystemExit(1 if errors else 0)
        Runner(tick, cfg.agent.interval, jobs=[refits]).run(max_ticks=max_ticks)
    finally:
        if serve:
            services.stop()
        store.close()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ticks: Annotated[int, typer.Option("--ticks", min=1, max=200, help="Ticks to show.")] = 5,
) -> None:
    """Show the last ticks, open findings, pending approvals, the outbox depth and the
    series whose sensitivity feedback has changed."""
    from rich.console import Console
    from rich.table import Table

    from vigil.agent.scaling_stage import scaling_overview
    from vigil.agent.wiring import open_store
    from vigil.core import ActionStatus, VigilError
    from vigil.detectors.shadow import latest_labels, sensitivity_table

    cfg = state.config(reading=True)
    try:
        store = open_store(cfg, readonly=True)
    except VigilError as exc:
        fail(str(exc))
    with store:
        recent = store.recent_ticks(ticks)
        findings = store.open_findings(limit=20)
        pending = store.journal_list(statuses=[ActionStatus.PENDING_APPROVAL], limit=20)
        depth = store.outbox_depth()
        scaled = scaling_overview(cfg.scaling, store) if cfg.scaling.workloads else []
        feedback = [(r.finding_id, r.series, r.label) for r in store.feedback_since(0)]
    tuned = sensitivity_table(latest_labels(feedback))
    if as_json:
        data: dict[str, Any] = {
            "ticks": [
                {
                    "id": t.id,
                    "started_at": t.started_at.isoformat(),
                    "ended_at": t.ended_at.isoformat() if t.ended_at else None,
                    "durations": dict(t.durations),
                    "errors": list(t.errors),
                }
                for t in recent
            ],
            "open_findings": [
                {
                    "id": f.id,
                    "severity": str(f.severity),
                    "title": f.title,
                    "started_at": f.started_at.isoformat(),
                }
                for f in findings
            ],
            "pending_approvals": [
                {
                    "id": e.id,
                    "playbook": e.playbook,
                    "action": str(e.action),
                    "target": str(e.target),
                }
                for e in pending
            ],
            "outbox_depth": depth,
            "scaling": [o.as_dict() for o in scaled],
            "sensitivity": [
                {
                    "series": tune.series,
                    "factor": round(tune.factor, 4),
                    "false_positives": tune.false_positives,
                    "true_positives": tune.true_positives,
                }
                for tune in tuned
            ],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    console = Console()
    table = Table(title=f"Last {len(recent)} ticks", title_justify="left")
    for col in ("tick", "started (UTC)", "took", "errors"):
        table.add_column(col)
    for t in recent:
        took = f"{sum(t.durations.values()):.2f} s" if t.durations else "-"
        table.add_row(str(t.id), _when(t.started_at), took, "; ".join(t.errors) or "none")
    console.print(table if recent else "No ticks yet: start the agent with `vigil run`.")
    ftable = Table(title=f"Open findings ({len(findings)})", title_justify="left")
    for col in ("id", "severity", "since (UTC)", "what"):
        ftable.add_column(col)
    for f in findings:
        ftable.add_row(f.id, str(f.severity), _when(f.started_at), f.title)
    console.print(ftable if findings else "Open findings: none.")
    if pending:
        ptable = Table(title="Pending approvals", title_justify="left")
        for col in ("id", "playbook", "action", "target"):
            ptable.add_column(col)
        for e in pending:
            ptable.add_row(str(e.id), e.playbook, str(e.action), str(e.target))
        console.print(ptable)
    else:
        console.print("Pending approvals: none.")
    console.print(f"Outbox: {depth} message(s) waiting.")
    if scaled:
        stable = Table(
            title="Predictive scaling (next peak of the expected demand, its upper band, "
            "and the pods planned for it)",
            title_justify="left",
        )
        for col in ("workload", "next peak (UTC)", "demand", "pods", "last decision"):
            stable.add_column(col)
        for o in scaled:
            last = "none yet"
            if o.last_decision and o.last_decision_at:
                last = f"{o.last_decision} at {_when(o.last_decision_at)}"
            stable.add_row(
                o.workload,
                _when(o.peak_at) if o.peak_at else "no forecast yet",
                f"{o.peak_upper:.4g}" if o.peak_upper is not None else "-",
                str(o.peak_replicas) if o.peak_replicas is not None else "-",
                last,
            )
        console.print(stable)
    if tuned:
        stable = Table(title="Sensitivity from feedback", title_justify="left")
        for col in ("series", "sensitivity", "false +", "true +"):
            stable.add_column(col)
        for tune in tuned:
            stable.add_row(
                tune.series,
                f"×{tune.factor:.2f}",
                str(tune.false_positives),
                str(tune.true_positives),
            )
        console.print(stable)
    else:
        console.print("Sensitivity: every series at ×1.00 (no feedback moved it).")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(status)
