"""The outbox delivery worker: drains queued notifications with retries, backoff and order.

``NotifyStage`` queues messages in the store's outbox; ``DeliveryWorker.drain`` (called
by the stage each tick and by ``DeliveryWorker.run`` in its own thread between ticks)
hands them to the channels' ``Notifier``s:

- **At least once.** A message leaves the outbox only when its channel said yes
  (``mark_delivered``); a crash between sending and marking sends it again, with the
  same dedupe key so the receiver can drop it.
- **In order per incident.** Only the oldest undelivered message of each (channel,
  incident) may go; the next waits until it is delivered (or dead-lettered).
- **Backoff.** A ``RetryableError`` reschedules the message after
  ``max(error.delay, base * 2**n)`` (``n`` the channel's consecutive failures; capped,
  with jitter) and pauses its channel until then, so a Slack outage costs one attempt
  per backoff step, not one per message.
- **Give up** only on a ``PermanentError`` or after ``max_attempts``: the message becomes
  a dead letter shown by ``vigil status``; the incident's next message then goes.
- **Rate limit** per channel (token bucket): over the limit, messages wait, none is lost.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Protocol

from vigil.core import (
    Clock,
    Delivery,
    Notifier,
    OutboxItem,
    PermanentError,
    RetryableError,
)

__all__ = ["DeliveryStats", "DeliveryWorker", "RateLimiter"]

log = logging.getLogger(__name__)

_FAR_FUTURE = timedelta(days=365 * 100)


class _Outbox(Protocol):
    def due_messages(self, now: datetime, limit: int = 50) -> list[OutboxItem]: ...

    def mark_delivered(self, item_id: int, delivery: Delivery, *, at: datetime) -> None: ...

    def mark_failed(self, item_id: int, error: str, *, retry_at: datetime | None) -> None: ...

    def message_ref(self, channel: str, incident_key: str) -> str | None: ...


@dataclass
class DeliveryStats:
    """Counts of one or more drains (``+=`` adds them up)."""

    attempts: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0  # waited for their incident's earlier message, a pause or the rate limit

    def __iadd__(self, other: DeliveryStats) -> DeliveryStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


class RateLimiter:
    """A token bucket per channel: ``per_minute`` messages a minute, bursts up to that many."""

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError(f"rate limit must be >= 1 message per minute, got {per_minute}")
        self.per_minute = per_minute
        self._tokens: dict[str, float] = {}
        self._at: dict[str, datetime] = {}

    def take(self, channel: str, now: datetime) -> bool:
        """Spend one token if there is one."""
        tokens = self._tokens.get(channel, float(self.per_minute))
        last = self._at.get(channel, now)
        elapsed = max(0.0, (now - last).total_seconds())
        tokens = min(float(self.per_minute), tokens + elapsed * self.per_minute / 60.0)
        self._at[channel] = now
        if tokens >= 1.0:
            self._tokens[channel] = tokens - 1.0
            return True
        self._tokens[channel] = tokens
        return False


class DeliveryWorker:
    """Delivers the outbox to ``notifiers`` (by channel name). Thread-safe: one drain at a time."""

    def __init__(
        self,
        outbox: _Outbox,
        notifiers: Mapping[str, Notifier],
        clock: Clock,
        *,
        rate_limit_per_minute: int = 20,
        max_attempts: int = 50,
        base_delay: float = 5.0,
        max_delay: float = 600.0,
        scan_limit: int = 2000,
        rng: random.Random | None = None,
        observer: Callable[[DeliveryStats], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if not 0 < base_delay <= max_delay:
            raise ValueError("backoff needs 0 < base_delay <= max_delay (seconds)")
        self._outbox = outbox
        self._notifiers = dict(notifiers)
        self._clock = clock
        self._limiter = RateLimiter(rate_limit_per_minute)
        self._max_attempts = max_attempts
        self._base = base_delay
        self._max_delay = max_delay
        self._scan = scan_limit
        self._rng = rng or random.Random()
        self._paused: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}  # consecutive retryable failures per channel
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.totals = DeliveryStats()
        self._observer = observer  # e.g. Metrics.count_delivery

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._notifiers)

    def backoff(self, attempts: int, suggested: float) -> float:
        """Seconds before attempt ``attempts + 1``: exponential, capped, ±10 % jitter."""
        step = min(self._max_delay, self._base * 2 ** min(attempts, 30))
        jittered = step * (0.9 + 0.2 * self._rng.random())
        return max(suggested, jittered)

    def paused_until(self, channel: str) -> datetime | None:
        return self._paused.get(channel)

    def drain(self, now: datetime | None = None) -> DeliveryStats:
        """One pass over the outbox: deliver what may go now."""
        with self._lock:
            stats = self._drain(now or self._clock.now())
            self.totals += stats
        if self._observer is not None:
            self._observer(stats)
        return stats

    def _drain(self, now: datetime) -> DeliveryStats:
        stats = DeliveryStats()
        # Every live undelivered message in queue order; the first one seen of each
        # (channel, incident) is that incident's head, and only a head may go.
        pending = self._outbox.due_messages(now + _FAR_FUTURE, limit=self._scan)
        blocked: set[tuple[str, str]] = set()
        for item in pending:
            key = (item.channel, item.notification.incident_key)
            if key in blocked:
                stats.deferred += item.next_attempt_at <= now
                continue
            if not self._try(item, now, stats):
                # Still undelivered: the incident's later messages wait behind it.
                blocked.add(key)
        return stats

    def _try(self, item: OutboxItem, now: datetime, stats: DeliveryStats) -> bool:
        """Deliver ``item`` if it may go now; ``True`` when it left the queue (sent or dead)."""
        if item.next_attempt_at > now:
            return False
        paused = self._paused.get(item.channel)
        if paused is not None and paused > now:
            stats.deferred += 1
            return False
        notifier = self._notifiers.get(item.channel)
        if notifier is None:
            have = ", ".join(self._notifiers) or "none"
            self._outbox.mark_failed(
                item.id,
                f"channel {item.channel} is not configured (configured: {have})",
                retry_at=None,
            )
            stats.dead += 1
            return True
        if not self._limiter.take(item.channel, now):
            self._paused[item.channel] = now + timedelta(seconds=60.0 / self._limiter.per_minute)
            stats.deferred += 1
            return False
        return self._deliver(item, notifier, now, stats)

    def _deliver(
        self, item: OutboxItem, notifier: Notifier, now: datetime, stats: DeliveryStats
    ) -> bool:
        message = item.notification
        stats.attempts += 1
        try:
            ref = None
            if notifier.supports_update:
                ref = item.message_ref or self._outbox.message_ref(
                    item.channel, message.incident_key
                )
            delivery = notifier.update(ref, message) if ref else notifier.send(message)
        except RetryableError as exc:
            attempts = item.attempts + 1
            if attempts >= self._max_attempts:
                self._outbox.mark_failed(
                    item.id, f"gave up after {attempts} attempts: {exc}", retry_at=None
                )
                stats.dead += 1
                log.error("outbox %d (%s) dead after %d attempts: %s", item.id, item.channel,
                          attempts, exc)  # fmt: skip
                return True
            # Back off by the channel's run of failures, not the message's: after an
            # outage, one lost response must not park the channel for the longest step.
            streak = self._failures.get(item.channel, 0)
            self._failures[item.channel] = streak + 1
            retry_at = now + timedelta(seconds=self.backoff(streak, exc.delay))
            self._outbox.mark_failed(item.id, str(exc), retry_at=retry_at)
            self._paused[item.channel] = retry_at
            stats.retried += 1
            log.warning("outbox %d to %s failed (attempt %d), retry at %s: %s", item.id,
                        item.channel, attempts, retry_at.isoformat(), exc)  # fmt: skip
            return False
        except PermanentError as exc:
            self._outbox.mark_failed(item.id, str(exc), retry_at=None)
            stats.dead += 1
            log.error("outbox %d to %s refused, dead letter: %s", item.id, item.channel, exc)
            return True
        self._outbox.mark_delivered(item.id, delivery, at=now)
        self._paused.pop(item.channel, None)
        self._failures.pop(item.channel, None)
        stats.delivered += 1
        return True

    # -- between ticks ----------------------------------------------------------------

    def wake(self) -> None:
        """Ask the background loop to drain now (new messages were queued)."""
        self._wake.set()

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        """Drain every ``poll`` seconds (or when woken) until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.drain()
            except Exception:  # the thread's boundary: a store hiccup must not end delivery
                log.exception("outbox drain failed; trying again in %.0f s", poll)
            self._wake.wait(poll)
            self._wake.clear()

    def start(self, stop: threading.Event, *, poll: float = 1.0) -> threading.Thread:
        """``run`` in a daemon thread named ``vigil-delivery``."""
        thread = threading.Thread(
            target=self.run, args=(stop,), kwargs={"poll": poll}, name="vigil-delivery", daemon=True
        )
        thread.start()
        return thread
