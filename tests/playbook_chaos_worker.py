"""The daemon's playbook stage as a real process, for the chaos test (never collected).

``python playbook_chaos_worker.py MODE STORE STATE``. The cluster is the tests'
``FakeCluster`` whose replicas and calls are kept in the JSON file STATE, so they
outlive the process. MODE ``act`` submits the predictive scale-up of shop/web and,
after the cluster applied the change, prints ``applied`` and blocks until it is killed
(between "the cluster changed" and "the journal says succeeded"). MODE ``restart``
plays the restarted daemon: reconcile, then see the same finding again on a tick,
and print what happened as one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_cluster import FakeCluster
from tests.playbook_findings import T0, forecast
from vigil.agent.store import SqliteStore
from vigil.core import ActionResult, ManualClock, ObjectRef
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    builtin_playbooks,
)

WEB = ObjectRef.parse("deployment/shop/web")


class FileCluster(FakeCluster):
    def __init__(self, state: Path, *, hang_after_scale: bool) -> None:
        super().__init__(ManualClock(T0))
        self.state = state
        self.hang = hang_after_scale
        self.add_workload("deployment/shop/web", 4)
        self.add_node("node-a")
        if state.exists():
            saved = json.loads(state.read_text())
            self.set_workload(
                str(WEB), replicas=saved["replicas"], ready_replicas=saved["replicas"]
            )
            self.calls = [tuple(c) for c in saved["calls"]]

    def save(self) -> None:
        wl = self.workloads[WEB]
        self.state.write_text(json.dumps({"replicas": wl.replicas, "calls": self.calls}))

    def scale(self, ref: ObjectRef, replicas: int, *, dry_run: bool) -> ActionResult:
        result = super().scale(ref, replicas, dry_run=dry_run)
        self.save()
        if self.hang and not dry_run:
            print("applied", flush=True)
            sys.stdin.readline()  # killed here
        return result


def main(mode: str, store_path: Path, state: Path) -> None:
    finding = forecast(
        peak=150.0,
        details={"capacity": 100.0, "desired_replicas": 7},
        labels={"namespace": "shop", "deployment": "web"},
    )
    cluster = FileCluster(state, hang_after_scale=mode == "act")
    books = builtin_playbooks()
    with SqliteStore.open(store_path) as store:
        engine = PlaybookEngine(
            Guardrails(store, GuardrailSettings(dry_run=False)), cluster=cluster, playbooks=books
        )
        if mode == "act":
            engine.tick([finding], T0)
            raise SystemExit("the act worker should have been killed")
        now = T0  # the restarted daemon's first tick
        reconciled = engine.reconcile(now)
        again = engine.tick([finding], now)
        rows = store.journal_list(limit=100)
        print(
            json.dumps(
                {
                    "reconciled": [
                        (o.entry.id, o.entry.status.value, o.entry.message)
                        for o in reconciled
                        if o.entry
                    ],
                    "again": [bool(o.decision and o.decision.duplicate) for o in again],
                    "rows": [(r.id, r.action.value, r.status.value) for r in rows],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
