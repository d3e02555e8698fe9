"""Serves the twin's current metrics in the Prometheus text exposition format (0.0.4).

``render(store)`` writes the newest sample of every live series, grouped into
families with ``# HELP``/``# TYPE`` lines (histograms as ``_bucket``/``_sum``/``_count``
under one family). ``ExpositionServer`` serves it at ``/metrics`` with the standard
library's ``http.server`` on a configurable host and port, so a real Prometheus can
scrape the twin while it runs (trying vigil end to end on a laptop). Started by the
CLI or tests; reads ``vigil.sim.history.SeriesStore`` only.
"""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vigil.sim.history import SeriesStore

__all__ = ["CONTENT_TYPE", "ExpositionServer", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SUFFIXES = ("_bucket", "_sum", "_count")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, types: dict[str, str]) -> str:
    if name in types:
        return name
    for suffix in _SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    return name


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(store: SeriesStore) -> str:
    """The newest row's live series as exposition text (empty before the first step)."""
    if store.rows == 0:
        return ""
    row = store.data[store.rows - 1]
    families: dict[str, list[str]] = {}
    for meta in store.series:
        if meta.last_row is not None:
            continue
        value = float(row[meta.col])
        if math.isnan(value):
            continue
        name = meta.labels["__name__"]
        labels = ",".join(
            f'{k}="{_escape(v)}"' for k, v in sorted(meta.labels.items()) if k != "__name__"
        )
        families.setdefault(_family(name, store.types), []).append(
            f"{name}{{{labels}}} {_number(value)}"
        )
    out: list[str] = []
    for family in sorted(families):
        kind = store.types.get(family, "untyped")
        out.append(f"# HELP {family} {_escape(store.help.get(family, family))}")
        out.append(f"# TYPE {family} {kind}")
        out.extend(families[family])
    return "\n".join(out) + "\n"


class ExpositionServer:
    """``GET /metrics`` on ``host:port`` (port 0: any free port; see ``.port``)."""

    def __init__(self, store: SeriesStore, host: str = "127.0.0.1", port: int = 9464) -> None:
        self._store = store

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                body = render(outer._store).encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would drown the demo's output

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot serve twin metrics on {host}:{port}: {exc.strerror}; "
                "choose another port (0 picks a free one)"
            ) from exc
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> ExpositionServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="vigil-sim-exposition", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ExpositionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
