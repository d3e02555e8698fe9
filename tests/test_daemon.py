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
from vigil.core import ConfigError, Finding, FindingKind, ManualClock, Severity

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
    with pytest.raises(ConfigError, match=r"notify\.slack\.channel is required"):
        build_notifiers(config(tmp_path, slack={"token": "xoxb-1"}).notify, clock=ManualClock(T0))
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
