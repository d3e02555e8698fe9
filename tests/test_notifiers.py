"""Notifiers over real HTTP to a local stand-in for Slack and a webhook receiver."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fakereceiver import ReceiverState, running_receiver

from vigil.actions.filesink import FileSink
from vigil.actions.slack import SlackNotifier, SlackWebhookNotifier
from vigil.actions.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    verify_signature,
)
from vigil.core import (
    IncidentState,
    ManualClock,
    Notification,
    Notifier,
    PermanentError,
    RetryableError,
    Severity,
)

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "whsec-0123456789abcdef"


def note(state: IncidentState = IncidentState.DETECTED, incident: str = "f-1") -> Notification:
    return Notification(
        incident_key=incident,
        dedupe_key=f"{incident}:{state}",
        state=state,
        severity=Severity.CRITICAL,
        title="shop/cart p99 latency 870 ms, expected 120–180 ms",
        text="target: deployment/shop/cart",
        created_at=T0,
        namespace="shop",
        fields={"incident": "shop/cart p99 latency 870 ms, expected 120–180 ms"},
    )


@pytest.fixture
def receiver() -> Iterator[tuple[str, ReceiverState]]:
    with running_receiver() as r:
        yield r


def webhook(url: str, clock: ManualClock | None = None) -> WebhookNotifier:
    return WebhookNotifier(
        url + "/hook", secret=SECRET, timeout=0.5, clock=clock or ManualClock(T0)
    )


def test_webhook_posts_signed_json_a_receiver_can_verify(
    receiver: tuple[str, ReceiverState],
) -> None:
    url, st = receiver
    clock = ManualClock(datetime.now(UTC))
    delivery = webhook(url, clock).send(note())
    assert delivery.channel == "webhook" and delivery.message_ref == "f-1:detected"
    [got] = st.accepted
    assert got.body["incident_key"] == "f-1" and got.body["state"] == "detected"
    assert got.headers[SIGNATURE_HEADER].startswith("sha256=")
    verify_signature(SECRET, got.raw, got.headers, now=clock.now())
    with pytest.raises(PermanentError, match="signature does not match"):
        verify_signature(
            SECRET, got.raw.replace(b"critical", b"info"), got.headers, now=clock.now()
        )
    with pytest.raises(PermanentError, match="signature does not match"):
        verify_signature("another-secret", got.raw, got.headers, now=clock.now())
    with pytest.raises(PermanentError, match="off, more than"):
        verify_signature(SECRET, got.raw, got.headers, now=clock.now() + timedelta(minutes=10))
    stripped = {k: v for k, v in got.headers.items() if k != TIMESTAMP_HEADER}
    with pytest.raises(PermanentError, match="missing"):
        verify_signature(SECRET, got.raw, stripped, now=clock.now())


@pytest.mark.parametrize(
    ("fault", "error", "delay"),
    [
        ("500", RetryableError, 30.0),
        ("429:7", RetryableError, 7.0),
        ("timeout", RetryableError, 30.0),
    ],
)
def test_webhook_failures_are_retryable_with_the_receivers_delay(
    receiver: tuple[str, ReceiverState], fault: str, error: type[Exception], delay: float
) -> None:
    url, st = receiver
    st.faults.append(fault)
    with pytest.raises(RetryableError) as info:
        webhook(url).send(note())
    assert info.value.delay == delay
    assert SECRET not in str(info.value) and url not in str(info.value)
    assert not st.accepted


def test_webhook_4xx_is_permanent_and_names_the_channel(
    receiver: tuple[str, ReceiverState],
) -> None:
    url, _ = receiver
    hook = WebhookNotifier(url + "/wrong?token=s3cr3t-in-url", secret=SECRET, timeout=1)
    with pytest.raises(
        PermanentError, match=r"webhook: receiver refused the message \(HTTP 404"
    ) as info:
        hook.send(note())
    assert "s3cr3t-in-url" not in str(info.value)
    assert "s3cr3t" not in repr(hook)


def test_webhook_unreachable_is_retryable() -> None:
    hook = WebhookNotifier("http://127.0.0.1:9/hook", timeout=0.5)  # discard port: refused
    with pytest.raises(RetryableError, match="could not reach"):
        hook.send(note())


def slack(
    url: str, st: ReceiverState, channel: str = "#ops", token: str | None = None
) -> SlackNotifier:
    return SlackNotifier(
        token or st.token, channel, base_url=url + "/api/", timeout=0.5, clock=ManualClock(T0)
    )


def test_slack_posts_then_edits_in_place_and_threads(receiver: tuple[str, ReceiverState]) -> None:
    url, st = receiver
    notifier = slack(url, st)
    first = notifier.send(note())
    assert first.message_ref == "C0OPS:1700000000.000101"
    second = notifier.update(first.message_ref, note(IncidentState.VERIFIED))
    assert second.message_ref == first.message_ref
    parent = st.slack_messages["1700000000.000101"]
    assert parent["text"].startswith("[CRITICAL] Verified · shop/cart p99 latency")
    assert parent["blocks"][0]["text"]["text"].startswith(":white_check_mark: *[CRITICAL] Verified")
    assert st.replies["1700000000.000101"] == ["1700000000.000102"]
    assert [r.kind for r in st.accepted] == ["post", "reply"]
    assert st.accepted[1].dedupe_key == "f-1:verified"
    assert [u.dedupe_key for u in st.updates] == ["f-1:verified"]


def test_slack_refusals_are_permanent_and_never_show_the_token(
    receiver: tuple[str, ReceiverState],
) -> None:
    url, st = receiver
    with pytest.raises(PermanentError, match="channel_not_found"):
        slack(url, st, channel="#nope").send(note())
    bad = "xoxb-wrong-token-999999"
    with pytest.raises(PermanentError, match="invalid_auth") as info:
        slack(url, st, token=bad).send(note())
    assert bad not in str(info.value) and bad not in repr(slack(url, st, token=bad))
    with pytest.raises(PermanentError, match="not CHANNEL:TS"):
        slack(url, st).update("garbage", note())


def test_slack_says_it_anew_when_the_incident_message_was_deleted(
    receiver: tuple[str, ReceiverState],
) -> None:
    url, st = receiver
    again = slack(url, st).update("C0OPS:1699999999.000001", note(IncidentState.ACTING))
    assert again.message_ref == "C0OPS:1700000000.000101"  # a new parent, not an error
    assert [(r.kind, r.state) for r in st.accepted] == [("post", "acting")]


@pytest.mark.parametrize(
    ("fault", "delay"), [("500", 30.0), ("429:12", 12.0), ("timeout", 30.0), ("down", 30.0)]
)
def test_slack_transient_failures_are_retryable(
    receiver: tuple[str, ReceiverState], fault: str, delay: float
) -> None:
    url, st = receiver
    st.faults.append(fault)
    with pytest.raises(RetryableError) as info:
        slack(url, st).send(note())
    assert info.value.delay == delay
    assert st.token not in str(info.value)


def test_slack_incoming_webhook_names_the_incident_in_each_message(
    receiver: tuple[str, ReceiverState],
) -> None:
    url, st = receiver
    hook_url = url + "/services/T000/B000/sEcReTwebhookPath"
    notifier = SlackWebhookNotifier(hook_url, timeout=0.5, clock=ManualClock(T0))
    assert notifier.supports_update is False
    notifier.send(note())
    notifier.update("ignored", note(IncidentState.RESOLVED))
    texts = [r.body["text"] for r in st.accepted]
    assert all("(incident f-1)" in t for t in texts)
    assert texts[1].startswith("[CRITICAL] Resolved")
    st.faults.append("500")
    with pytest.raises(RetryableError) as info:
        notifier.send(note(IncidentState.ACTING))
    assert "sEcReTwebhookPath" not in str(info.value)
    st.faults.append("429:3")
    with pytest.raises(RetryableError) as info:
        notifier.send(note(IncidentState.ACTING))
    assert info.value.delay == 3.0


def test_file_sink_appends_json_lines(tmp_path) -> None:
    sink = FileSink(tmp_path / "out" / "notifications.jsonl")
    sink.send(note())
    sink.update("x", note(IncidentState.RESOLVED))
    lines = [
        json.loads(x) for x in (tmp_path / "out" / "notifications.jsonl").read_text().splitlines()
    ]
    assert [x["state"] for x in lines] == ["detected", "resolved"]
    assert lines[0]["rendered"].startswith("[CRITICAL] Detected · shop/cart")
    with pytest.raises(PermanentError, match=r"point notify\.file"):
        FileSink(tmp_path).send(note())


def test_secrets_never_reach_the_logs(
    receiver: tuple[str, ReceiverState], caplog: pytest.LogCaptureFixture
) -> None:
    url, st = receiver
    caplog.set_level(logging.DEBUG)
    hook_url = url + "/services/T000/B000/sEcReTwebhookPath"
    incoming = SlackWebhookNotifier(hook_url, timeout=0.5, clock=ManualClock(T0))
    bot = slack(url, st)
    incoming.send(note())
    bot.send(note())
    st.faults.extend(["timeout", "timeout"])
    for n in (incoming, bot):
        with pytest.raises(RetryableError):
            n.send(note())
    hook = WebhookNotifier(url + "/hook?token=webhook-t0ken-in-url", timeout=0.5)
    hook.send(note())
    st.faults.append("500")
    with pytest.raises(RetryableError):
        hook.send(note())
    assert caplog.records  # slack-sdk and httpx did log, just not the secrets
    assert "HTTP Request: POST" in caplog.text  # httpx's request line, scrubbed
    for secret in ("sEcReTwebhookPath", st.token, "webhook-t0ken-in-url"):
        assert secret not in caplog.text


# ---------------------------------------------------------------- one contract, every Notifier


@pytest.mark.parametrize("kind", ["webhook", "slack", "slack-incoming", "file"])
def test_every_notifier_keeps_the_contract(
    receiver: tuple[str, ReceiverState], tmp_path, kind: str
) -> None:
    url, st = receiver
    clock = ManualClock(T0)
    notifier: Notifier = {
        "webhook": lambda: WebhookNotifier(url + "/hook", secret=SECRET, timeout=1, clock=clock),
        "slack": lambda: slack(url, st),
        "slack-incoming": lambda: SlackWebhookNotifier(
            url + "/services/T/B/x", timeout=1, clock=clock
        ),
        "file": lambda: FileSink(tmp_path / "n.jsonl"),
    }[kind]()
    assert isinstance(notifier, Notifier)
    first = notifier.send(note())
    assert first.channel == notifier.name and first.message_ref
    later = note(IncidentState.RESOLVED)
    second = (
        notifier.update(first.message_ref, later)
        if notifier.supports_update
        else notifier.send(later)
    )
    assert second.channel == notifier.name
    if kind == "file":
        seen = [
            json.loads(x)["dedupe_key"] for x in (tmp_path / "n.jsonl").read_text().splitlines()
        ]
    else:
        seen = [r.dedupe_key for r in st.accepted]
    assert seen == ["f-1:detected", "f-1:resolved"]  # every message carries its dedupe key
