"""Scaling replay benchmark: vigil's predictive policy vs an emulated Kubernetes HPA.

Run: ``.venv/bin/python bench/scaling.py ../shared/data/traces/ [--lag 60] [--interpolate]``
(one or more CSV files or folders of them). Prints, per trace and pooled, under-provisioned
minutes and %, replica-hours and scaling actions for HPA and vigil. ``--out`` writes
vigil's decisions (``timestamp,replicas``): a file for one trace, a folder for several.
The same function backs ``vigil bench scaling``: ``vigil.detectors.replay.replay_scaling``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from vigil.detectors.replay import ReplayReport, format_report, replay_scaling


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(path.glob("*.csv")))
        elif path.is_file():
            found.append(path)
        else:
            sys.exit(f"{raw}: no such file or folder (give trace CSVs or folders of them)")
    if not found:
        sys.exit("no trace CSV files found")
    return found


def _one(job: tuple[Path, float | None, float, Path | None, bool, float, bool]) -> ReplayReport:
    path, capacity, lag, out, interpolate, delay, floor = job
    return replay_scaling(path, capacity, lag, out, interpolate, delay_s=delay, with_floor=floor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("traces", nargs="+", help="trace CSV files or folders")
    parser.add_argument("--capacity", type=float, default=None, help="demand per pod at 100 %%")
    parser.add_argument("--lag", type=float, default=60.0, help="pod start-up lag, seconds")
    parser.add_argument("--delay", type=float, default=30.0, help="metric delay, seconds")
    parser.add_argument("--interpolate", action="store_true", help="linear demand between points")
    parser.add_argument("--out", type=Path, default=None, help="decisions CSV (or folder)")
    parser.add_argument(
        "--floor", action="store_true", help="also replay the HPA with vigil as its minReplicas"
    )
    parser.add_argument("--jobs", type=int, default=2, help="traces replayed in parallel")
    args = parser.parse_args()
    files = _files(args.traces)
    outs: list[Path | None] = [None] * len(files)
    if args.out is not None:
        if len(files) == 1:
            outs = [args.out]
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            outs = [args.out / f"{f.stem}.decisions.csv" for f in files]
    jobs = [
        (f, args.capacity, args.lag, o, args.interpolate, args.delay, args.floor)
        for f, o in zip(files, outs, strict=True)
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        reports = list(pool.map(_one, jobs))
    mode = "linear interpolation" if args.interpolate else "held constant"
    print(f"lag {args.lag:g} s, metrics {args.delay:g} s late, demand {mode} between points")
    print(format_report(reports))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
