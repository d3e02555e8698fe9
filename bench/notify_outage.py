"""Outage benchmark: incidents pile up while the receiver is down, then it recovers.

Real HTTP to a local stand-in for the webhook receiver and Slack's Web API
(tests/fakereceiver.py), a real SQLite outbox, the delivery worker on a simulated
clock (the outage lasts an hour of simulated time, seconds of wall time). Prints, per
channel: messages queued, delivery attempts, retried attempts, delivered, duplicates
the receiver suppressed (lost responses make vigil resend messages that had arrived),
lost (must be 0), order per incident, and how long after recovery the backlog cleared.

Usage: python bench/notify_outage.py [--incidents 100] [--minutes 60] [--lost 3]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakereceiver import running_receiver
from outage import run_outage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--minutes", type=int, default=60, help="outage length (simulated)")
    parser.add_argument("--lost", type=int, default=3, help="responses lost after recovery")
    parser.add_argument("--rate", type=int, default=20, help="messages a minute per channel")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the retries' warnings are the point, not news
    bad = 0
    for kind in ("webhook", "slack"):
        with tempfile.TemporaryDirectory() as tmp, running_receiver() as (url, state):
            began = time.monotonic()
            figures = run_outage(
                Path(tmp) / "vigil.db",
                url,
                state,
                kind=kind,
                incidents=args.incidents,
                outage_minutes=args.minutes,
                lost_responses=args.lost,
                rate_limit_per_minute=args.rate,
            )
            wall = time.monotonic() - began
        shown = ", ".join(f"{k}={v}" for k, v in figures.items() if k != "channel")
        print(f"{kind}: {shown}, wall_s={wall:.1f}")
        bad += figures["lost"] != 0 or not figures["in_order"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
