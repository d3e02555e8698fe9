"""A generic webhook ``Notifier``: each message is one signed JSON POST.

Built by the agent's wiring from ``notify.webhook``; the outbox delivery worker
(``vigil.agent.delivery``) calls ``send``. A webhook cannot edit what it sent, so every
state of an incident is a new POST carrying ``incident_key`` (to group them) and
``dedupe_key`` (the same on a retry: receivers drop what they have seen).

Signature (docs/deploy.md shows a receiver verifying it): with a secret configured,
``X-Vigil-Timestamp`` holds Unix seconds and ``X-Vigil-Signature`` holds
``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + raw body). A receiver
recomputes it over the raw bytes and refuses timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from vigil.actions._http_failures import (
    ScrubFilter,
    failure_for_status,
    retry_after_seconds,
    scrub,
)
from vigil.actions.rendering import render_text
from vigil.core import Clock, Delivery, Notification, PermanentError, RetryableError, SystemClock

__all__ = [
    "DEDUPE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookNotifier",
    "sign",
    "verify_signature",
    "webhook_payload",
]

SIGNATURE_HEADER = "X-Vigil-Signature"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
DEDUPE_HEADER = "X-Vigil-Dedupe-Key"


def webhook_payload(message: Notification) -> dict[str, Any]:
    """The JSON body (version 1): the notification plus its rendered text."""
    return {
        "version": 1,
        "incident_key": message.incident_key,
        "dedupe_key": message.dedupe_key,
        "state": message.state.value,
        "severity": message.severity.value,
        "title": message.title,
        "text": message.text,
        "rendered": render_text(message),
        "namespace": message.namespace,
        "created_at": message.created_at.isoformat(),
        "fields": dict(message.fields),
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime,
    tolerance: float = 300.0,
) -> None:
    """Check a received webhook; raise ``PermanentError`` saying what is wrong."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower())
    signature = lowered.get(SIGNATURE_HEADER.lower())
    if not timestamp or not signature:
        raise PermanentError(f"webhook: missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        sent = float(timestamp)
    except ValueError:
        raise PermanentError(f"webhook: {TIMESTAMP_HEADER} is not Unix seconds") from None
    if abs(now.timestamp() - sent) > tolerance:
        raise PermanentError(
            f"webhook: timestamp is {now.timestamp() - sent:.0f} s off, more than {tolerance:.0f} s"
        )
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise PermanentError("webhook: signature does not match the body and timestamp")


class WebhookNotifier:
    """POSTs signed JSON to ``url``. Errors: ``RetryableError`` / ``PermanentError``."""

    supports_update = False

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        name: str = "webhook",
        timeout: float = 10.0,
        retry_delay: float = 30.0,
        clock: Clock | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: webhook URL must start with http:// or https://")
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be > 0 seconds, got {timeout}")
        self.name = name
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._retry_delay = retry_delay
        self._clock = clock or SystemClock()
        self._headers = dict(headers or {})
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        # httpx logs each request's URL at info level; a webhook URL often holds a token
        for library in ("httpx", "httpcore"):
            ScrubFilter.install(logging.getLogger(library), url)

    def __repr__(self) -> str:  # never shows the URL or the secret
        return f"WebhookNotifier(name={self.name!r})"

    def close(self) -> None:
        self._client.close()

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._url, self._secret))

    def send(self, message: Notification) -> Delivery:
        body = json.dumps(webhook_payload(message), sort_keys=True, separators=(",", ":")).encode()
        now = self._clock.now()
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "User-Agent": "vigil-webhook/1",
            DEDUPE_HEADER: message.dedupe_key,
            "Idempotency-Key": message.dedupe_key,
        }
        if self._secret:
            timestamp = str(int(now.timestamp()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(
                f"{self.name}: no answer within {self._timeout:g} s", delay=self._retry_delay
            ) from exc
        except httpx.TransportError as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            raise RetryableError(
                f"{self.name}: could not reach the receiver ({reason})", delay=self._retry_delay
            ) from exc
        if response.is_success:
            return Delivery(self.name, message.dedupe_key)
        raise failure_for_status(
            self.name,
            response.status_code,
            self._scrub(response.reason_phrase or "no reason"),
            retry_after=retry_after_seconds(response.headers.get("Retry-After"), now),
            default_delay=self._retry_delay,
        )

    def update(self, message_ref: str, message: Notification) -> Delivery:
        """A webhook cannot edit: the new state is a new POST naming the incident."""
        return self.send(message)
