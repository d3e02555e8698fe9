"""The daemon's HTTP surface over real HTTP: health, readiness, metrics, Alertmanager, approvals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vigil.agent.approval_links import ApprovalLinks
from vigil.agent.loop import TickContext, TickOutcome
from vigil.agent.metrics import JOURNAL_KEY, Metrics
from vigil.agent.server import AgentServer
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
TOKEN = "am-token-0123456789"
SECRET = "approval-secret-0123456789"


@dataclass
class Daemon:
    url: str
    store: SqliteStore
    clock: ManualClock
    metrics: Metrics
    server: AgentServer
    links: ApprovalLinks
    leader: list[bool]
    http: httpx.Client


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    clock = ManualClock(T0)
    store = SqliteStore.open(tmp_path / "vigil.db")
    metrics = Metrics(outbox_depth=store.outbox_depth, clock=clock)
    links = ApprovalLinks(SECRET, "https://vigil.example.com", ttl=3600)
    leader = [True]
    server = AgentServer(
        store,
        metrics,
        clock,
        port=0,
        alertmanager_token=TOKEN,
        links=links,
        max_body_bytes=4096,
        ready_max_age=300,
        is_leader=lambda: leader[0],
    )
    port = server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            yield Daemon(url, store, clock, metrics, server, links, leader, http)
    finally:
        server.stop()
        store.close()


# ---------------------------------------------------------------- health and metrics


def test_healthz_and_readyz_follow_the_ticks(daemon: Daemon) -> None:
    assert daemon.http.get("/healthz").json() == {"status": "ok"}
    ready = daemon.http.get("/readyz")
    assert ready.status_code == 200 and "starting" in ready.json()["reasons"][0]
    tick = daemon.store.start_tick(T0)
    daemon.store.finish_tick(tick, T0 + timedelta(seconds=2), {"fetch": 1.0}, [])
    assert daemon.http.get("/readyz").status_code == 200
    daemon.clock.advance(302)
    assert daemon.http.get("/readyz").status_code == 200  # 300 s old: still fresh
    daemon.clock.advance(1)
    stale = daemon.http.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["reasons"] == ["last successful tick was 301 s ago"]
    failed = daemon.store.start_tick(daemon.clock.now())
    daemon.store.finish_tick(failed, daemon.clock.now(), {"fetch": 1.0}, ["fetch: Prometheus down"])
    body = daemon.http.get("/readyz").json()
    assert body["ready"] is False and any("Prometheus down" in r for r in body["reasons"])
    daemon.leader[0] = False
    follower = daemon.http.get("/readyz").json()
    assert follower["ready"] is True and "follower" in follower["reasons"][0]


def test_metrics_parse_and_carry_the_ticks(daemon: Daemon) -> None:
    finding = Finding(FindingKind.ALERT, "alert:x", "HighLatency", Severity.CRITICAL, T0, T0)
    ref = ObjectRef.parse("deployment/shop/cart")
    plan = Plan(
        finding.id, "restart-crashloop", 0, ActionKind.ROLLOUT_RESTART, ref, {}, Mode.AUTO, T0
    )
    daemon.store.record_finding(finding)
    refused = daemon.store.journal_plan(plan, ActionStatus.REFUSED, reason="budget", at=T0)
    assert refused is not None
    ctx = TickContext(
        tick_id=1, now=T0, findings=[finding, finding], extras={JOURNAL_KEY: [refused]}
    )
    daemon.metrics.observe_tick(TickOutcome(1, T0, {"fetch": 0.2, "notify": 0.1}, (), ctx))
    daemon.metrics.observe_tick(TickOutcome(2, T0, {"fetch": 0.3}, ("fetch: down",), ctx))
    daemon.store.enqueue(
        "slack",
        Notification("f", "f:detected", IncidentState.DETECTED, Severity.WARNING, "t", "", T0),
        at=T0,
    )
    response = daemon.http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(response.text)
        for s in fam.samples
    }
    assert samples[("vigil_tick_duration_seconds_count", ())] == 2
    assert samples[("vigil_stage_duration_seconds_count", (("stage", "fetch"),))] == 2
    assert samples[("vigil_ticks_total", (("result", "ok"),))] == 1
    assert samples[("vigil_ticks_total", (("result", "failed"),))] == 1
    assert samples[("vigil_findings_total", (("kind", "alert"), ("severity", "critical")))] == 1
    assert (
        samples[("vigil_actions_total", (("playbook", "restart-crashloop"), ("status", "refused")))]
        == 2
    )
    assert samples[("vigil_guardrail_refusals_total", (("playbook", "restart-crashloop"),))] == 2
    assert samples[("vigil_outbox_depth", ())] == 1
    assert samples[("vigil_last_successful_tick_timestamp_seconds", ())] == T0.timestamp()


# ---------------------------------------------------------------- Alertmanager


def am_alert(
    status: str,
    fingerprint: str = "a1b2c3d4e5f60718",
    starts: str = "2026-11-23T11:58:30.123456789Z",
    ends: str = "0001-01-01T00:00:00Z",
) -> dict:
    return {
        "status": status,
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": "shop",
            "pod": "cart-7d9c-x2",
            "severity": "critical",
        },
        "annotations": {"summary": "Pod shop/cart-7d9c-x2 is crash looping."},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": fingerprint,
    }


def am_payload(*alerts: dict, status: str = "firing") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="KubePodCrashLooping"}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "vigil",
            "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts),
        }
    ).encode()


def post_am(d: Daemon, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return d.http.post("/alertmanager", content=body, headers=headers)


def test_alertmanager_firing_repeated_resolved(daemon: Daemon) -> None:
    r = post_am(daemon, am_payload(am_alert("firing")))
    assert r.status_code == 200 and r.json() == {"new": 1, "repeat": 0, "resolved": 0, "unknown": 0}
    [finding] = daemon.store.open_findings()
    assert finding.kind is FindingKind.ALERT and finding.severity is Severity.CRITICAL
    assert finding.target == ObjectRef("pod", "shop", "cart-7d9c-x2")
    assert finding.started_at == datetime(2026, 11, 23, 11, 58, 30, 123456, tzinfo=UTC)
    assert "crash looping" in finding.title
    assert post_am(daemon, am_payload(am_alert("firing"))).json()["repeat"] == 1
    # the same fingerprint firing again after it started anew is a new finding
    again = am_alert("firing", starts="2026-11-23T13:00:00Z")
    assert post_am(daemon, am_payload(again)).json()["new"] == 1
    resolved = am_alert("resolved", ends="2026-11-23T12:05:00Z")
    assert post_am(daemon, am_payload(resolved, status="resolved")).json()["resolved"] == 1
    assert daemon.store.get_finding(finding.id).resolved_at == datetime(
        2026, 11, 23, 12, 5, tzinfo=UTC
    )
    assert len(daemon.store.open_findings()) == 1
    # a resolved alert never seen firing opens nothing
    stranger = am_alert("resolved", fingerprint="ffff000011112222", ends="2026-11-23T12:05:00Z")
    assert post_am(daemon, am_payload(stranger, status="resolved")).json()["unknown"] == 1
    assert daemon.store.stats()["tables"]["findings"] == 2
    assert daemon.store.journal_list() == []  # alerts never start actions by themselves


@pytest.mark.parametrize(
    ("body", "token", "status", "reason"),
    [
        (am_payload(am_alert("firing")), "wrong-token-000000000", 401, "bearer token"),
        (am_payload(am_alert("firing")), None, 401, "bearer token"),
        (b"\x00\xffnot json at all", TOKEN, 400, "not JSON"),
        (b"[1, 2, 3]", TOKEN, 400, "JSON object"),
        (json.dumps({"version": "3", "alerts": []}).encode(), TOKEN, 400, "version '3'"),
        (
            am_payload({**am_alert("firing"), "startsAt": "yesterday"}),
            TOKEN,
            400,
            "alerts[0].startsAt",
        ),
        (
            am_payload(am_alert("firing"), {**am_alert("firing"), "status": "maybe"}),
            TOKEN,
            400,
            "alerts[1].status",
        ),
        (am_payload({**am_alert("firing"), "fingerprint": ""}), TOKEN, 400, "fingerprint"),
        (am_payload({**am_alert("firing"), "labels": {"a": 1}}), TOKEN, 400, "labels"),
        (
            am_payload(*[am_alert("firing", fingerprint=f"{i:016x}") for i in range(40)]),
            TOKEN,
            413,
            "over the limit",
        ),
    ],
)
def test_alertmanager_refuses_bad_requests_and_changes_nothing(
    daemon: Daemon, body: bytes, token: str | None, status: int, reason: str
) -> None:
    before = daemon.store.stats()
    r = post_am(daemon, body, token)
    assert r.status_code == status
    assert reason in r.json()["error"]
    assert daemon.store.stats()["tables"]["findings"] == before["tables"]["findings"] == 0


def test_alertmanager_follower_asks_to_retry(daemon: Daemon) -> None:
    daemon.leader[0] = False
    r = post_am(daemon, am_payload(am_alert("firing")))
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert daemon.store.open_findings() == []


def test_missing_content_length_is_refused(daemon: Daemon) -> None:
    def chunks() -> Iterator[bytes]:
        yield am_payload(am_alert("firing"))

    r = httpx.post(
        daemon.url + "/alertmanager", content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 411 and daemon.store.open_findings() == []


# ---------------------------------------------------------------- approvals


def pending(d: Daemon, name: str = "cart") -> int:
    ref = ObjectRef.parse(f"deployment/shop/{name}")
    plan = Plan(
        "f-1",
        "scale-up",
        0,
        ActionKind.SCALE,
        ref,
        {"replicas": 5},
        Mode.APPROVE,
        T0,
        reason="p99 latency over SLO",
    )
    entry = d.store.journal_plan(plan, ActionStatus.PENDING_APPROVAL, reason=plan.reason, at=T0)
    assert entry is not None
    return entry.id


def link_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_signed_link_get_confirms_post_decides(daemon: Daemon) -> None:
    action = pending(daemon)
    link = daemon.links.mint(action, "approve", now=daemon.clock.now())
    assert link.startswith("https://vigil.example.com/approve?action=")
    params = link_params(link)
    page = daemon.http.get("/approve", params=params)
    assert (
        page.status_code == 200
        and "Approve action #" in page.text
        and "<form method='post'" in page.text
    )
    assert (
        daemon.store.journal_get(action).status is ActionStatus.PENDING_APPROVAL
    )  # GET decides nothing
    done = daemon.http.post("/approve", data=params)
    assert done.status_code == 200 and done.json() == {"action": action, "status": "approved"}
    entry = daemon.store.journal_get(action)
    assert entry.status is ActionStatus.APPROVED and "signed link" in entry.message
    again = daemon.http.post("/approve", data=params)
    assert again.status_code == 409 and "it is approved" in again.json()["error"]
    other = pending(daemon, "api")
    deny = link_params(daemon.links.mint(other, "deny", now=daemon.clock.now()))
    assert daemon.http.post("/approve", data=deny).json()["status"] == "denied"


def test_expired_and_tampered_links_are_refused(daemon: Daemon) -> None:
    action = pending(daemon)
    params = link_params(daemon.links.mint(action, "approve", now=daemon.clock.now()))
    for bad, why in [
        ({**params, "decision": "deny"}, "altered"),
        ({**params, "action": str(action + 1)}, "altered"),
        ({**params, "expires": str(int(params["expires"]) + 3600)}, "altered"),
        ({**params, "sig": "0" * 64}, "altered"),
        ({k: v for k, v in params.items() if k != "sig"}, "lacks sig"),
        ({**params, "action": "seven"}, "integers"),
    ]:
        r = daemon.http.post("/approve", data=bad)
        assert r.status_code == 403 and why in r.json()["error"], (bad, r.text)
        assert daemon.http.get("/approve", params=bad).status_code == 403
    forged = ApprovalLinks("another-secret-0123456789", "https://vigil.example.com")
    r = httpx.post(
        daemon.url + "/approve", data=link_params(forged.mint(action, "approve", now=T0))
    )
    assert r.status_code == 403
    daemon.clock.advance(3601)
    expired = daemon.http.post("/approve", data=params)
    assert expired.status_code == 403 and "expired" in expired.json()["error"]
    assert daemon.store.journal_get(action).status is ActionStatus.PENDING_APPROVAL


def test_unknown_routes_and_oversized_approval_bodies(daemon: Daemon) -> None:
    assert daemon.http.get("/nope").status_code == 404
    assert daemon.http.post("/nope", content=b"x").status_code == 404
    r = daemon.http.post("/approve", content=b"a" * 5000)
    assert r.status_code == 413
