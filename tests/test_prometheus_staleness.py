"""Staleness end to end: a real Prometheus scrapes a real exporter, a series vanishes,
and ``PrometheusSource.query_range`` shows it as NaN from then on (not its last value
for the 5-minute lookback, and never 0), while an exported ``NaN`` reads as NaN.

Stale markers cannot be backfilled (OpenMetrics has no way to write one), so this test
scrapes: an exporter on 127.0.0.1 serves the metrics, Prometheus scrapes it five
times a second, and the test waits on Prometheus' own answers, never on a fixed sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import promfixture
import pytest

from vigil.agent.prometheus import PrometheusSource

pytestmark = [pytest.mark.prometheus, pytest.mark.slow, pytest.mark.timeout(90)]


class Exporter:
    """A /metrics endpoint whose exposition text the test changes between scrapes."""

    def __init__(self) -> None:
        self.lines = {
            "a": 'vigil_stale_gauge{series="a"} 1.5',
            "b": 'vigil_stale_gauge{series="b"} 2.25',
            "nan": 'vigil_stale_gauge{series="nan"} NaN',
        }
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = ["# TYPE vigil_stale_gauge gauge", *exporter.lines.values(), ""]
                body = "\n".join(lines).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,))

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def scraping(tmp_path: Path) -> Iterator[tuple[Exporter, PrometheusSource]]:
    reason = promfixture.missing_binaries()
    if reason:
        pytest.skip(reason)
    with Exporter() as exporter:
        config = (
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n"
            "scrape_configs:\n  - job_name: exporter\n"
            f"    static_configs:\n      - targets: ['{exporter.address}']\n"
        )
        with (
            promfixture.PromServer(tmp_path / "tsdb", config=config) as server,
            PrometheusSource(server.url, timeout=5, retries=0) as source,
        ):
            yield exporter, source


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll the real Prometheus until ``check`` holds (it scrapes every 200 ms)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def samples_of(source: PrometheusSource, series: str) -> int:
    got = source.query(f'count_over_time(vigil_stale_gauge{{series="{series}"}}[1h])')
    return int(got[0].value) if got else 0


def test_a_vanished_series_is_nan_after_its_stale_marker(
    scraping: tuple[Exporter, PrometheusSource],
) -> None:
    exporter, source = scraping
    began = datetime.now(UTC)
    wait_for(lambda: samples_of(source, "b") >= 3, "three scrapes of series b")
    del exporter.lines["b"]  # the next scrape misses it: Prometheus writes a stale marker
    seen_a = samples_of(source, "a")
    wait_for(lambda: samples_of(source, "a") >= seen_a + 4, "four scrapes after b vanished")

    step = timedelta(milliseconds=100)
    got = {
        s.labels["series"]: s
        for s in source.query_range("vigil_stale_gauge", began, datetime.now(UTC), step)
    }
    assert set(got) == {"a", "b", "nan"}
    a, b, nan = got["a"], got["b"], got["nan"]
    assert np.array_equal(a.timestamps, b.timestamps)
    # b had its value while exported ...
    b_seen = b.values[~np.isnan(b.values)]
    assert b_seen.size >= 2 and set(b_seen.tolist()) == {2.25}
    # ... and is NaN after the stale marker, not 2.25 repeated for the 5-min lookback.
    last_b = int(np.flatnonzero(~np.isnan(b.values))[-1])
    assert last_b < len(b) - 5
    assert np.isnan(b.values[last_b + 1 :]).all()
    assert (a.values[last_b + 1 :] == 1.5).all()  # a kept being scraped meanwhile
    assert not (b.values == 0).any()
    # An exported NaN is a NaN value, present as long as the series is.
    assert nan.valid_count() == 0 and len(nan) == len(a)
