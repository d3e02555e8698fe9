"""Shadow mode on the demo: the twin's incidents as the people who label findings.

Runs ``vigil demo`` (the real tick on the digital twin) with a challenger configuration
in ``detection.shadow``, then labels every champion finding from the twin's ground
truth (true when it names the faulted workload, one of its pods or the node, and
started between the incident's impact and its recovery plus 15 minutes; false
otherwise), the way an on-call engineer would with ``vigil feedback``, and prints
``vigil shadow report`` on the demo's store. Labels come after the run, so nothing
detected saw them.

    .venv/bin/python bench/shadow_demo.py --days 1 --shadow '{"persistence_k": 3}'
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from vigil.agent.cli import app
from vigil.agent.config import Config
from vigil.agent.demo import IncidentOutcome, run_demo
from vigil.agent.store import SqliteStore
from vigil.core import FeedbackLabel, Finding

SLACK = timedelta(minutes=15)


def is_true(finding: Finding, incidents: list[IncidentOutcome]) -> bool:
    ref = finding.target
    for inc in incidents:
        if inc.impact_start is None:
            continue
        kind, _, rest = inc.target.partition("/")
        end = inc.impact_start + timedelta(minutes=inc.recovery_minutes_vigil or 60.0) + SLACK
        if not inc.impact_start - SLACK <= finding.started_at <= end:
            continue
        if kind == "node":
            if finding.labels.get("node") == rest or rest in finding.subject:
                return True
            continue
        namespace, _, name = rest.partition("/")
        if ref is None or ref.namespace != namespace:
            continue
        if ref.name == name or ref.name.startswith(f"{name}-"):
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shadow", default='{"persistence_k": 3}', help="challenger, as JSON")
    ap.add_argument("--out", type=Path, default=Path("vigil-shadow-demo"))
    args = ap.parse_args()
    shadow = json.loads(args.shadow)
    config = Config.model_validate(
        {"sim": {"days": args.days, "seed": args.seed}, "detection": {"shadow": shadow}}
    )
    began = time.perf_counter()
    result = run_demo(config, args.out, html=False)
    incidents = list(result.score.incidents)
    assert result.sim_start is not None
    start = result.sim_start
    with SqliteStore.open(result.store_path) as store:
        findings = store.findings_between(start, start + timedelta(days=args.days + 1))
        true = 0
        for f in findings:
            label = FeedbackLabel.TRUE_POSITIVE if is_true(f, incidents) else None
            label = label or FeedbackLabel.FALSE_POSITIVE
            true += label is FeedbackLabel.TRUE_POSITIVE
            store.record_feedback(f.id, label, at=f.observed_at)
    print(
        f"demo: seed {args.seed}, {args.days:g} day(s), {result.ticks} ticks, "
        f"{time.perf_counter() - began:.0f} s wall; challenger {shadow}"
    )
    print(f"champion findings labelled from ground truth: {len(findings)} ({true} true)")
    cfg = args.out / "shadow.yaml"
    cfg.write_text(
        json.dumps({"store": {"path": str(result.store_path)}, "detection": {"shadow": shadow}}),
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["--config", str(cfg), "shadow", "report"])
    print(out.output, end="")


if __name__ == "__main__":
    main()
