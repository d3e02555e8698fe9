"""Run a question file against the NLQ test world, offline: per-question PASS/FAIL, then
the summary (intent and entity accuracy, behaviour and adversarial pass rates, p95).

    python bench/nlq_eval.py --questions tests/evals/questions.yaml [--fixture PATH]

The world is loaded for real (``tests/nlqworld.py``): a store built from the fixture with
the real ``SqliteStore``, a real Prometheus backfilled so queries give the fixture's
values at its "now". Needs the Debian prometheus/promtool binaries and ``../shared``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import nlqworld  # noqa: E402

from vigil.agent.prometheus import PrometheusSource  # noqa: E402
from vigil.core import ManualClock, QueryError  # noqa: E402
from vigil.nlq.answer import Answer  # noqa: E402
from vigil.nlq.engine import Engine  # noqa: E402
from vigil.nlq.evaluation import Observation, load_questions, question_text, report_lines, run  # noqa: E402


def default_fixture() -> Path:
    env = os.environ.get("VIGIL_SHARED_DIR")
    for shared in [Path(env)] if env else [REPO.parent / "shared", REPO.parent.parent / "shared"]:
        if (shared / "notes" / "nlq-fixture.yaml").is_file():
            return shared / "notes" / "nlq-fixture.yaml"
    return REPO / "tests" / "evals" / "fixture.yaml"  # the copy shipped with the tests


class RecordingSource:
    """A ``MetricSource`` wrapper that records query errors (PromQL that did not parse)."""

    def __init__(self, inner: PrometheusSource) -> None:
        self.inner = inner
        self.errors: list[str] = []

    def query(self, promql: str, at: Any = None) -> Any:
        try:
            return self.inner.query(promql, at=at)
        except QueryError as exc:
            self.errors.append(f"{promql}: {exc}")
            raise

    def query_range(self, promql: str, start: Any, end: Any, step: Any) -> Any:
        try:
            return self.inner.query_range(promql, start, end, step)
        except QueryError as exc:
            self.errors.append(f"{promql}: {exc}")
            raise

    def series(self, selector: str, start: Any, end: Any) -> Any:
        return self.inner.series(selector, start, end)

    def label_values(self, label: str, selector: str | None = None) -> Any:
        return self.inner.label_values(label, selector)


def evaluate(
    world: nlqworld.World, items: Sequence[Mapping[str, Any]], cluster: Any = None
) -> list[str]:
    source = RecordingSource(PrometheusSource(world.prom_url, timeout=30, retries=1))
    reader = nlqworld.SqlReader(world.store_path)
    engine = Engine(metrics=source, store=reader, cluster=cluster, clock=ManualClock(world.now))
    engine.inventory()  # warm the name cache once, as a chat session does
    services = sorted(engine.inventory().services)
    before = nlqworld.action_statuses(world.store_path)

    def ask(item: Mapping[str, Any], history: Sequence[str]) -> Observation:
        previous: Answer | None = None
        for q in history:
            previous = engine.ask(q, previous)
        source.errors.clear()
        reader.statements.clear()
        began = time.perf_counter()
        crashed = ""
        try:
            answer = engine.ask(question_text(item), previous)
            data = answer.as_json()
        except Exception as exc:
            crashed = f"{type(exc).__name__}: {exc}"
            answer, data = None, {"intent": "", "answer": "", "queries": []}
        took = time.perf_counter() - began
        writes = sum(
            1 for sql, _ in reader.statements if not sql.lstrip().upper().startswith("SELECT")
        )
        writes += cluster.writes() if cluster is not None else 0
        statuses = nlqworld.action_statuses(world.store_path)
        return Observation(
            answer=data,
            seconds=took,
            source_seconds=sum(q.seconds for q in answer.queries) if answer else 0.0,
            crashed=crashed,
            writes=writes + (statuses != before),
            query_errors=list(source.errors),
            actions_rows=len(statuses),
            action_statuses=statuses,
        )

    return report_lines(run(items, ask, services))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", type=Path, default=REPO / "tests" / "evals" / "questions.yaml"
    )
    parser.add_argument("--fixture", type=Path, default=None)
    parser.add_argument(
        "--kube", action="store_true", help="also load the pods on a real kube-apiserver"
    )
    args = parser.parse_args(argv)
    items = load_questions(args.questions)
    args.fixture = args.fixture or default_fixture()
    began = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        nlqworld.running_world(args.fixture, Path(tmp)) as world,
        contextlib.ExitStack() as stack,
    ):
        cluster = stack.enter_context(_kube(world, args.fixture, Path(tmp))) if args.kube else None
        print(f"world up in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        for line in evaluate(world, items, cluster):
            print(line)
    return 0


@contextlib.contextmanager
def _kube(world: nlqworld.World, fixture: Path, tmp: Path) -> Iterator[nlqworld.RecordingCluster]:
    """A real kube-apiserver with the fixture's pods (``tests/kubefixture.py``)."""
    from tests import kubefixture
    from vigil.actions.kubernetes import KubernetesCluster

    shared = fixture.parent.parent if fixture.parent.name == "notes" else REPO.parent / "shared"
    reason = kubefixture.skip_reason(shared)
    if reason:
        raise SystemExit(f"--kube: {reason}")
    (tmp / "kube").mkdir(parents=True, exist_ok=True)
    server = kubefixture.start(shared, tmp / "kube")
    try:
        nlqworld.load_kube(world.fixture, server.admin())
        yield nlqworld.RecordingCluster(KubernetesCluster(server.admin()))
    finally:
        kubefixture.stop(server.dir, shared)


if __name__ == "__main__":
    raise SystemExit(main())
