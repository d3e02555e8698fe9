"""A local HTTP server standing in for Slack's Web API, Slack incoming webhooks and a
generic webhook receiver, failing on cue.

Real HTTP on 127.0.0.1 (a ``ThreadingHTTPServer`` in a thread). Faults are scripted:
``receiver.script("500", "429:7", "timeout", "late")`` makes the next requests answer
500, 429 with ``Retry-After: 7``, stall past the client's timeout without processing,
or process and then stall (so the client retries a message that did arrive: a
duplicate the receiver drops by dedupe key). ``receiver.down = True`` answers 503 to
everything until cleared. Receivers dedupe by the key vigil sends and count what they
suppressed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    kind: str  # "post", "reply", "update", "webhook", "incoming"
    dedupe_key: str
    incident_key: str
    state: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes


@dataclass
class ReceiverState:
    token: str = "xoxb-test-token-0123456789"
    stall_seconds: float = 2.0
    down: bool = False
    faults: list[str] = field(default_factory=list)
    requests: int = 0
    accepted: list[Received] = field(default_factory=list)  # first sight of each key
    duplicates: int = 0
    updates: list[Received] = field(default_factory=list)
    slack_messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message
    replies: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    seen: set[tuple[str, str]] = field(default_factory=set)
    next_ts: int = 100
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _reply(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def do_POST(self) -> None:
        st = self.server.state
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with st.lock:
            st.requests += 1
            fault = st.faults.pop(0) if st.faults else ("down" if st.down else "")
        if fault == "down":
            return self._reply(503, {"ok": False, "error": "service_unavailable"})
        if fault == "500":
            return self._reply(500, {"ok": False, "error": "internal"})
        if fault.startswith("429"):
            after = fault.partition(":")[2] or "1"
            return self._reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": after})
        if fault == "timeout":
            st.release.wait(st.stall_seconds)
            return self._reply(504, {})
        status, body = self._process(raw)
        if fault == "late":
            st.release.wait(st.stall_seconds)
        self._reply(status, body)
        return None

    # -- what each path does -----------------------------------------------------------

    def _process(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"ok": False, "error": "invalid_json"}
        if path.startswith("/api/"):
            return self._slack_api(path.removeprefix("/api/"), body)
        if path.startswith("/services/"):
            meta = body.get("metadata", {}).get("event_payload", {})
            self._accept("incoming", meta, body, raw)
            return 200, {}
        if path == "/hook":
            self._accept("webhook", body, body, raw)
            return 200, {"received": body.get("dedupe_key")}
        return 404, {"error": "no such path"}

    def _accept(
        self, kind: str, meta: dict[str, Any], body: dict[str, Any], raw: bytes = b""
    ) -> None:
        st = self.server.state
        key = str(meta.get("dedupe_key", ""))
        item = Received(
            kind,
            key,
            str(meta.get("incident_key", "")),
            str(meta.get("state", "")),
            body,
            dict(self.headers.items()),
            raw,
        )
        with st.lock:
            if kind == "update":
                st.updates.append(item)
                return
            if (kind, key) in st.seen:
                st.duplicates += 1
                return
            st.seen.add((kind, key))
            st.accepted.append(item)

    def _slack_api(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        st = self.server.state
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        channel = str(body.get("channel", ""))
        if channel in ("#nope", "C0NOPE"):
            return 200, {"ok": False, "error": "channel_not_found"}
        channel_id = "C0" + channel.lstrip("#").upper() if channel.startswith("#") else channel
        meta = body.get("metadata", {}).get("event_payload", {})
        if method == "chat.postMessage":
            with st.lock:
                st.next_ts += 1
                ts = f"1700000000.{st.next_ts:06d}"
                st.slack_messages[ts] = {
                    "channel": channel_id,
                    "text": body.get("text"),
                    "blocks": body.get("blocks"),
                    "meta": meta,
                }
                if body.get("thread_ts"):
                    st.replies[str(body["thread_ts"])].append(ts)
            self._accept("reply" if body.get("thread_ts") else "post", meta, body)
            return 200, {"ok": True, "channel": channel_id, "ts": ts}
        if method == "chat.update":
            ts = str(body.get("ts", ""))
            with st.lock:
                if ts not in st.slack_messages:
                    return 200, {"ok": False, "error": "message_not_found"}
                st.slack_messages[ts].update(
                    text=body.get("text"), blocks=body.get("blocks"), meta=meta
                )
            self._accept("update", meta, body)
            return 200, {"ok": True, "channel": channel_id, "ts": ts}
        return 200, {"ok": False, "error": "unknown_method"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ReceiverState


@contextlib.contextmanager
def running_receiver() -> Iterator[tuple[str, ReceiverState]]:
    """Yields ``(base_url, state)``; Slack's API is at ``base_url + "/api/"``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ReceiverState()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
