"""The HTTP surface of ``vigil run``: health, readiness, metrics, Alertmanager, approvals.

``AgentServer`` runs a stdlib ``ThreadingHTTPServer`` in a daemon thread beside the
scheduler. The standard library is enough for six small routes and adds no dependency
or event loop to the daemon; every request is short (a store write at most), the
request socket has a timeout (a slow client cannot hold a thread forever) and bodies
over ``max_body_bytes`` are refused before they are read.

Routes:
- ``GET /healthz``: 200 while the process serves (liveness).
- ``GET /readyz``: 200 when the store answers and, on the leader, the last tick ended
  without errors less than ``ready_max_age`` seconds ago (a follower is ready: it serves
  metrics); 503 with the reasons otherwise.
- ``GET /metrics``: Prometheus exposition of ``Metrics``.
- ``POST /alertmanager``: Alertmanager webhook v4, ``Authorization: Bearer <token>``
  compared in constant time; firing alerts become findings, resolved alerts close them.
- ``GET /approve?…``: a confirmation page for a signed link (GET never decides: chat
  apps and mail scanners prefetch links); ``POST /approve``: the decision, moving the
  journal row pending-approval → approved/denied with a compare-and-set.

Anything malformed, oversized or unauthenticated gets a 4xx JSON ``{"error": reason}``
and changes nothing. A follower answers 503 (with ``Retry-After``) on the two routes
that write, so Alertmanager retries against the leader.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from vigil.agent.alertmanager import PayloadError, apply_alerts, parse_payload
from vigil.agent.approval_links import LinkError
from vigil.core import (
    ActionStatus,
    Clock,
    Finding,
    JournalEntry,
    NotFoundError,
    PermanentError,
    RetryableError,
    TickRecord,
    TransitionConflict,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vigil.agent.approval_links import ApprovalLinks
    from vigil.agent.metrics import Metrics

__all__ = ["AgentServer", "ServerStore"]

log = logging.getLogger(__name__)


class ServerStore(Protocol):
    """What the server needs of the store."""

    def recent_ticks(self, limit: int = 10) -> list[TickRecord]: ...

    def record_finding(self, finding: Finding) -> bool: ...

    def resolve_finding(self, finding_id: str, at: datetime) -> None: ...

    def journal_get(self, action_id: int) -> JournalEntry: ...

    def journal_transition(
        self,
        action_id: int,
        status: ActionStatus,
        *,
        at: datetime,
        expect: Sequence[ActionStatus] | None = None,
        message: str = "",
    ) -> JournalEntry: ...


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, data: dict[str, Any], *headers: tuple[str, str]) -> _Answer:
    return _Answer(status, json.dumps(data).encode() + b"\n", "application/json", headers)


def _page(status: int, title: str, body: str) -> _Answer:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>vigil: "
        f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}"
        "</body></html>"
    )
    return _Answer(status, doc.encode(), "text/html; charset=utf-8")


class AgentServer:
    """Owns the HTTP server thread. ``start()`` binds and returns the bound port."""

    def __init__(
        self,
        store: ServerStore,
        metrics: Metrics,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        alertmanager_token: str | None = None,
        links: ApprovalLinks | None = None,
        max_body_bytes: int = 1_048_576,
        ready_max_age: float = 300.0,
        is_leader: Callable[[], bool] = lambda: True,
        request_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.links = links
        self.max_body_bytes = max_body_bytes
        self.ready_max_age = timedelta(seconds=ready_max_age)
        self.is_leader = is_leader
        self._expected_auth = (
            f"Bearer {alertmanager_token}".encode() if alertmanager_token else None
        )
        self._host = host
        self._port = port
        self._timeout = request_timeout
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one write route at a time keeps CAS messages simple
        self.started_at = clock.now()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> int:
        server = self
        handler = type("Handler", (_Handler,), {"app": server, "timeout": self._timeout})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
            name="vigil-http", daemon=True,
        )  # fmt: skip
        self._thread.start()
        port = int(self._httpd.server_address[1])
        log.info("HTTP server listening on %s:%d", self._host, port)
        return port

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> AgentServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routes ----------------------------------------------------------------------

    def readiness(self) -> tuple[bool, list[str]]:
        """``(ready, reasons)`` for ``/readyz``."""
        try:
            ticks = self.store.recent_ticks(5)
        except (RetryableError, PermanentError) as exc:
            return False, [f"store unavailable: {exc}"]
        if not self.is_leader():
            return True, ["follower: not ticking, serving health and metrics"]
        now = self.clock.now()
        ended = [t.ended_at for t in ticks if t.ended_at is not None and not t.errors]
        last_ok = max(ended, default=None)
        notes = []
        if ticks and ticks[0].errors:
            notes.append("last tick failed: " + "; ".join(ticks[0].errors)[:500])
        if last_ok is not None:
            age = (now - last_ok).total_seconds()
            if age <= self.ready_max_age.total_seconds():
                return True, notes or ["ok"]  # one failed tick alone does not drain traffic
            return False, [f"last successful tick was {age:.0f} s ago", *notes]
        if now - self.started_at <= self.ready_max_age:
            return True, notes or ["starting: no successful tick yet"]
        limit = self.ready_max_age.total_seconds()
        return False, [f"no successful tick in the {limit:.0f} s since start", *notes]

    def alertmanager(self, headers: dict[str, str], body: bytes) -> _Answer:
        if self._expected_auth is None:
            return self._reject(
                "/alertmanager", 403, "disabled", "set server.alertmanager_token to accept alerts"
            )
        got = headers.get("authorization", "").encode()
        if not hmac.compare_digest(got, self._expected_auth):
            return self._reject("/alertmanager", 401, "auth", "missing or wrong bearer token",
                                ("WWW-Authenticate", 'Bearer realm="vigil"'))  # fmt: skip
        try:
            alerts = parse_payload(body)
        except PayloadError as exc:
            return self._reject("/alertmanager", 400, "payload", str(exc))
        if not self.is_leader():
            return _json(503, {"error": "not the leader; retry"}, ("Retry-After", "5"))
        with self._lock:
            result = apply_alerts(self.store, alerts, now=self.clock.now())
        for status, what, n in (
            ("firing", "new", result.new),
            ("firing", "repeat", result.repeat),
            ("resolved", "resolved", result.resolved),
            ("resolved", "unknown", result.unknown),
        ):
            if n:
                self.metrics.alerts.labels(status=status, result=what).inc(n)
        return _json(200, {"new": result.new, "repeat": result.repeat,
                           "resolved": result.resolved, "unknown": result.unknown})  # fmt: skip

    def approval_page(self, params: dict[str, str]) -> _Answer:
        if self.links is None:
            return self._reject(
                "/approve", 403, "disabled", "set server.approval_secret to use links"
            )
        try:
            signed = self.links.check(params, now=self.clock.now())
            entry = self.store.journal_get(signed.action_id)
        except LinkError as exc:
            self.metrics.rejected.labels(path="/approve", reason="link").inc()
            return _page(403, "Link not valid", f"<p>{html.escape(str(exc))}</p>")
        except NotFoundError:
            return _page(
                404, "No such action", f"<p>action {signed.action_id} is not in the journal</p>"
            )
        verb = signed.decision
        hidden = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
            for k, v in params.items() if k in ("action", "decision", "expires", "sig")
        )  # fmt: skip
        what = html.escape(f"#{entry.id} {entry.playbook}: {entry.action} {entry.target}")
        body = (
            f"<p>{what}</p><p>status: {html.escape(str(entry.status))}</p>"
            f"<p>{html.escape(entry.reason)}</p>"
            f"<form method='post' action='/approve'>{hidden}"
            f"<button type='submit'>{html.escape(verb.capitalize())} action #{entry.id}</button>"
            "</form>"
        )
        return _page(200, f"{verb.capitalize()} action #{entry.id}?", body)

    def approve(self, params: dict[str, str]) -> _Answer:
        if self.links is None:
            return self._reject(
                "/approve", 403, "disabled", "set server.approval_secret to use links"
            )
        try:
            signed = self.links.check(params, now=self.clock.now())
        except LinkError as exc:
            return self._reject("/approve", 403, "link", str(exc))
        if not self.is_leader():
            return _json(503, {"error": "not the leader; retry"}, ("Retry-After", "5"))
        status = ActionStatus.APPROVED if signed.decision == "approve" else ActionStatus.DENIED
        try:
            with self._lock:
                entry = self.store.journal_transition(
                    signed.action_id, status, at=self.clock.now(),
                    expect=[ActionStatus.PENDING_APPROVAL],
                    message=f"{status} through a signed link",
                )  # fmt: skip
        except TransitionConflict as exc:
            return self._reject("/approve", 409, "conflict", str(exc))
        except NotFoundError as exc:
            return self._reject("/approve", 404, "unknown", str(exc))
        self.metrics.approvals.labels(decision=signed.decision).inc()
        log.info("action %d %s through a signed link", entry.id, entry.status)
        return _json(200, {"action": entry.id, "status": str(entry.status)})

    def _reject(
        self, path: str, status: int, reason: str, message: str, *headers: tuple[str, str]
    ) -> _Answer:
        self.metrics.rejected.labels(path=path, reason=reason).inc()
        return _json(status, {"error": message}, *headers)


class _Handler(BaseHTTPRequestHandler):
    app: AgentServer
    server_version = "vigil"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _route(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))

    def _body(self, path: str) -> bytes | None:
        """The request body, or ``None`` after answering 411/413/400 (without reading it)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self._send(
                self.app._reject(
                    path, 411, "length", "send Content-Length; chunked bodies are refused"
                )
            )
            return None
        if length is None:
            self._send(self.app._reject(path, 411, "length", "Content-Length is required"))
            return None
        try:
            size = int(length)
        except ValueError:
            self._send(self.app._reject(path, 400, "length", "Content-Length is not a number"))
            return None
        if size < 0 or size > self.app.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as a request
            self._send(self.app._reject(
                path, 413, "size", f"body of {size} bytes is over the limit of "
                f"{self.app.max_body_bytes} bytes (server.max_body_bytes)"))  # fmt: skip
            return None
        return self.rfile.read(size)

    def do_GET(self) -> None:
        path, params = self._route()
        if path == "/healthz":
            return self._send(_json(200, {"status": "ok"}))
        if path == "/readyz":
            ready, reasons = self.app.readiness()
            return self._send(_json(200 if ready else 503, {"ready": ready, "reasons": reasons}))
        if path == "/metrics":
            body, content_type = self.app.metrics.render()
            return self._send(_Answer(200, body, content_type))
        if path == "/approve":
            return self._send(self.app.approval_page(params))
        self._send(_json(404, {"error": f"no route {path}"}))
        return None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        path, params = self._route()
        if path not in ("/alertmanager", "/approve"):
            self.close_connection = True
            return self._send(_json(404, {"error": f"no route POST {path}"}))
        body = self._body(path)
        if body is None:
            return None
        if path == "/alertmanager":
            headers = {k.lower(): v for k, v in self.headers.items()}
            return self._send(self.app.alertmanager(headers, body))
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return self._send(self.app.approve({**params, **form}))
