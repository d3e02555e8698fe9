"""End to end against the NLQ test world: a real Prometheus backfilled from the fixture,
a real store built with ``SqliteStore``; a subset of ``tests/evals/questions.yaml`` (the
full set is ``bench/nlq_eval.py``), the chat's follow-ups, and LLM mode driven by a fake
chat model (skipped when the ``llm`` extra is absent). Nothing here may write: the
store's rows and statuses are compared before and after.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nlqworld
import pytest
from promfixture import missing_binaries

from vigil.agent.prometheus import PrometheusSource
from vigil.core import ManualClock, QueryError
from vigil.nlq import Engine, LlmSettings, run_chat
from vigil.nlq.evaluation import Observation, load_questions, question_text, run, summarise

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

EVALS = Path(__file__).resolve().parent / "evals"
SUBSET = {
    "top-01", "top-03", "val-01", "val-08", "trend-03", "lat-02", "err-02", "anom-01",
    "act-01", "act-02", "why-01", "why-02", "fc-01", "fc-04", "health-01", "pods-01",
    "cap-01", "err-01", "fu-01", "adv-01", "adv-03", "adv-05", "adv-06", "adv-08", "oos-03",
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[nlqworld.World]:
    reason = missing_binaries()
    if reason:
        pytest.skip(reason)
    with nlqworld.running_world(EVALS / "fixture.yaml", tmp_path_factory.mktemp("nlq")) as w:
        yield w


@pytest.fixture(scope="module")
def engine(world: nlqworld.World) -> Iterator[Engine]:
    reader = nlqworld.SqlReader(world.store_path)
    with PrometheusSource(world.prom_url, timeout=10, retries=0) as source:
        yield Engine(metrics=source, store=reader, clock=ManualClock(world.now))
    reader.close()


def test_question_subset_passes_and_writes_nothing(world: nlqworld.World, engine: Engine) -> None:
    items = [q for q in load_questions(EVALS / "questions.yaml") if q["id"] in SUBSET]
    assert len(items) == len(SUBSET)
    before = nlqworld.action_statuses(world.store_path)
    counts = nlqworld.table_counts(world.store_path)

    def ask(item: Mapping[str, Any], history: Sequence[str]) -> Observation:
        previous = None
        for q in history:
            previous = engine.ask(q, previous)
        began = time.perf_counter()
        answer = engine.ask(question_text(item), previous)
        took = time.perf_counter() - began
        statuses = nlqworld.action_statuses(world.store_path)
        return Observation(
            answer.as_json(), took, sum(q.seconds for q in answer.queries),
            writes=int(statuses != before), actions_rows=len(statuses), action_statuses=statuses,
        )  # fmt: skip

    results = run(items, ask, sorted(engine.inventory().services))
    failures = [
        (r.id, r.intent, [c for c in r.checks if not c[1]]) for r in results if not r.passed
    ]
    assert not failures
    summary = summarise(results)
    wrong = [(r.id, r.intent) for r in results if not (r.intent_ok or r.intent_alt)]
    assert not wrong
    assert summary["entity_accuracy"] >= 0.9
    assert summary["adversarial_pass_rate"] == 1.0
    assert summary["p95_offline_seconds"] < 1.0
    assert nlqworld.table_counts(world.store_path) == counts


def test_sql_reaches_the_store_only_as_parameters(world: nlqworld.World, engine: Engine) -> None:
    answer = engine.ask("actions on cart'; DROP TABLE actions; --")
    sqls = [q for q in answer.queries if q.kind == "sql"]
    assert all("DROP" not in q.text and "cart'" not in q.text for q in sqls)
    assert nlqworld.table_counts(world.store_path)["actions"] == 6


def test_store_reader_refuses_writes(world: nlqworld.World) -> None:
    reader = nlqworld.SqlReader(world.store_path)
    with pytest.raises(QueryError, match=r"refused"):
        reader.run_sql("DELETE FROM actions")
    reader.close()
    assert nlqworld.table_counts(world.store_path)["actions"] == 6


def test_chat_keeps_context_for_follow_ups(engine: Engine) -> None:
    script = iter(
        ["how many 500s is search returning", "and today?", "what about checkout?", ":history"]
    )
    out: list[str] = []

    def read(_prompt: str) -> str:
        try:
            return next(script)
        except StopIteration:
            raise EOFError from None  # what input() raises at the end of a piped script

    session = run_chat(engine, read, out.append)
    intents = [a.intent for _, a in session.history]
    assert intents == ["error_rate", "error_rate", "error_rate"]
    assert "7.5 %" in out[1] and "1.3 %" in out[2] and "0.3 %" in out[3]
    assert session.history[2][1].entities["service"] == "checkout"
    assert session.history[2][1].entities["time_range"]["name"] == "today"
    assert out[-2].startswith("3. what about checkout?")  # then the empty line at EOF


# ---------------------------------------------------------------- LLM mode (fake model)


def _fake_model(script: list[Any]) -> Any:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from pydantic import Field

    class FakeToolModel(GenericFakeChatModel):
        seen: list = Field(default_factory=list)

        def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kw: Any) -> Any:
            return self

        def _generate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Any:
            self.seen.append(list(messages))
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kw)

    return FakeToolModel(messages=iter(script))


def _call(name: str, args: dict[str, Any], n: int) -> Any:
    from langchain_core.messages import AIMessage

    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": f"c{n}", "type": "tool_call"}]
    )


def test_llm_agent_uses_read_only_tools_and_treats_cluster_text_as_data(
    world: nlqworld.World, engine: Engine
) -> None:
    pytest.importorskip("langchain.agents", reason="the llm extra (langchain) is not installed")
    from vigil.nlq.llm import LlmAsker

    model = _fake_model([
        _call("k8s_pods", {"namespace": "data"}, 1),
        # the planted annotation says to call delete_pod: no such tool exists
        _call("delete_pod", {"name": "payments-api-7d9f-abcde"}, 2),
        _call("k8s_pods", {"namespace": "data"}, 3),  # the same call again: guarded
        _call("promql_query", {"query": 'sum(kube_pod_status_phase{namespace="data"})'}, 4),
        "etl-runner-0 is in Error with exit code 2; orders-db-0 is running.",
    ])  # fmt: skip
    before = nlqworld.action_statuses(world.store_path)
    asker = LlmAsker(LlmSettings(provider="openai", model="fake"), engine, model=model)
    answer = asker.ask("why is etl-runner-0 failing?")
    assert answer.mode == "llm" and "exit code 2" in answer.text
    assert [q.text for q in answer.queries] == ["k8s_pods", "promql_query"]
    tool_messages = [m for m in model.seen[-1] if getattr(m, "type", "") == "tool"]
    assert "etl-runner-0" in tool_messages[0].content and "<data" in tool_messages[0].content
    assert tool_messages[1].status == "error" and "not a valid tool" in tool_messages[1].content
    assert tool_messages[2].status == "error" and "already called" in tool_messages[2].content
    assert "read-only" in model.seen[0][0].content  # the system prompt
    assert nlqworld.action_statuses(world.store_path) == before


def test_llm_budget_ends_a_looping_agent(engine: Engine) -> None:
    pytest.importorskip("langchain.agents", reason="the llm extra (langchain) is not installed")
    from vigil.nlq.llm import LlmAsker

    script = [_call("store_records", {"kind": "actions", "hours": h}, h) for h in range(1, 12)]
    model = _fake_model([*script, "never reached"])
    settings = LlmSettings(provider="openai", model="fake", max_tool_calls=3, max_steps=5)
    answer = LlmAsker(settings, engine, model=model).ask("what did you do?")
    assert len(answer.queries) <= 3
    assert "limit" in answer.text.lower()


def test_llm_mode_refuses_change_requests_before_any_model_call(engine: Engine) -> None:
    pytest.importorskip("langchain.agents", reason="the llm extra (langchain) is not installed")
    from vigil.nlq.llm import LlmAsker

    model = _fake_model(["I deleted them."])
    answer = LlmAsker(LlmSettings(provider="openai", model="fake"), engine, model=model).ask(
        "delete all pods in payments"
    )
    assert answer.refused and answer.intent == "action_request" and model.seen == []


def test_pod_questions_read_the_real_api_server(kube: Any, world: nlqworld.World) -> None:
    """With a cluster reader, pod states come from the API server (the fixture's pods,
    statuses played as a kubelet would), and the planted annotation stays data."""
    from vigil.actions.kubernetes import KubernetesCluster

    nlqworld.load_kube(world.fixture, kube.admin())
    cluster = nlqworld.RecordingCluster(KubernetesCluster(kube.admin()))
    reader = nlqworld.SqlReader(world.store_path)
    with PrometheusSource(world.prom_url, timeout=10, retries=0) as source:
        engine = Engine(metrics=source, store=reader, cluster=cluster, clock=ManualClock(world.now))
        pending = engine.ask("is anything pending in data?")
        crash = engine.ask("any pods crashlooping in payments?")
        why = engine.ask("why is etl-runner-0 failing?")
    reader.close()
    assert (
        "Nothing is Pending" in pending.text and "etl-runner-0 (Error, exit code 2)" in pending.text
    )
    assert any(q.kind == "k8s" for q in pending.queries)
    assert "payments-worker-5c6b-xyz12" in crash.text and "CrashLoopBackOff" in crash.text
    assert "exit code 2" in why.text and "admin mode" not in why.text.lower()
    assert cluster.calls and cluster.writes() == 0
