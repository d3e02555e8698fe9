"""How a failed delivery over HTTP maps onto vigil's error tree (private to the notifiers).

``vigil.actions.webhook`` and ``vigil.actions.slack`` call ``failure_for_status`` with
the status a receiver answered: timeouts, 408, 429 and 5xx are ``RetryableError``s
(with the receiver's ``Retry-After`` when it sent one), any other 4xx is a
``PermanentError`` naming the channel and the reason. ``scrub`` takes secrets (tokens,
webhook URLs) out of any text before it reaches a message or a log line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime

from vigil.core import PermanentError, RetryableError, VigilError

__all__ = ["ScrubFilter", "failure_for_status", "retry_after_seconds", "scrub"]

# A receiver asking for more than a day is misconfigured; the outbox's own backoff
# takes over beyond that rather than parking a message for weeks.
_MAX_RETRY_AFTER = 86_400.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else ``None``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def failure_for_status(
    channel: str,
    status: int,
    reason: str,
    *,
    retry_after: float | None,
    default_delay: float,
) -> VigilError:
    """The error for an HTTP ``status`` other than success, with a message naming ``channel``."""
    if status == 429:
        delay = default_delay if retry_after is None else retry_after
        return RetryableError(
            f"{channel}: rate limited by the receiver (HTTP 429), retrying in {delay:.0f} s",
            delay=delay,
        )
    if status >= 500 or status == 408:
        delay = default_delay if retry_after is None else retry_after
        return RetryableError(
            f"{channel}: receiver failed (HTTP {status}: {reason}), retrying in {delay:.0f} s",
            delay=delay,
        )
    hint = {
        401: "check the token or signing secret",
        403: "check the token's scopes and that the bot is in the channel",
        404: "check the URL or channel name",
        410: "the webhook was removed: create a new one",
        413: "the message is too large for the receiver",
    }.get(status, "the receiver refused the message; fix the configuration or the receiver")
    return PermanentError(
        f"{channel}: receiver refused the message (HTTP {status}: {reason}); {hint}"
    )


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-trivial secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class ScrubFilter(logging.Filter):
    """A logger filter for HTTP libraries (httpx logs every request URL at info level,
    slack-sdk logs URLs and headers at debug): drops records below ``min_level`` and
    replaces ``secret`` in the rest. Owned per secret, so a notifier can replace its own."""

    def __init__(self, secret: str, *, min_level: int = logging.DEBUG) -> None:
        super().__init__()
        self.secret = secret
        self._min = min_level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self._min:
            return False
        text = record.getMessage()
        if self.secret and self.secret in text:
            record.msg, record.args = scrub(text, (self.secret,)), None
        return True

    @classmethod
    def install(
        cls, logger: logging.Logger, secret: str, *, min_level: int = logging.DEBUG
    ) -> None:
        """Add a filter for ``secret`` to ``logger`` (once per secret)."""
        if not any(isinstance(f, cls) and f.secret == secret for f in logger.filters):
            logger.addFilter(cls(secret, min_level=min_level))
