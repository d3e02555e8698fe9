"""The daemon's playbook stage as a real process, for the chaos test (never collected).

``python playbook_chaos_worker.py MODE STORE STATE``. The cluster is the twin
(``vigil.sim``), pickled to the file STATE with the calls made so far, so it outlives
the process. MODE ``act`` submits the predictive scale-up of shop/cart and, after the
twin applied the change, saves it, prints ``applied`` and blocks until it is killed
(between "the cluster changed" and "the journal says succeeded"). MODE ``restart``
plays the restarted daemon: reconcile, then see the same finding again on a tick, and
print what happened as one JSON line.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.playbook_findings import T0, forecast
from tests.playbook_twin import CART, TwinCluster, full_twin
from vigil.agent.store import SqliteStore
from vigil.playbooks import (
    Guardrails,
    GuardrailSettings,
    PlaybookEngine,
    builtin_playbooks,
)


def main(mode: str, store_path: Path, state: Path) -> None:
    finding = forecast(
        peak=150.0,
        details={"capacity": 100.0, "desired_replicas": 7},
        labels={"namespace": "shop", "deployment": "cart"},
    )
    if state.exists():
        saved = pickle.loads(state.read_bytes())
        cluster = TwinCluster(saved["twin"])
        cluster.calls = saved["calls"]
    else:
        cluster = TwinCluster(full_twin(days=0.1))

    def save_and_hang() -> None:
        state.write_bytes(pickle.dumps({"twin": cluster.twin, "calls": cluster.calls}))
        print("applied", flush=True)
        sys.stdin.readline()  # killed here

    with SqliteStore.open(store_path) as store:
        engine = PlaybookEngine(
            Guardrails(store, GuardrailSettings(dry_run=False)),
            cluster=cluster,
            playbooks=builtin_playbooks(),
        )
        if mode == "act":
            cluster.after_apply = save_and_hang
            engine.tick([finding], T0)
            raise SystemExit("the act worker should have been killed")
        reconciled = engine.reconcile(T0)  # the restarted daemon's first tick
        again = engine.tick([finding], T0)
        rows = store.journal_list(limit=100)
        state.write_bytes(pickle.dumps({"twin": cluster.twin, "calls": cluster.calls}))
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
                    "replicas": cluster.twin.cluster.get_workload(CART).replicas,
                    "calls": [(c[0], c[1]) for c in cluster.calls if not c[2]],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
