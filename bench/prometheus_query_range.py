"""Benchmark: one large ``query_range`` through ``PrometheusSource`` vs raw HTTP + JSON.

Starts a real Prometheus (``tests/promfixture.py``) over 1,000 series × 1 day at a
1-minute resolution under one metric name, then times, in the same run and interleaved,

  (a) ``PrometheusSource.query_range(selector, start, end, 1 min)`` → ``list[Series]``
  (b) raw ``GET /api/v1/query_range`` with the same parameters and the same wire
      encoding as (a) (uncompressed) + ``json.loads``
  (b') the same raw GET with requests' default headers, which ask for gzip
  (c) for reference, prometheus-api-client used naively (``custom_query_range`` then
      ``MetricRangeDataFrame``; gzip, as requests asks by default),

and prints the medians and the ratios (issue 3's target: a/b ≤ 1.5). (b) is the fair
baseline: (a) and (b) move the same bytes. Against (b') the source looks much better
still, because Prometheus spends seconds gzipping a large answer.

    .venv/bin/python bench/prometheus_query_range.py [--series 1000] [--hours 24] [--runs 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import promfixture

from vigil.agent.prometheus import PrometheusSource

METRIC = "bench_requests_per_second"


def make_series(count: int, start: int, points: int, step: int) -> list[promfixture.SeriesData]:
    rng = np.random.default_rng(42)
    times = [float(start + k * step) for k in range(points)]
    out = []
    for i in range(count):
        # Values with many digits, as real rates are; the JSON size depends on it.
        values = rng.normal(100.0 + i, 10.0, points).round(6)
        out.append(
            promfixture.SeriesData(
                METRIC,
                {"instance": f"pod-{i:04d}", "job": "bench", "namespace": "shop"},
                list(zip(times, values.tolist(), strict=True)),
            )
        )
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--step", type=int, default=60, help="seconds, data and query")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-naive", action="store_true", help="skip (c), which is slow")
    args = parser.parse_args()

    reason = promfixture.missing_binaries()
    if reason:
        print(f"skipped: {reason}")
        return 2
    step = args.step
    points = int(args.hours * 3600 // step) + 1
    # Recent past, on the step grid: inside the retention, outside the head block.
    end_s = (int(time.time()) // 3600 - 2) * 3600
    start_s = end_s - (points - 1) * step
    with tempfile.TemporaryDirectory(prefix="vigil-bench-prom-") as tmp:
        began = time.perf_counter()
        data = make_series(args.series, start_s, points, step)
        workdir = Path(tmp)
        text = promfixture.write_openmetrics(workdir / "data.om.txt", data)
        del data
        promfixture.backfill(text, workdir / "tsdb")
        print(
            f"backfilled {args.series} series × {points} points "
            f"({text.stat().st_size / 1e6:.0f} MB OpenMetrics) in "
            f"{time.perf_counter() - began:.1f}s"
        )
        with promfixture.PromServer(workdir / "tsdb") as server:
            return run(server.url, args, start_s, end_s, points)


def run(url: str, args: argparse.Namespace, start_s: int, end_s: int, points: int) -> int:
    selector = METRIC
    start = datetime.fromtimestamp(start_s, UTC)
    end = datetime.fromtimestamp(end_s, UTC)
    step = timedelta(seconds=args.step)
    source = PrometheusSource(url, timeout=120)
    session = requests.Session()
    params = {"query": selector, "start": str(start_s), "end": str(end_s), "step": str(args.step)}

    def via_source() -> object:
        return source.query_range(selector, start, end, step)

    def raw(headers: dict[str, str]) -> object:
        resp = session.get(f"{url}/api/v1/query_range", params=params, headers=headers, timeout=120)
        resp.raise_for_status()
        return json.loads(resp.content)

    def raw_plain() -> object:
        return raw({"Accept-Encoding": "identity"})

    def raw_gzip() -> object:
        return raw({})

    def naive() -> object:
        from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

        client = PrometheusConnect(url=url)
        result = client.custom_query_range(selector, start, end, f"{args.step}s", timeout=120)
        return MetricRangeDataFrame(result)

    # Warm-up (page cache, connection) and a correctness check of (a) against (b).
    got = via_source()
    doc = raw_plain()
    assert isinstance(got, list)
    assert isinstance(doc, dict)
    rows = doc["data"]["result"]
    assert len(got) == len(rows) == args.series, (len(got), len(rows))
    truth = {r["metric"]["instance"]: [float(v) for _, v in r["values"]] for r in rows}
    for series in got:
        assert len(series) == points
        assert series.values.tolist() == truth[series.labels["instance"]]
    del doc, rows, truth, got

    cases: dict[str, Callable[[], object]] = {
        "source": via_source,
        "raw": raw_plain,
        "raw_gzip": raw_gzip,
    }
    if not args.no_naive:
        cases["naive"] = naive
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():  # interleaved, so drift hits all cases alike
            # Each case starts from the same heap: the previous answer is freed (and the
            # collector run) outside the timed region, so no case pays for another's.
            gc.collect()
            seconds, out = timed(fn)
            times[name].append(seconds)
            del out
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"query_range {selector!r}: {args.series} series × {points} points "
        f"(step {args.step}s), median of {args.runs} runs"
    )
    print(f"  (a) PrometheusSource.query_range      {med['source']:.3f} s")
    print(f"  (b) raw HTTP GET + json.loads          {med['raw']:.3f} s")
    print(f"  (b') the same, gzip (requests default) {med['raw_gzip']:.3f} s")
    if "naive" in med:
        print(f"  (c) prometheus-api-client, naive       {med['naive']:.3f} s")
    breakdown(url, params, runs=args.runs, start_s=start_s, end_s=end_s, step_s=args.step)
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    ratio = med["source"] / med["raw"]
    print(f"  ratio a/b  = {ratio:.2f}  (target <= 1.5)")
    print(f"  ratio a/b' = {med['source'] / med['raw_gzip']:.2f}")
    if "naive" in med:
        print(f"  ratio c/b = {med['naive'] / med['raw']:.2f}")
    return 0 if ratio <= 1.5 else 1


def breakdown(
    url: str, params: dict[str, str], *, runs: int, start_s: int, end_s: int, step_s: int
) -> None:
    """Where (a)'s time goes, stage by stage, on one fetched answer."""
    from vigil.agent._prometheus_decode import (
        Grid,
        decode_matrix,
        parse_json,
        paused_gc,
        unwrap,
    )
    from vigil.agent.prometheus import _stitch

    session = requests.Session()
    headers = {"Accept-Encoding": "identity"}
    grid = Grid.aligned(start_s * 1000, end_s * 1000, step_s * 1000)

    def fetch() -> bytes:
        return session.get(f"{url}/api/v1/query_range", params=params, headers=headers).content

    body = fetch()
    doc = parse_json(body)
    result = unwrap(doc, ("matrix",))[1]
    parts = [list(decode_matrix(result, grid))]

    def parse_decode_free() -> object:
        with paused_gc():
            answer = parse_json(body)
            out = list(decode_matrix(unwrap(answer, ("matrix",))[1], grid))
            del answer
        return out

    stages: dict[str, Callable[[], object]] = {
        f"HTTP fetch, {len(body) / 1e6:.0f} MB uncompressed": fetch,
        "json.loads, collector on (as in (b))": lambda: json.loads(body),
        "json.loads, collector paused": lambda: parse_json(body),
        "decode points to index/value arrays": lambda: list(decode_matrix(result, grid)),
        "parse + decode + free, paused (as in (a))": parse_decode_free,
        "stitch into NaN grids + Series": lambda: _stitch(parts, grid, "q"),
    }
    print("  where (a)'s time goes (medians):")
    for name, fn in stages.items():
        samples = []
        for _ in range(runs):
            gc.collect()
            seconds, out = timed(fn)
            samples.append(seconds)
            del out
        print(f"    {name:<42} {statistics.median(samples):.3f} s")


if __name__ == "__main__":
    sys.exit(main())
