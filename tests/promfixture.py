"""A real Prometheus for tests and benchmarks, over data written as OpenMetrics.

Used by the ``prometheus`` fixture in ``tests/conftest.py`` and by
``bench/prometheus_query_range.py``. Steps: write the series as OpenMetrics text
(``write_openmetrics``), backfill it into TSDB blocks with ``promtool tsdb
create-blocks-from openmetrics``, start Debian's ``prometheus`` on a free loopback port
with an empty scrape config, wait for ``/-/ready``, and stop it (terminate, then kill).

Things that bite:

* blocks older than the retention are deleted at start-up, so the retention is huge
  and the data should sit in the recent past;
* Prometheus fills a query step from the newest sample within the *lookback delta*
  (5 min by default), so a gap shorter than that reads as the last value repeated.
  ``PromServer(lookback=...)`` sets ``--query.lookback-delta``; with a lookback shorter
  than the data's interval, a range query on the data's own grid returns exactly the
  samples written and a gap reads as missing.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PromServer",
    "SeriesData",
    "backfill",
    "free_port",
    "missing_binaries",
    "running_prometheus",
    "write_openmetrics",
]

_EMPTY_CONFIG = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"


@dataclass(frozen=True)
class SeriesData:
    """One series to backfill: metric name, labels and (unix seconds, value) points."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    points: Sequence[tuple[float, float]] = ()


def missing_binaries() -> str | None:
    """Why a real Prometheus cannot start here, or ``None`` when it can."""
    absent = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if absent:
        return (
            f"needs {' and '.join(absent)} on PATH: apt-get install --no-install-recommends "
            "prometheus"
        )
    return None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # shortest text that reads back as the same float


def write_openmetrics(path: Path, series: Iterable[SeriesData]) -> Path:
    """Write ``series`` as OpenMetrics text (gauges, grouped per metric, ``# EOF`` last)."""
    by_name: dict[str, list[SeriesData]] = {}
    for item in series:
        by_name.setdefault(item.name, []).append(item)
    with path.open("w", encoding="utf-8") as out:
        for name, members in by_name.items():
            out.write(f"# TYPE {name} gauge\n")
            for item in members:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(item.labels.items()))
                head = f"{name}{{{labels}}}" if labels else name
                out.writelines(f"{head} {_number(v)} {ts:.3f}\n" for ts, v in sorted(item.points))
        out.write("# EOF\n")
    return path


def backfill(openmetrics: Path, data_dir: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics``; raises with promtool's output."""
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(openmetrics),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill of {openmetrics} failed: {proc.stderr[-2000:]}")


class PromServer:
    """A ``prometheus`` process on 127.0.0.1 over ``data_dir``; a context manager.

    ``config`` is the prometheus.yml text: by default nothing is scraped, so the data is
    exactly what was backfilled."""

    def __init__(
        self,
        data_dir: Path,
        *,
        lookback: str = "5m",
        config: str = _EMPTY_CONFIG,
        ready_timeout: float = 60.0,
    ):
        self.data_dir = data_dir
        self.lookback = lookback
        self.config = config
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = data_dir.parent / f"prometheus-{self.port}.log"

    def start(self) -> str:
        config = self.data_dir.parent / "prometheus.yml"
        config.write_text(self.config, encoding="utf-8")
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    # Backfilled blocks older than the retention would be deleted.
                    "--storage.tsdb.retention.time=100y",
                    f"--query.lookback-delta={self.lookback}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self._proc.returncode}: {self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.05)  # waiting for a real server to come up
        self.stop()
        raise RuntimeError(f"prometheus not ready after {self.ready_timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self._log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> PromServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_prometheus(
    workdir: Path, series: Iterable[SeriesData], *, lookback: str = "5m"
) -> Iterator[str]:
    """Backfill ``series`` into a fresh TSDB under ``workdir``, serve it, yield the URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = write_openmetrics(workdir / "data.om.txt", series)
    data_dir = workdir / "tsdb"
    backfill(text, data_dir)
    with PromServer(data_dir, lookback=lookback) as server:
        yield server.url
