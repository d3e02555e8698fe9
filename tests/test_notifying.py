"""Incident messages: findings and playbook transitions → routed, deduplicated outbox messages."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from fakereceiver import running_receiver

from vigil.actions.filesink import FileSink
from vigil.actions.rendering import render_blocks, render_text
from vigil.actions.slack import SlackNotifier
from vigil.actions.webhook import WebhookNotifier
from vigil.agent.approval_links import ApprovalLinks
from vigil.agent.delivery import DeliveryWorker
from vigil.agent.loop import TickContext
from vigil.agent.metrics import JOURNAL_KEY
from vigil.agent.notifying import NOTIFICATIONS_KEY, NotifyStage
from vigil.agent.routing import Route, Router
from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionKind,
    ActionStatus,
    Finding,
    FindingKind,
    IncidentState,
    ManualClock,
    Mode,
    Notification,
    ObjectRef,
    Plan,
    Severity,
)

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def finding(name: str, ns: str, severity: Severity) -> Finding:
    return Finding(
        FindingKind.ALERT, f"alert:{name}", f"KubePodCrashLooping on {ns}/{name}", severity,
        T0, T0, labels={"namespace": ns}, target=ObjectRef("deployment", ns, name),
        details={"summary": f"Pod {ns}/{name} is crash looping."},
    )  # fmt: skip


def engine_note(f: Finding, state: IncidentState, action: int, text: str) -> Notification:
    """What the playbook engine leaves in ctx.extras (same shape as playbooks.executor)."""
    return Notification(
        incident_key=f.id, dedupe_key=f"{f.id}:{state}:{action}", state=state,
        severity=Severity.WARNING, title=f"restart-crashloop: rollout-restart {f.target}",
        text=text, created_at=T0, namespace=f.target.namespace if f.target else None,
        fields={"action_id": action, "playbook": "restart-crashloop", "status": "pending-approval"},
    )  # fmt: skip


def test_router_routes_by_severity_namespace_and_state() -> None:
    router = Router(
        [Route(channels=("webhook",), min_severity="info"),
         Route(channels=("slack",), min_severity="critical", namespaces=("shop*",)),
         Route(channels=("pager",), states=(IncidentState.ESCALATED,), min_severity="warning")],
        ["webhook", "slack", "pager"],
    )  # fmt: skip
    f = finding("cart", "shop-eu", Severity.CRITICAL)
    note = engine_note(f, IncidentState.ACTING, 1, "")
    assert router.channels_for(note) == ["webhook"]
    assert router.channels_for(note, Severity.CRITICAL) == ["webhook", "slack"]
    escalated = engine_note(f, IncidentState.ESCALATED, 1, "")
    assert router.channels_for(escalated) == ["webhook", "pager"]
    with pytest.raises(ValueError, match=r"notify.routes\[0\] names unknown channel\(s\) teams"):
        Router([Route(channels=("teams",))], ["slack"])
    assert Router([], ["a", "b"]).channels_for(note) == ["a", "b"]
    assert (
        Router([], ["a"]).channels_for(
            engine_note(f, IncidentState.ACTING, 1, "").__class__(
                **{**note.__dict__, "severity": Severity.INFO}
            )
        )
        == []
    )


def test_an_incident_is_one_thread_updated_as_it_moves(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    links = ApprovalLinks("approval-secret-0123456789", "https://vigil.example.com")
    with running_receiver() as (url, st), SqliteStore.open(tmp_path / "v.db") as store:
        notifiers = {
            "webhook": WebhookNotifier(url + "/hook", timeout=1, clock=clock),
            "slack": SlackNotifier(
                st.token, "#ops", base_url=url + "/api/", timeout=1, clock=clock
            ),
        }
        router = Router(
            [Route(channels=("webhook",)), Route(channels=("slack",), min_severity="critical")],
            list(notifiers),
        )
        worker = DeliveryWorker(store, notifiers, clock, rng=random.Random(1))
        stage = NotifyStage(store, router, worker=worker, links=links, cluster="prod-eu")
        crit = finding("cart", "shop", Severity.CRITICAL)
        warn = finding("api", "web", Severity.WARNING)
        store.record_finding(crit)
        store.record_finding(warn)

        def tick(*notes: Notification, findings: list[Finding] | None = None) -> None:
            ctx = TickContext(tick_id=1, now=clock.now(), findings=findings or [],
                              extras={NOTIFICATIONS_KEY: list(notes)})  # fmt: skip
            stage.run(ctx)
            clock.advance(60)

        tick(findings=[crit, warn])
        approval = engine_note(crit, IncidentState.AWAITING_APPROVAL, 7, "needs approval: restart")
        acting = engine_note(crit, IncidentState.ACTING, 7, "restarted deployment/shop/cart")
        tick(approval)
        tick(approval, acting)  # a re-run tick repeats the engine's messages: queued once
        store.resolve_finding(crit.id, clock.now())
        tick(findings=[warn])
        tick(findings=[warn])
        # detected: crit ×2 channels + warn ×1; approval, acting, resolved: ×2 each
        assert stage.queued == 3 + 2 + 2 + 2
        assert store.outbox_depth() == 0

        hooks = [(r.incident_key, r.state) for r in st.accepted if r.kind == "webhook"]
        assert hooks == [(crit.id, "detected"), (warn.id, "detected"), (crit.id, "awaiting-approval"),
                         (crit.id, "acting"), (crit.id, "resolved")]  # fmt: skip
        # Slack: one message for the critical incident, edited in place, the rest in its thread
        [parent] = [r for r in st.accepted if r.kind == "post"]
        assert parent.incident_key == crit.id
        replies = [r.state for r in st.accepted if r.kind == "reply"]
        assert replies == ["awaiting-approval", "acting", "resolved"]
        final = st.slack_messages[next(iter(st.slack_messages))]
        assert final["text"].startswith("[CRITICAL] Resolved · KubePodCrashLooping on shop/cart")
        # the approval message carries signed links that the server accepts
        body = next(
            r.body for r in st.accepted if r.kind == "webhook" and r.state == "awaiting-approval"
        )
        approve = dict(parse_qsl(urlsplit(body["fields"]["approve_url"]).query))
        assert links.check(approve, now=T0 + timedelta(minutes=5)).action_id == 7
        assert body["fields"]["incident"] == crit.title and body["fields"]["cluster"] == "prod-eu"
        [asking] = [u for u in st.updates if u.state == "awaiting-approval"]
        [buttons] = [b for b in asking.body["blocks"] if b["type"] == "actions"]
        assert [e["text"]["text"] for e in buttons["elements"]] == ["Approve", "Deny"]
        assert asking.body["text"].startswith(
            "[CRITICAL] Awaiting approval"
        )  # the incident's severity


def test_rendered_text_and_blocks() -> None:
    f = finding("cart", "shop", Severity.CRITICAL)
    note = engine_note(
        f,
        IncidentState.AWAITING_APPROVAL,
        7,
        "guardrail: approval required. Approve with `vigil approve 7`.",
    )
    links = ApprovalLinks("approval-secret-0123456789", "https://vigil.example.com")
    enriched = note.__class__(
        **{
            **note.__dict__,
            "fields": {
                **note.fields,
                "incident": f.title,
                "cluster": "prod-eu",
                "approve_url": links.mint(7, "approve", now=T0),
                "deny_url": links.mint(7, "deny", now=T0),
            },
        }
    )
    text = render_text(enriched)
    print(text)
    lines = text.splitlines()
    assert lines[0] == "[WARNING] Awaiting approval · KubePodCrashLooping on shop/cart"
    assert (
        lines[1] == f"incident {f.id} · cluster prod-eu · namespace shop · 2026-11-23 12:00:00 UTC"
    )
    assert lines[2] == "restart-crashloop: rollout-restart deployment/shop/cart"
    assert lines[-2].startswith(
        "approve: https://vigil.example.com/approve?action=7&decision=approve"
    )
    blocks = render_blocks(enriched)
    assert blocks[0]["text"]["text"].startswith(":raised_hand: *[WARNING] Awaiting approval")
    assert [b["text"]["text"] for b in blocks[-1]["elements"]] == ["Approve", "Deny"]


def test_dry_run_and_refusals_are_told_in_the_incidents_thread(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with SqliteStore.open(tmp_path / "v.db") as store:
        sink = FileSink(tmp_path / "n.jsonl")
        worker = DeliveryWorker(store, {"file": sink}, clock)
        stage = NotifyStage(store, Router([], ["file"]), worker=worker)
        f = finding("cart", "shop", Severity.WARNING)
        store.record_finding(f)
        assert f.target is not None
        plan = Plan(f.id, "restart-crashloop", 0, ActionKind.ROLLOUT_RESTART, f.target, {},
                    Mode.AUTO, T0, reason="5 restarts in 15 min")  # fmt: skip
        dry = store.journal_plan(plan, ActionStatus.DRY_RUN, reason=plan.reason, at=T0)
        other = Plan(
            f.id, "scale-up", 0, ActionKind.SCALE, f.target, {"replicas": 9}, Mode.AUTO, T0
        )
        refused = store.journal_plan(
            other, ActionStatus.REFUSED, reason="budget of 5 actions/hour spent", at=T0
        )
        for _ in range(2):  # the same rows again next tick: told once
            stage.run(
                TickContext(tick_id=1, now=T0, findings=[f], extras={JOURNAL_KEY: [dry, refused]})
            )
    lines = [json.loads(x) for x in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert [x["state"] for x in lines] == ["detected", "detected", "detected"]
    assert lines[1]["text"] == (
        "dry-run: would have run rollout-restart deployment/shop/cart (5 restarts in 15 min)"
    )
    assert (
        lines[2]["text"] == "refused: scale deployment/shop/cart — budget of 5 actions/hour spent"
    )
    assert lines[1]["severity"] == "warning"  # the incident's severity, not the note's
