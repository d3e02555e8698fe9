"""The twin served live: paced by (fake) wall time, and scraped by a real Prometheus."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.sim import (
    ExpositionServer,
    SimSettings,
    Twin,
    build_twin,
    run_live,
    serve_live,
    small_scenario,
)

pytestmark = pytest.mark.timeout(60)


class FakeWall:
    """Wall time that moves only when the runner waits; stops after ``limit`` seconds."""

    def __init__(self, stop: threading.Event, limit: float) -> None:
        self.now = 0.0
        self.stop = stop
        self.limit = limit
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        if self.now >= self.limit:
            self.stop.set()


def test_run_live_keeps_pace_with_wall_time() -> None:
    twin = build_twin(small_scenario())
    start = twin.now
    stop = threading.Event()
    wall = FakeWall(stop, limit=310.0)
    steps = run_live(twin, stop, speed=1.0, monotonic=wall.monotonic, wait=wall.wait)
    # 310 wall seconds at 1x: ten 30 s steps, waiting one step between them.
    assert steps == 10 and twin.now == start + timedelta(seconds=300)
    assert all(w == pytest.approx(30.0) for w in wall.waits)


def test_run_live_fast_forward_stops_at_until() -> None:
    twin = build_twin(small_scenario())
    stop = threading.Event()
    wall = FakeWall(stop, limit=1e9)
    until = twin.now + timedelta(hours=1)
    steps = run_live(twin, stop, speed=600.0, until=until, monotonic=wall.monotonic, wait=wall.wait)
    assert steps == 120 and twin.now == until
    with pytest.raises(ValueError, match="speed"):
        run_live(twin, stop, speed=0)


def test_serve_live_serves_the_default_scenario_while_it_runs() -> None:
    stop = threading.Event()
    ready: list[tuple[str, Twin]] = []
    now = datetime(2026, 11, 23, 9, 0, 7, tzinfo=UTC)
    settings = SimSettings(seed=2, days=1, expose_port=0)
    worker = threading.Thread(
        target=serve_live,
        args=(settings, stop),
        kwargs={"now": now, "speed": 3000.0, "on_ready": lambda u, t: ready.append((u, t))},
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (ready and ready[0][1].store.rows > 5):
            time.sleep(0.05)  # waiting for the server thread to come up and step
        url, twin = ready[0]
        assert twin.store.start == now.timestamp() - 7  # floored to the 30 s step
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        assert "kube_deployment_spec_replicas" in text
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.mark.prometheus
def test_a_real_prometheus_scrapes_the_twin(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("needs the Debian prometheus package (apt-get install prometheus)")
    now = datetime.now(UTC).replace(microsecond=0)
    twin = build_twin(small_scenario(start=now - timedelta(minutes=1)))
    twin.advance_to(now)
    with ExpositionServer(twin.store, port=0) as server:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: twin\n    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
        )
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            api = f"http://127.0.0.1:{port}/api/v1/query?query="
            query = urllib.parse.quote('http_requests_total{service="cart",code="200"}')
            deadline = time.monotonic() + 45
            result: list = []  # type: ignore[type-arg]
            while time.monotonic() < deadline and not result:
                time.sleep(0.5)  # waiting for the real server to start and scrape
                try:
                    result = _get(api + query)["data"]["result"]
                except OSError:
                    continue
            assert result, "Prometheus never scraped the twin"
            scraped = float(result[0]["value"][1])
            ours = twin.metrics.query('http_requests_total{service="cart",code="200"}')[0].value
            assert scraped == ours
            up = _get(api + urllib.parse.quote('up{job="twin"}'))["data"]["result"]
            assert up[0]["value"][1] == "1"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
