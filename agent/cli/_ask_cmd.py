"""``vigil ask``, ``vigil chat`` and ``vigil nlq eval``: questions in plain language.

Offline by default (``vigil.nlq.Engine``); through an LLM over read-only tools when
``llm.provider`` is set. Read-only always: the store is opened read-only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigil.agent.cli._state import fail, state

if TYPE_CHECKING:
    from vigil.agent.config import Config

nlq_app = typer.Typer(
    help="Evaluate the natural-language engine.", no_args_is_help=True, rich_markup_mode=None
)


def _engine(cfg: Config, *, kube: bool) -> Any:
    """The offline engine over Prometheus, the store (if present) and the cluster (if asked)."""
    from vigil.agent.store import StoreError
    from vigil.agent.wiring import open_store, prometheus_source
    from vigil.core import Clock, ManualClock, SystemClock
    from vigil.nlq import Engine

    try:
        store = open_store(cfg, readonly=True)
    except StoreError as exc:
        sys.stderr.write(f"note: {exc}; answering from metrics only\n")
        store = None
    as_of = cfg.nlq.as_of  # time-zone aware: the settings refuse a naive time
    clock: Clock = ManualClock(as_of) if as_of is not None else SystemClock()
    cluster = None
    if kube:
        from vigil.actions.kubernetes import KubernetesCluster

        cluster = KubernetesCluster.from_settings(cfg.kubernetes)
    return Engine(
        metrics=prometheus_source(cfg),
        store=store,
        cluster=cluster,
        settings=cfg.nlq,
        clock=clock,
    )


def _asker(cfg: Config, engine: Any) -> Any:
    if cfg.llm.provider == "none":
        return engine
    from vigil.nlq.llm import LlmAsker

    return LlmAsker(cfg.llm, engine)


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object: intent, entities, queries, answer.")
    ] = False,
    kube: Annotated[
        bool, typer.Option("--kube/--no-kube", help="Also read pods from the Kubernetes API.")
    ] = False,
) -> None:
    """Answer a question about metrics, anomalies, actions, forecasts or pods, showing
    the PromQL/SQL it ran. Read-only: requests to change things are refused."""
    import json

    from vigil.core import VigilError
    from vigil.nlq import render_text

    cfg = state.config(reading=True)
    try:
        asker = _asker(cfg, _engine(cfg, kube=kube))
        answer = asker.ask(question)
    except VigilError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(answer.as_json(), indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        from vigil.nlq import render_rich

        render_rich(answer, Console())
    else:
        typer.echo(render_text(answer))


def chat(
    kube: Annotated[
        bool, typer.Option("--kube/--no-kube", help="Also read pods from the Kubernetes API.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print answers as JSON.")] = False,
) -> None:
    """An interactive session with history; follow-ups keep context ("and yesterday?")."""
    from vigil.core import VigilError
    from vigil.nlq import run_chat

    cfg = state.config(reading=True)
    try:
        asker = _asker(cfg, _engine(cfg, kube=kube))
    except VigilError as exc:
        fail(str(exc))
    run_chat(asker, as_json=as_json)


@nlq_app.command("eval")
def evaluate(
    questions: Annotated[
        Path, typer.Option("--questions", help="Question file in the NLQ fixture's format.")
    ],
    kube: Annotated[
        bool, typer.Option("--kube", help="Also load the fixture's pods on a kube-apiserver.")
    ] = False,
) -> None:
    """Run a question file against the NLQ test world (a real store, a backfilled real
    Prometheus, optionally a kube-apiserver) and print per-question results and the
    summary. Needs a source checkout with the dev extras (bench/ and tests/)."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "bench" / "nlq_eval.py"
    if not script.exists():
        fail(
            f"{script} not found: `vigil nlq eval` runs from a source checkout "
            "(git clone, then pip install -e '.[dev]')"
        )
    spec = importlib.util.spec_from_file_location("vigil_nlq_eval", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--questions", str(questions), *(["--kube"] if kube else [])]
    raise SystemExit(module.main(argv))


def register(app: typer.Typer) -> None:
    app.command()(ask)
    app.command()(chat)
    app.add_typer(nlq_app, name="nlq")
