"""``vigil chat``: a read-eval-print loop over the engine, with history and follow-ups.

Each question is asked with the previous answer as context, so "and yesterday?" or "what
about checkout?" keep the last question's intent and fill in what they leave out.
``:history`` lists the questions so far, ``:json`` toggles machine output, ``:quit`` (or
end of input) leaves. Input and output are injected, so tests drive it with a script.
Called by the CLI (``vigil chat``) with ``input`` and ``print``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from vigil.nlq.answer import Answer, render_text

__all__ = ["Asker", "ChatSession", "run_chat"]

PROMPT = "vigil> "
HELP = (
    "Ask about metrics, anomalies, actions, forecasts or pods; follow-ups keep context "
    '("and yesterday?"). Commands: :history, :json, :help, :quit.'
)


class Asker(Protocol):
    def ask(self, question: str, previous: Answer | None = None) -> Answer: ...


@dataclass
class ChatSession:
    """Questions and answers so far; ``ask`` passes the last answer as context."""

    engine: Asker
    history: list[tuple[str, Answer]] = field(default_factory=list)
    max_history: int = 100

    @property
    def last(self) -> Answer | None:
        return self.history[-1][1] if self.history else None

    def ask(self, question: str) -> Answer:
        answer = self.engine.ask(question, self.last)
        # a refusal or help text is no context for the next question
        if answer.intent not in {"out_of_scope", "action_request"}:
            self.history.append((question, answer))
            del self.history[: -self.max_history]
        return answer


def run_chat(
    engine: Asker,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    *,
    as_json: bool = False,
) -> ChatSession:
    """Loop until ``:quit`` or end of input (``EOFError``/``KeyboardInterrupt``)."""
    session = ChatSession(engine)
    if read is input:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - arrow keys and history for input()
    write(HELP)
    while True:
        try:
            line = read(PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("")
            return session
        text = line.strip()
        if text in {":quit", ":q", "exit", "quit"}:
            return session
        if text == ":help":
            write(HELP)
            continue
        if text == ":json":
            as_json = not as_json
            write(f"JSON output {'on' if as_json else 'off'}.")
            continue
        if text == ":history":
            for i, (q, a) in enumerate(session.history, 1):
                write(f"{i}. {q}  [{a.intent}]")
            continue
        answer = session.ask(line)
        write(json.dumps(answer.as_json(), indent=2) if as_json else render_text(answer))
