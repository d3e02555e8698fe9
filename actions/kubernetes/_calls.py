"""How the adapter makes every API request: throttled, bounded waits, errors translated.

``Caller`` wraps one request (a thunk) described by an ``Op``: it takes a token from
the client-side rate limiter (``qps``/``burst``), honours a 429 ``Retry-After`` up to a
bounded number of waits, and turns whatever the client raises into vigil's error tree.
``retry_conflicts`` reruns a whole read-modify-write when the write met a newer
``resourceVersion`` (409), so a retried write always starts from a fresh read.
``KubernetesCluster`` is the only user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from vigil.actions.kubernetes._errors import (
    ConflictPersisted,
    Op,
    is_disruption_budget,
    retry_after,
    translate,
    transport,
)

if TYPE_CHECKING:
    from vigil.actions.kubernetes.settings import KubernetesSettings

__all__ = ["Caller", "TokenBucket"]

T = TypeVar("T")
log = logging.getLogger(__name__)


class TokenBucket:
    """Client-side rate limit: ``qps`` requests per second on average, ``burst`` at once.

    Keeps one agent from flooding the API server during a storm of findings (client-go
    does the same). ``qps <= 0`` turns it off."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        monotonic: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._qps = qps
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._monotonic = monotonic
        self._sleep = sleep
        self._last = monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until one is there; returns the seconds waited."""
        if self._qps <= 0:
            return 0.0
        with self._lock:  # the daemon's HTTP thread and the scheduler may share a cluster
            return self._take()

    def _take(self) -> float:
        now = self._monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        wait = (1 - self._tokens) / self._qps
        self._sleep(wait)
        self._tokens = 0.0
        self._last = now + wait
        return wait


class Caller:
    """Runs API requests with throttling, bounded 429 waits and error translation."""

    def __init__(self, settings: KubernetesSettings, *, sleep: Callable[[float], None]) -> None:
        self._settings = settings
        self._sleep = sleep
        self._bucket = TokenBucket(
            settings.qps, settings.burst, monotonic=time.monotonic, sleep=sleep
        )

    def __call__(self, op: Op, request: Callable[[], T]) -> T:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        settings = self._settings
        waits = 0
        while True:
            self._bucket.take()
            try:
                return request()
            except ApiException as exc:
                if exc.status == 429 and not is_disruption_budget(exc):
                    wait = retry_after(exc, settings.retry_delay_s)
                    if waits < settings.rate_limit_retries and wait <= settings.max_retry_after_s:
                        waits += 1
                        log.info(
                            "%s: 429 from the API server, waiting %.1fs (%d/%d)",
                            op.target,
                            wait,
                            waits,
                            settings.rate_limit_retries,
                        )
                        self._sleep(wait)
                        continue
                raise translate(exc, op, delay=settings.retry_delay_s) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise transport(exc, op, delay=settings.retry_delay_s) from exc

    def retry_conflicts(self, target: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (fresh read, then a write carrying the read's resourceVersion)
        again on a 409, up to ``conflict_retries`` more times."""
        tries = self._settings.conflict_retries + 1
        for number in range(1, tries + 1):
            try:
                return attempt()
            except ConflictPersisted as exc:
                if number == tries:
                    raise ConflictPersisted(
                        f"{target}: still conflicting after {tries} fresh read-and-write "
                        f"attempts (another writer keeps changing it): {exc}",
                        delay=self._settings.retry_delay_s,
                    ) from exc
                log.info("%s: conflict on write, re-reading (attempt %d/%d)", target, number, tries)
        raise AssertionError("unreachable")  # pragma: no cover
