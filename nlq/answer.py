"""What a question gets back: ``Answer`` (headline, table, sparkline, the queries run) and
its two renderings, plain text for terminals and logs, and the JSON form for scripts.

Built by the handlers of ``vigil.nlq.engine``; printed by ``vigil ask``/``vigil chat``
(``render_text``, ``render_rich``) and scored by ``vigil.nlq.evaluation`` (``as_json``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Answer", "Query", "render_rich", "render_text", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Query:
    """One query sent: ``kind`` is ``promql``, ``promql_range``, ``sql`` or ``k8s``."""

    kind: str
    text: str
    params: tuple[Any, ...] = ()
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "params": list(self.params)}


@dataclass
class Answer:
    """The engine's reply to one question."""

    intent: str
    entities: dict[str, Any] = field(default_factory=dict)
    headline: str = ""
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    refused: bool = False
    spark: str = ""
    confidence: float = 1.0
    alternatives: list[str] = field(default_factory=list)
    mode: str = "offline"

    @property
    def text(self) -> str:
        """The answer as plain text: notes, headline, table, sparkline (no queries)."""
        parts = [*self.notes]
        if self.headline:
            parts.append(self.headline)
        parts.extend(self.details)
        if self.columns and self.rows:
            parts.append(_table(self.columns, self.rows))
        if self.spark:
            parts.append(self.spark)
        return "\n".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "entities": self.entities,
            "queries": [q.as_json() for q in self.queries],
            "rows": [{k: _jsonable(v) for k, v in row.items()} for row in self.rows],
            "ids": list(self.ids),
            "answer": self.text,
            "refused": self.refused,
            "mode": self.mode,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def sparkline(values: Sequence[float]) -> str:
    """Eight-level bars for the finite values (gaps as spaces); ``""`` for no data."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(" ")
        elif span == 0:
            out.append(_BARS[3])
        else:
            out.append(_BARS[min(7, int((v - low) / span * 7.999))])
    return "".join(out)


def render_text(answer: Answer, *, show_queries: bool = True) -> str:
    """Plain text for a terminal or a pipe: the answer, then the queries it ran."""
    out = [answer.text]
    if show_queries and answer.queries:
        out.append("")
        for q in answer.queries:
            label = {"promql": "PromQL", "promql_range": "PromQL (range)", "sql": "SQL"}.get(
                q.kind, q.kind
            )
            if q.kind.startswith("promql"):
                params = f"   ({', '.join(q.params)})" if q.params else ""
            else:
                params = f"   params: {list(q.params)}" if q.params else ""
            out.append(f"{label}: {q.text}{params}")
    return "\n".join(out)


def render_rich(answer: Answer, console: Console) -> None:
    """A rich rendering (table, dim queries) for interactive terminals (lazy rich import)."""
    from rich.table import Table
    from rich.text import Text

    for note in answer.notes:
        console.print(Text(note, style="yellow"))
    if answer.headline:
        console.print(Text(answer.headline, style="bold red" if answer.refused else "bold"))
    for line in answer.details:
        console.print(Text(line))
    if answer.columns and answer.rows:
        table = Table(show_edge=False, header_style="bold cyan")
        for col in answer.columns:
            table.add_column(col)
        for row in answer.rows:
            table.add_row(*(_cell(row.get(c)) for c in answer.columns))
        console.print(table)
    if answer.spark:
        console.print(Text(answer.spark))
    for q in answer.queries:
        params = f"  params={list(q.params)}" if q.params else ""
        console.print(Text(f"{q.kind}: {q.text}{params}", style="dim"))
