"""Slack ``Notifier``s through ``slack-sdk``: a bot token (edits messages) or an incoming webhook.

``SlackNotifier`` (bot token, ``chat:write`` scope) posts an incident's first message
with ``chat.postMessage``; each later state edits that message in place
(``chat.update``, so the channel shows where the incident is now) and adds a threaded
reply saying what happened. ``SlackWebhookNotifier`` (an incoming-webhook URL) cannot
edit: each state is a new message whose text names the incident. Every message carries
the dedupe key in Slack message metadata (``event_type: vigil_incident``).

slack-sdk's own retries are switched off: the outbox (``vigil.agent.delivery``) owns
retries and their order. Failures become ``RetryableError`` (timeouts, 5xx, 429 with
``Retry-After``, Slack's ``ratelimited``/``service_unavailable``) or ``PermanentError``
(``channel_not_found``, ``invalid_auth``, other 4xx). The token and the webhook URL
never appear in errors or logs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vigil.actions._http_failures import (
    ScrubFilter,
    failure_for_status,
    retry_after_seconds,
    scrub,
)
from vigil.actions.rendering import headline, render_blocks, render_text
from vigil.core import Clock, Delivery, Notification, PermanentError, RetryableError, SystemClock

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SlackNotifier", "SlackWebhookNotifier", "slack_metadata"]


def _sdk_logger(name: str, secret: str) -> logging.Logger:
    """The logger slack-sdk writes to for one notifier, filtered for its secret."""
    logger = logging.getLogger(f"vigil.actions.slack.sdk.{name}")
    # its debug records carry the webhook URL and the request headers: drop them
    ScrubFilter.install(logger, secret, min_level=logging.INFO)
    return logger


_RETRYABLE_SLACK_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error",
     "request_timeout", "team_added_to_org"}
)  # fmt: skip


# chat.update answers these when the incident's message was deleted or is not ours
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


class _MessageGone(PermanentError):
    """The message to edit is gone (deleted, or no longer editable)."""


def slack_metadata(message: Notification) -> dict[str, Any]:
    """Slack message metadata carrying the keys a reader (or a test) dedupes on."""
    return {
        "event_type": "vigil_incident",
        "event_payload": {
            "incident_key": message.incident_key,
            "dedupe_key": message.dedupe_key,
            "state": message.state.value,
        },
    }


def _connection_errors() -> tuple[type[BaseException], ...]:
    import http.client
    import urllib.error

    return (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)


class _SlackCalls:
    """Runs one slack-sdk call and maps its failures (shared by both notifiers)."""

    def __init__(self, name: str, secret: str, timeout: float, retry_delay: float, clock: Clock):
        self.name = name
        self._secret = secret
        self._timeout = timeout
        self._retry_delay = retry_delay
        self._clock = clock

    def scrub(self, text: str) -> str:
        return scrub(text, (self._secret,))

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return fn()
        except SlackApiError as exc:
            raise self._api_failure(what, exc.response) from exc
        except SlackClientError as exc:
            reason = self.scrub(str(exc))
            raise PermanentError(f"{self.name}: {what} refused by the client: {reason}") from exc
        except _connection_errors() as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise RetryableError(
                f"{self.name}: {what} failed: Slack not reachable ({reason})",
                delay=self._retry_delay,
            ) from exc
        except ValueError as exc:  # a proxy answering HTML instead of JSON
            raise RetryableError(
                f"{self.name}: {what}: unreadable answer from Slack", delay=self._retry_delay
            ) from exc

    def _api_failure(self, what: str, response: Any) -> RetryableError | PermanentError:
        status = int(getattr(response, "status_code", 0) or 0)
        headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or "")
        retry_after = retry_after_seconds(headers.get("retry-after"), self._clock.now())
        if status == 200 or (400 <= status < 500 and status not in (408, 429) and error):
            if error in _RETRYABLE_SLACK_ERRORS:
                delay = self._retry_delay if retry_after is None else retry_after
                return RetryableError(
                    f"{self.name}: {what}: Slack says {error}, retrying in {delay:.0f} s",
                    delay=delay,
                )
            kind = _MessageGone if error in _GONE else PermanentError
            return kind(f"{self.name}: {what} refused by Slack: {self.scrub(error)}")
        failure = failure_for_status(
            f"{self.name}: {what}",
            status,
            self.scrub(error or "no reason"),
            retry_after=retry_after,
            default_delay=self._retry_delay,
        )
        assert isinstance(failure, RetryableError | PermanentError)
        return failure


def _parse_ref(name: str, ref: str) -> tuple[str, str]:
    channel, sep, ts = ref.partition(":")
    if not sep or not channel or not ts:
        raise PermanentError(f"{name}: message ref {ref!r} is not CHANNEL:TS")
    return channel, ts


class SlackNotifier:
    """Bot-token Slack: one message per incident, edited as it moves, with a thread."""

    supports_update = True

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        name: str = "slack",
        base_url: str = "https://slack.com/api/",
        timeout: float = 10.0,
        retry_delay: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        from slack_sdk import WebClient

        if not token.strip():
            raise ValueError(f"{name}: the Slack bot token is empty (notify.slack.token)")
        if not channel.strip():
            raise ValueError(f"{name}: a Slack channel is needed (notify.slack.channel)")
        self.name = name
        self.channel = channel
        self._calls = _SlackCalls(name, token, timeout, retry_delay, clock or SystemClock())
        self._client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
            logger=_sdk_logger(name, token),
        )

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r}, channel={self.channel!r})"

    def send(self, message: Notification) -> Delivery:
        response = self._calls.call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=self.channel,
                text=render_text(message),
                blocks=render_blocks(message),
                metadata=slack_metadata(message),
                unfurl_links=False,
            ),
        )
        return Delivery(self.name, f"{response['channel']}:{response['ts']}")

    def update(self, message_ref: str, message: Notification) -> Delivery:
        """Edit the incident's message to the new state, then reply in its thread (a new
        message when the old one was deleted)."""
        channel, ts = _parse_ref(self.name, message_ref)
        try:
            self._calls.call(
                "chat.update",
                lambda: self._client.chat_update(
                    channel=channel,
                    ts=ts,
                    text=render_text(message),
                    blocks=render_blocks(message),
                    metadata=slack_metadata(message),
                ),
            )
        except _MessageGone:
            # someone deleted the incident's message: say it again as a new one
            return self.send(message)
        self._calls.call(
            "chat.postMessage (thread)",
            lambda: self._client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                text=render_text(message),
                metadata=slack_metadata(message),
                unfurl_links=False,
            ),
        )
        return Delivery(self.name, message_ref)


class SlackWebhookNotifier:
    """Incoming-webhook Slack: cannot edit, so each state is a new message naming the incident."""

    supports_update = False

    def __init__(
        self,
        url: str,
        *,
        name: str = "slack",
        timeout: float = 10.0,
        retry_delay: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        from slack_sdk.webhook import WebhookClient

        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: the incoming-webhook URL must start with https://")
        self.name = name
        self._clock = clock or SystemClock()
        self._retry_delay = retry_delay
        self._calls = _SlackCalls(name, url, timeout, retry_delay, self._clock)
        self._client = WebhookClient(
            url,
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
            logger=_sdk_logger(name, url),
        )

    def __repr__(self) -> str:
        return f"SlackWebhookNotifier(name={self.name!r})"

    def send(self, message: Notification) -> Delivery:
        text = f"{headline(message)} (incident {message.incident_key})\n{render_text(message)}"
        response = self._calls.call(
            "incoming webhook",
            lambda: self._client.send(
                text=text, blocks=render_blocks(message), metadata=slack_metadata(message)
            ),
        )
        if 200 <= response.status_code < 300:
            return Delivery(self.name, message.dedupe_key)
        headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
        raise failure_for_status(
            f"{self.name}: incoming webhook",
            response.status_code,
            self._calls.scrub(str(response.body or "no reason")[:200]),
            retry_after=retry_after_seconds(headers.get("retry-after"), self._clock.now()),
            default_delay=self._retry_delay,
        )

    def update(self, message_ref: str, message: Notification) -> Delivery:
        return self.send(message)
