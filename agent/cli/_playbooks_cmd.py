"""Playbook and journal commands: ``vigil playbooks …``, ``vigil actions``,
``vigil approve``/``deny``, ``vigil act`` and ``vigil backtest``."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vigil.agent.cli._state import fail, state

playbooks_app = typer.Typer(
    help="List, validate and explain playbooks.", no_args_is_help=True, rich_markup_mode=None
)


def _entry_json(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "created_at": e.created_at.isoformat(),
        "updated_at": e.updated_at.isoformat(),
        "playbook": e.playbook,
        "action": str(e.action),
        "target": str(e.target),
        "params": dict(e.params),
        "mode": str(e.mode),
        "status": str(e.status),
        "reason": e.reason,
        "message": e.message,
        "before": dict(e.before),
        "after": dict(e.after),
    }


def _entry_line(e: Any) -> str:
    why = f" ({e.reason})" if e.reason else (f" ({e.message})" if e.message else "")
    return (
        f"#{e.id} {e.created_at:%Y-%m-%d %H:%M} {e.playbook}: {e.action} {e.target} "
        f"→ {e.status}{why}"
    )


@playbooks_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the active playbooks (built-ins plus playbooks.directories), by priority."""
    from vigil.core import VigilError
    from vigil.playbooks import list_playbooks

    try:
        books = list_playbooks(state.config().playbooks)
    except VigilError as exc:
        fail(str(exc), code=2)
    if as_json:
        rows = [{"name": b.name, "priority": b.priority, "mode": b.mode,
                 "description": b.description} for b in books]  # fmt: skip
        typer.echo(json.dumps(rows, indent=2))
        return
    for b in books:
        typer.echo(f"{b.priority:>5}  {b.name:<34} {b.mode:<8} {b.description}")


@playbooks_app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A playbook YAML file.", dir_okay=False)],
) -> None:
    """Check a playbook file; every problem is listed with file, playbook and key path."""
    from vigil.playbooks import PlaybookError, validate_playbook_file

    try:
        books = validate_playbook_file(file)
    except PlaybookError as exc:
        fail(str(exc), code=2)
    typer.echo(f"{file}: valid ({', '.join(b.name for b in books)})")


@playbooks_app.command()
def explain(name: Annotated[str, typer.Argument(help="Playbook name.")]) -> None:
    """Say in plain words when a playbook fires, what it does, how it verifies, and
    which guardrails apply."""
    from vigil.core import VigilError
    from vigil.playbooks import explain as explain_playbook

    cfg = state.config()
    try:
        typer.echo(explain_playbook(name, cfg.playbooks, cfg.guardrails))
    except VigilError as exc:
        fail(str(exc))


@playbooks_app.command()
def schema() -> None:
    """Print the JSON schema of playbook files."""
    from vigil.playbooks import playbook_schema

    typer.echo(json.dumps(playbook_schema(), indent=2, sort_keys=True))


