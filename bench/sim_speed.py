"""How fast the twin runs: simulated seconds per wall-clock second for the default
scenario (12 workloads, 6 nodes, 8 incidents) over N days, plus a PromQL query mix on
the result. Prints its figures; run ``python bench/sim_speed.py [--days 3] [--step 30]``.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from vigil.sim import build_twin, default_scenario

QUERIES = (
    "sum by (namespace, service) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, namespace, service) "
    "(rate(http_request_duration_seconds_bucket[5m])))",
    'sum by (namespace, service) (rate(http_requests_total{code=~"5.."}[5m])) '
    "/ sum by (namespace, service) (rate(http_requests_total[5m]))",
    "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total[5m]))",
    "increase(kube_pod_container_status_restarts_total[10m]) > 0",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--step", type=float, default=30.0, help="seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    scenario = default_scenario(args.seed, args.days, step=timedelta(seconds=args.step))
    t0 = time.perf_counter()
    twin = build_twin(scenario)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    steps = twin.advance_to(scenario.end)
    ran = time.perf_counter() - t0
    sim_seconds = args.days * 86400
    print(f"build: {built:.2f} s")
    print(
        f"{args.days:g} days at {args.step:g} s steps: {steps} steps in {ran:.2f} s wall "
        f"= {ran / steps * 1e3:.3f} ms/step, {sim_seconds / ran:,.0f} sim-s per wall-s"
    )
    size = twin.store.data.nbytes / 2**20
    print(f"series with samples: {twin.series_count()}, history {size:.0f} MiB")
    for query in QUERIES:
        t0 = time.perf_counter()
        instant = twin.metrics.query(query)
        t1 = time.perf_counter()
        ranged = twin.metrics.query_range(
            query, scenario.end - timedelta(hours=6), scenario.end, timedelta(minutes=1)
        )
        t2 = time.perf_counter()
        print(
            f"  {(t1 - t0) * 1e3:7.1f} ms instant ({len(instant):3d} samples), "
            f"{(t2 - t1) * 1e3:7.1f} ms 6 h range at 1 min ({len(ranged):3d} series): {query[:60]}"
        )
    for incident in twin.incidents():
        d = incident.as_dict()
        print(
            f"  {d['id']:28s} {d['target']:38s} impact {d['impacted_minutes']:6.1f} min, "
            f"recovered {d['recovered_at']}"
        )


if __name__ == "__main__":
    main()
