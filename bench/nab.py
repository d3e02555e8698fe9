"""NAB benchmark: stream NAB data through vigil's detection, write NAB's results layout.

    .venv/bin/python bench/nab.py --data ../shared/data/nab --out /tmp/nab-results
    ../shared/tools/nab/nab_score.sh vigil /tmp/nab-results \\
        --save-thresholds bench/nab_thresholds.json

Calls ``vigil.detectors.nab.run_nab`` (the function ``vigil bench nab`` calls) with a
rich progress bar, then prints the scoring command.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vigil.detectors.nab import DETECTORS, run_nab


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, required=True, help="NAB root (or its data/ folder)")
    ap.add_argument("--out", type=Path, required=True, help="results root to write")
    ap.add_argument("--name", default="vigil", help="detector name in the results layout")
    ap.add_argument("--detector", choices=DETECTORS, default=None, help="members to run")
    ap.add_argument("--workers", type=int, default=2, help="processes (one file each)")
    args = ap.parse_args()
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]NAB[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("starting", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=name)

        results = run_nab(
            args.data,
            args.out,
            name=args.name,
            detector=args.detector,
            progress=progress,
            workers=args.workers,
        )
    rows = sum(r.rows for r in results)
    print(f"{len(results)} files, {rows} rows in {time.perf_counter() - started:.1f} s")
    print(f"score: ../shared/tools/nab/nab_score.sh {args.name} {args.out}")


if __name__ == "__main__":
    main()
