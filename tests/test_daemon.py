"""vigil run's services wired from a Config: a gated tick notifies, the server reports it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from vigil.agent.config import Config
from vigil.agent.daemon import DaemonServices, approval_links, build_notifiers, build_notify
from vigil.agent.loop import Loop, TickContext
from vigil.agent.metrics import Metrics
from vigil.agent.store import SqliteStore
from vigil.core import Finding, FindingKind, ManualClock, Severity

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class AlertStage:
    name = "alerts"

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def run(self, ctx: TickContext) -> None:
        f = Finding(FindingKind.ALERT, "alert:x", "HighErrorRate on shop/cart", Severity.CRITICAL,
                    ctx.now, ctx.now, labels={"namespace": "shop"})  # fmt: skip
        self.store.record_finding(f)
        ctx.findings.append(f)


class Follower:
    def is_leader(self) -> bool:
        return False


def config(tmp_path: Path, **notify: object) -> Config:
    return Config.model_validate({
        "agent": {"cluster_name": "test"},
        "notify": {"file": str(tmp_path / "notifications.jsonl"), **notify},
        "server": {"host": "127.0.0.1", "approval_secret": "approval-secret-0123456789"},
    })  # fmt: skip


def test_notifiers_follow_the_config(tmp_path: Path) -> None:
    cfg = config(tmp_path, webhook={"url": "http://127.0.0.1:9/hook", "secret": "s" * 20},
                 slack={"webhook_url": "https://hooks.example.invalid/services/T/B/x"})  # fmt: skip
    assert sorted(build_notifiers(cfg.notify, clock=ManualClock(T0))) == [
        "file",
        "slack",
        "webhook",
    ]
    # the config itself refuses a bot token without a channel (before any notifier is built)
    with pytest.raises(ValueError, match=r"notify\.slack\.channel is required"):
        config(tmp_path, slack={"token": "xoxb-1"})
    assert approval_links(cfg.server, public_url=None) is None
    links = approval_links(cfg.server, public_url="https://vigil.example.com")
    assert links is not None and links.mint(1, "deny", now=T0).startswith(
        "https://vigil.example.com/"
    )


def test_gated_tick_notifies_and_the_server_reports(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    clock = ManualClock(T0)
    with SqliteStore.open(tmp_path / "v.db") as store:
        metrics = Metrics(outbox_depth=store.outbox_depth, clock=clock)
        stage, worker = build_notify(cfg, store, clock, metrics=metrics)
        loop = Loop(store, clock, [AlertStage(store), stage])
        services = DaemonServices(cfg, store, clock, metrics, worker=worker, port=0)
        port = services.start()
        try:
            outcome = services.gated(loop.tick)()
            assert outcome is not None and outcome.ok
            [line] = (tmp_path / "notifications.jsonl").read_text().splitlines()
            assert json.loads(line)["rendered"].startswith(
                "[CRITICAL] Detected · HighErrorRate on shop/cart"
            )
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            assert 'vigil_ticks_total{result="ok"} 1.0' in text and "vigil_leader 1.0" in text
            assert 'vigil_notifications_total{result="delivered"} 1.0' in text
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["ready"] is True
            services.elector = Follower()  # type: ignore[assignment]
            assert services.gated(loop.tick)() is None  # a follower never ticks
            assert len(store.recent_ticks()) == 1
        finally:
            services.stop()


def test_alert_between_ticks_is_announced_then_resolved(tmp_path: Path) -> None:
    cfg = Config.model_validate({
        "notify": {"file": str(tmp_path / "n.jsonl")},
        "server": {"host": "127.0.0.1", "alertmanager_token": "t" * 24},
    })  # fmt: skip
    clock = ManualClock(T0)
    alert = {
        "status": "firing", "labels": {"alertname": "HighLatency", "namespace": "shop",
                                       "deployment": "cart", "severity": "warning"},
        "annotations": {"summary": "p99 over 1 s"}, "startsAt": "2026-11-23T11:59:00Z",
        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0123456789abcdef",
    }  # fmt: skip
    with SqliteStore.open(tmp_path / "v.db") as store:
        metrics = Metrics(outbox_depth=store.outbox_depth, clock=clock)
        stage, worker = build_notify(cfg, store, clock, metrics=metrics)
        loop = Loop(store, clock, [stage])
        services = DaemonServices(cfg, store, clock, metrics, worker=worker, port=0)
        port = services.start()
        try:
            auth = {"Authorization": "Bearer " + "t" * 24}
            body = {"version": "4", "status": "firing", "alerts": [alert]}
            url = f"http://127.0.0.1:{port}/alertmanager"
            assert httpx.post(url, json=body, headers=auth).json()["new"] == 1
            services.gated(loop.tick)()
            clock.advance(300)
            resolved = {**alert, "status": "resolved", "endsAt": "2026-11-23T12:04:00Z"}
            body = {"version": "4", "status": "resolved", "alerts": [resolved]}
            assert httpx.post(url, json=body, headers=auth).json()["resolved"] == 1
            services.gated(loop.tick)()
            services.gated(loop.tick)()  # nothing new: each state once
        finally:
            services.stop()
    lines = [json.loads(x) for x in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert [x["state"] for x in lines] == ["detected", "resolved"]
    assert lines[0]["title"] == "HighLatency on shop/cart: p99 over 1 s"
    assert lines[1]["text"] == "resolved at 2026-11-23 12:04:00 UTC after 5 min 0 s"
