"""A small HTTP proxy on 127.0.0.1 in front of the real API server, for the faults a
real server will not give on cue: 429 with Retry-After, a hung answer (timeout), a
dropped connection, and "someone else wrote first" (a real 409 conflict).

Tests queue ``Fault``s; each request takes the first fault whose method and path match,
everything else is forwarded unchanged (over TLS, with the client's own bearer token).
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Fault:
    """What to do to the next request matching ``method`` and the regex ``path``.

    ``kind``: "status" (answer ``status`` with ``headers``), "drop" (close the connection
    without answering), "hang" (say nothing until the test ends), "before" (call
    ``action`` first, then forward — e.g. another writer's update)."""

    kind: str
    method: str = ".*"
    path: str = ".*"
    status: int = 429
    headers: dict[str, str] = field(default_factory=dict)
    action: Callable[[], None] | None = None
    times: int = 1


class FaultProxy:
    """``with FaultProxy(upstream, ca) as proxy: proxy.url`` — a plain-HTTP front door."""

    def __init__(self, upstream: str, ca: str) -> None:
        self.upstream = urlsplit(upstream)
        self.context = ssl.create_default_context(cafile=ca)
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, str]] = []  # (method, path?query, what happened)
        self.release = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                fault = proxy._take(self.command, self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if fault is None or fault.kind == "before":
                    if fault is not None and fault.action is not None:
                        fault.action()
                    status = self._forward(body)
                    proxy._note(self.command, self.path, f"forwarded {status}")
                elif fault.kind == "status":
                    proxy._note(self.command, self.path, f"answered {fault.status}")
                    payload = (
                        b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                        b'"message":"injected by the test proxy","reason":"TooManyRequests",'
                        + f'"code":{fault.status}}}'.encode()
                    )
                    self.send_response(fault.status)
                    for key, value in fault.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                elif fault.kind == "drop":
                    proxy._note(self.command, self.path, "dropped")
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif fault.kind == "hang":
                    proxy._note(self.command, self.path, "hung")
                    proxy.release.wait(30)
                    self.close_connection = True

            def _forward(self, body: bytes | None) -> int:
                conn = http.client.HTTPSConnection(
                    proxy.upstream.hostname or "127.0.0.1",
                    proxy.upstream.port,
                    context=proxy.context,
                    timeout=30,
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()
                return answer.status

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if re.fullmatch(fault.method, method) and re.search(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _note(self, method: str, path: str, what: str) -> None:
        with self._lock:
            self.seen.append((method, path, what))

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