def actions(
    status: Annotated[
        list[str] | None, typer.Option("--status", help="Only these statuses (repeatable).")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
    playbook: Annotated[str | None, typer.Option(help="Only this playbook.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows at most.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the action journal: every action, dry-run, refusal (with its reason) and
    approval, newest first."""
    from vigil.agent.wiring import open_store
    from vigil.core import ActionStatus, VigilError

    try:
        statuses = [ActionStatus(s) for s in status] if status else None
    except ValueError:
        allowed = ", ".join(s.value for s in ActionStatus)
        fail(f"unknown --status {status}; allowed: {allowed}", code=2)
    try:
        with open_store(state.config(reading=True), readonly=True) as store:
            rows = store.journal_list(
                statuses=statuses, namespace=namespace, playbook=playbook, limit=limit
            )
    except VigilError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps([_entry_json(e) for e in rows], indent=2))
    elif not rows:
        typer.echo("No actions match.")
    for e in rows if not as_json else ():
        typer.echo(_entry_line(e))


def _decide(action_id: int, *, approve: bool, reason: str) -> None:
    from vigil.agent.wiring import open_store
    from vigil.core import VigilError
    from vigil.playbooks import approve as approve_row
    from vigil.playbooks import deny as deny_row

    who = getpass.getuser()
    now = datetime.now(UTC)
    try:
        with open_store(state.config()) as store:
            if approve:
                entry = approve_row(store, action_id, at=now, by=who)
            else:
                entry = deny_row(store, action_id, at=now, by=who, reason=reason)
    except VigilError as exc:
        fail(str(exc))
    typer.echo(_entry_line(entry))


def approve(action_id: Annotated[int, typer.Argument(help="Journal row id.")]) -> None:
    """Approve an action waiting for a person; the daemon runs it on its next tick."""
    _decide(action_id, approve=True, reason="")


def deny(
    action_id: Annotated[int, typer.Argument(help="Journal row id.")],
    reason: Annotated[str, typer.Option(help="Why, for the journal and the thread.")] = "",
) -> None:
    """Deny an action waiting for a person; it will never run."""
    _decide(action_id, approve=False, reason=reason)


def act(
    action: Annotated[str, typer.Argument(help="scale, rollout-restart, rollout-undo, …")],
    target: Annotated[str, typer.Argument(help="KIND/NAMESPACE/NAME or node/NAME.")],
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Parameter as key=value (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only record what would be done.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the journal row as JSON.")] = False,
) -> None:
    """Run one action by hand through the same guardrails and journal as the agent, e.g.
    `vigil act scale deployment/payments/api --set replicas=4`. Prints the journal row."""
    import yaml

    from vigil.actions.kubernetes import KubernetesCluster
    from vigil.agent.playbook_stage import build_playbook_engine
    from vigil.agent.wiring import open_store, prometheus_source
    from vigil.core import VigilError
    from vigil.playbooks import act_by_hand

    params: dict[str, Any] = {}
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--set {item!r}: write key=value, e.g. --set replicas=4", code=2)
        params[key] = yaml.safe_load(raw) if raw else ""
    cfg = state.config()
    try:
        with open_store(cfg) as store:
            cluster = KubernetesCluster.from_settings(cfg.kubernetes)
            engine = build_playbook_engine(
                cfg, store=store, cluster=cluster, metrics=prometheus_source(cfg)
            )
            entry, _ = act_by_hand(
                engine, action, target, params, dry_run=dry_run, now=datetime.now(UTC),
                by=getpass.getuser(),
            )  # fmt: skip
    except (VigilError, ValueError) as exc:
        fail(str(exc))
    if entry is None:
        fail("the action was not journaled (an identical action is already recorded)")
    typer.echo(json.dumps(_entry_json(entry), indent=2) if as_json else _entry_line(entry))


def _when(text: str, option: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: write an ISO time such as 2026-11-22T00:00Z", code=2)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def backtest(
    start: Annotated[str, typer.Option("--from", help="Start, ISO time (UTC if no zone).")],
    end: Annotated[str, typer.Option("--to", help="End, ISO time (UTC if no zone).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay history from Prometheus through detection and the playbooks in dry-run:
    per playbook, how often it would have fired, on what, and what the guardrails would
    have decided. Nothing is changed; the store is not touched."""
    from rich.progress import Progress

    from vigil.agent.backtesting import run_backtest
    from vigil.agent.wiring import prometheus_source
    from vigil.core import VigilError

    cfg = state.config()
    begin, finish = _when(start, "--from"), _when(end, "--to")
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("replaying", total=1.0)
            report = run_backtest(
                cfg, prometheus_source(cfg), start=begin, end=finish,
                progress=lambda f: bar.update(task, completed=f),
            )  # fmt: skip
    except (VigilError, ValueError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.render())


def register(app: typer.Typer) -> None:
    app.add_typer(playbooks_app, name="playbooks")
    app.command()(actions)
    app.command()(approve)
    app.command()(deny)
    app.command()(act)
    app.command()(backtest)
