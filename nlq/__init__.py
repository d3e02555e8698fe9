"""Natural-language questions over metrics and the store: an offline engine by default, an
LLM through LangChain when configured. Read-only; imports only ``vigil.core``.

Entry points for the CLI: ``Engine`` (``vigil ask``), ``run_chat`` (``vigil chat``),
``vigil.nlq.evaluation`` (``vigil nlq eval``) and, only when an LLM is configured,
``vigil.nlq.llm`` (imported lazily: it pulls in LangChain).
"""

from vigil.nlq.answer import Answer, Query, render_rich, render_text
from vigil.nlq.chat import ChatSession, run_chat
from vigil.nlq.engine import EXAMPLES, INTENTS, Engine
from vigil.nlq.metrics_map import METRIC_VOCABULARY, MetricMap
from vigil.nlq.ports import ClusterReader, StoreReader
from vigil.nlq.settings import LlmSettings, NlqSettings

__all__ = [
    "EXAMPLES",
    "INTENTS",
    "METRIC_VOCABULARY",
    "Answer",
    "ChatSession",
    "ClusterReader",
    "Engine",
    "LlmSettings",
    "MetricMap",
    "NlqSettings",
    "Query",
    "StoreReader",
    "ask",
    "render_rich",
    "render_text",
    "run_chat",
]


def ask(engine: Engine, question: str, *, as_json: bool = False) -> str:
    """What ``vigil ask "…" [--json]`` prints: the answer and the queries it ran, or one
    JSON object. Refusals are answers too (the command exits 0 for them)."""
    import json

    answer = engine.ask(question)
    return json.dumps(answer.as_json(), indent=2) if as_json else render_text(answer)
