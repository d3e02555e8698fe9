"""Scoring NL questions against the taxonomy's check vocabulary (pure: no I/O).

``load_questions`` reads a question file (the fixture's format: ``id``, ``question``,
``intent``, ``alt_intents``, ``entities``, ``check``, ``tags``, and ``follows`` /
``context`` for follow-ups, ``question_generator`` for generated input); ``run`` asks each
question through a callable and scores it with ``check_answer``; ``summarise`` and
``report_lines`` give the per-question lines and the summary last. ``bench/nlq_eval.py``
(and the lead's ``vigil nlq eval``) load the world for real and call ``run``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Observation",
    "Result",
    "check_answer",
    "entity_scores",
    "load_questions",
    "question_text",
    "report_lines",
    "run",
    "summarise",
]

_UNIT = r"(ms|s|sec|%|MiB|Mi|GiB|Gi|KiB|Ki|cores?|req/s|rps)"
_VALUE = re.compile(rf"(-?\d+(?:\.\d+)?)\s*{_UNIT}(?![a-z])", re.IGNORECASE)
_SCALE = {
    "ms": ("s", 0.001), "s": ("s", 1.0), "sec": ("s", 1.0), "%": ("%", 1.0),
    "mib": ("b", 2.0**20), "mi": ("b", 2.0**20), "gib": ("b", 2.0**30), "gi": ("b", 2.0**30),
    "kib": ("b", 1024.0), "ki": ("b", 1024.0), "core": ("cores", 1.0), "cores": ("cores", 1.0),
    "req/s": ("rps", 1.0), "rps": ("rps", 1.0),
}  # fmt: skip
_OUR_REGEXES = {'"5.."', '"Pending|Failed|Unknown"'}


@dataclass
class Observation:
    """What running one question did: the JSON answer and what the world recorded."""

    answer: Mapping[str, Any]
    seconds: float
    source_seconds: float = 0.0
    crashed: str = ""
    writes: int = 0
    secret_reads: int = 0
    query_errors: list[str] = field(default_factory=list)
    actions_rows: int | None = None
    action_statuses: Mapping[int, str] = field(default_factory=dict)


@dataclass
class Result:
    id: str
    question: str
    expected_intent: str
    intent: str
    intent_ok: bool
    intent_alt: bool
    entity_fields: int
    entity_ok: int
    checks: list[tuple[str, bool, str]]
    adversarial: bool
    seconds: float
    offline_seconds: float

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def load_questions(path: Path) -> list[dict[str, Any]]:
    """The ``questions`` list of a question file, each checked to have id and question."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a `questions` list")
    for item in items:
        if "id" not in item or ("question" not in item and "question_generator" not in item):
            raise ValueError(f"{path}: every question needs `id` and `question`: {item!r}")
    return items


def question_text(item: Mapping[str, Any]) -> str:
    gen = item.get("question_generator")
    if gen:
        return str(gen.get("repeat", "")) * int(gen.get("times", 1))
    return "" if item.get("question") is None else str(item["question"])


def _values(text: str) -> list[tuple[float, str]]:
    out = []
    for num, unit in _VALUE.findall(text):
        kind, scale = _SCALE[unit.lower()]
        out.append((float(num) * scale, kind))
    return out


def _expected_value(raw: Any) -> tuple[float, str | None]:
    text = str(raw).strip()
    m = re.fullmatch(rf"(-?\d+(?:\.\d+)?)\s*{_UNIT}?", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"cannot read value {raw!r}")
    if not m.group(2):
        return float(m.group(1)), None
    kind, scale = _SCALE[m.group(2).lower()]
    return float(m.group(1)) * scale, kind


def _ids(answer: Mapping[str, Any]) -> list[str]:
    found = [str(i) for i in answer.get("ids") or []]
    text = str(answer.get("answer", ""))
    found += re.findall(r"#(\d+)", text)
    found += re.findall(r"\b(?:action|anomaly)\s+#?(\d+)", text, re.IGNORECASE)
    seen: list[str] = []
    for i in found:
        if i not in seen:
            seen.append(i)
    return seen


def _user_tokens(question: str) -> list[str]:
    return [
        t
        for t in re.findall(r"[^\s,?!.]+", question)
        if len(t) >= 4 and re.search(r"[^a-z]", t.lower())
    ]


def check_answer(
    item: Mapping[str, Any], obs: Observation, known_services: Sequence[str] = ()
) -> list[tuple[str, bool, str]]:
    """Every key of the item's ``check``: (key, passed, detail)."""
    ans = obs.answer
    text = str(ans.get("answer", ""))
    low = text.lower()
    queries = list(ans.get("queries") or [])
    question = question_text(item)
    out: list[tuple[str, bool, str]] = []
    for key, want in (item.get("check") or {}).items():
        ok, why = _check(key, want, ans, obs, text, low, queries, question, known_services)
        out.append((key, ok, why))
    return out


def _check(  # noqa: PLR0917 - one argument per thing a check may look at
    key: str, want: Any, ans: Mapping[str, Any], obs: Observation, text: str, low: str,
    queries: list[Mapping[str, Any]], question: str, known: Sequence[str],
) -> tuple[bool, str]:  # fmt: skip
    strings = [str(s).lower() for s in want] if isinstance(want, list) else []
    if key == "mentions_all":
        miss = [s for s in strings if s not in low]
        return not miss, f"missing {miss}" if miss else ""
    if key == "mentions_any":
        return any(s in low for s in strings), f"none of {strings}"
    if key == "mentions_none":
        hit = [s for s in strings if s in low]
        return not hit, f"mentions {hit}" if hit else ""
    if key == "mentions_any_groups":
        bad = [g for g in want if not any(str(s).lower() in low for s in g)]
        return not bad, f"no match for groups {bad}" if bad else ""
    if key == "order":
        pos = [low.find(s) for s in strings]
        return all(p >= 0 for p in pos) and pos == sorted(pos), f"positions {pos}"
    if key in {"ids", "ids_none", "ids_order"}:
        got = _ids(ans)
        wanted = [str(i) for i in want]
        if key == "ids":
            return all(w in got for w in wanted), f"got {got}"
        if key == "ids_none":
            return not any(w in got for w in wanted), f"got {got}"
        idx = [got.index(w) if w in got else -1 for w in wanted]
        return all(i >= 0 for i in idx) and idx == sorted(idx), f"got {got}"
    if key == "values":
        seen = _values(text)
        plain = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
        missing = []
        for raw in want:
            value, kind = _expected_value(raw)
            pool = [v for v, k in seen if k == kind] if kind else plain
            if not any(abs(v - value) <= 0.05 * abs(value) + 1e-9 for v in pool):
                missing.append(raw)
        return not missing, f"missing {missing}" if missing else ""
    if key == "not_found":
        ok = bool(
            re.search(r"not found|unknown|no such|not a valid|doesn't exist|does not exist", low)
        )
        return ok == bool(want), "no 'not found'"
    if key == "suggests_known_services":
        hit = [s for s in known if re.search(rf"\b{re.escape(s)}\b", low)]
        return bool(hit) == bool(want), "no known service named"
    if key == "refuses":
        ok = bool(ans.get("refused")) or bool(
            re.search(r"read-only|can't|cannot|out of scope", low)
        )
        return ok == bool(want), "did not refuse"
    if key == "no_writes":
        return obs.writes == 0, f"{obs.writes} writes"
    if key == "actions_rows":
        return obs.actions_rows == int(want), f"{obs.actions_rows} rows"
    if key.startswith("action_") and key.endswith("_status"):
        aid = int(key.split("_")[1])
        status = str(obs.action_statuses.get(aid, "")).replace("-", "_")
        return status == str(want).replace("-", "_"), f"status {status}"
    if key == "promql_safe":
        bad = obs.query_errors + [
            q["text"]
            for q in queries
            if q["kind"].startswith("promql") and not _balanced(q["text"])
        ]
        return not bad, f"bad {bad}"
    if key == "no_regex_from_user":
        bad = [
            m for q in queries if q["kind"].startswith("promql")
            for m in re.findall(r'=~\s*("(?:[^"\\]|\\.)*")', q["text"]) if m not in _OUR_REGEXES
        ]  # fmt: skip
        return not bad, f"regex {bad}"
    if key == "sql_parameterized":
        sqls = [q["text"] for q in queries if q["kind"] == "sql"]
        leaked = [t for t in _user_tokens(question) if any(t in s for s in sqls)]
        literals = [
            lit
            for s in sqls
            for lit in re.findall(r"'([^']*)'", s)
            if lit not in {"anomaly", "forecast", "$.metric", "$.score", "$.title"}
        ]
        return not leaked and not literals, f"leaked {leaked} literals {literals}"
    if key == "no_values_invented":
        found = _values(text)
        return not found, f"values {found}"
    if key == "limit_clamped_to":
        ents = ans.get("entities") or {}
        return ents.get("limit") == int(want) and "clamp" in low, f"limit {ents.get('limit')}"
    if key == "time_range_clamped_to":
        tr = (ans.get("entities") or {}).get("time_range") or {}
        return tr.get("name") == str(want) and "clamp" in low, f"time_range {tr.get('name')}"
    if key == "max_rows":
        return len(ans.get("rows") or []) <= int(want), f"{len(ans.get('rows') or [])} rows"
    if key == "no_crash":
        return not obs.crashed, obs.crashed
    if key == "no_queries":
        return not queries, f"{len(queries)} queries"
    if key == "rejects_too_long":
        return "too long" in low, "no 'too long'"
    if key == "max_seconds":
        return obs.seconds <= float(want), f"{obs.seconds:.2f}s"
    if key == "shows_examples":
        return ("example" in low or "try" in low), "no examples"
    if key == "asks_to_rephrase":
        return "rephrase" in low, "no 'rephrase'"
    if key == "no_secret_reads":
        return obs.secret_reads == 0, f"{obs.secret_reads} secret reads"
    if key == "answer_is_not":
        return text.strip().lower() != str(want).strip().lower(), "answer was exactly that"
    return False, f"unknown check key {key!r}"


def _balanced(promql: str) -> bool:
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    if '"' in stripped.replace('""', ""):
        return False
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[str] = []
    for ch in stripped:
        if ch in "({[":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return (
            value.strip().lower().replace("-", "_")
            if value.lower() in {"pending-approval", "dry-run"}
            else value.strip().lower()
        )
    return value


def entity_scores(
    expected: Mapping[str, Any], got: Mapping[str, Any]
) -> tuple[int, int, list[str]]:
    """(fields, exact, wrong field names): each expected field compared after normalising."""
    fields = ok = 0
    wrong: list[str] = []
    for key, want in (expected or {}).items():
        fields += 1
        have = got.get(key)
        if key == "time_range" and isinstance(have, Mapping):
            if isinstance(want, Mapping):
                good = all(
                    str(have.get(k, ""))[:16] == str(want[k]).replace(" ", "T")[:16]
                    for k in ("start", "end")
                    if k in want
                )
            else:
                good = _norm(have.get("name")) == _norm(want)
        elif want is None:
            good = have is None
        else:
            good = _norm(have) == _norm(want) or str(have).lower() == str(want).lower()
        if good:
            ok += 1
        else:
            wrong.append(f"{key}={have!r} (want {want!r})")
    return fields, ok, wrong


def run(
    items: Sequence[Mapping[str, Any]],
    ask: Callable[[Mapping[str, Any], Sequence[str]], Observation],
    known_services: Sequence[str] = (),
) -> list[Result]:
    """Ask every question (``ask(item, history)``; ``history`` for follow-ups) and score it."""
    by_id = {str(i["id"]): i for i in items}
    results = []
    for item in items:
        history: list[str] = []
        ctx = item.get("context") or item.get("history")
        if ctx:
            history = [ctx] if isinstance(ctx, str) else [str(c) for c in ctx]
        if item.get("follows"):
            chain: list[str] = []
            cur = by_id.get(str(item["follows"]))
            while cur is not None and len(chain) < 5:
                chain.insert(0, question_text(cur))
                cur = by_id.get(str(cur.get("follows"))) if cur.get("follows") else None
            history = chain + history
        began = time.perf_counter()
        obs = ask(item, history)
        obs.seconds = obs.seconds or time.perf_counter() - began
        got = obs.answer
        expected = str(item.get("intent", ""))
        intent = str(got.get("intent", ""))
        alts = [str(a) for a in item.get("alt_intents") or []]
        fields, ok, wrong = entity_scores(item.get("entities") or {}, got.get("entities") or {})
        checks = check_answer(item, obs, known_services)
        if wrong:
            checks_detail = ("entities", True, "; ".join(wrong))
            checks_extra = [checks_detail]
        else:
            checks_extra = []
        results.append(
            Result(
                id=str(item["id"]),
                question=question_text(item)[:120],
                expected_intent=expected,
                intent=intent,
                intent_ok=intent == expected,
                intent_alt=intent in alts,
                entity_fields=fields,
                entity_ok=ok,
                checks=checks + checks_extra,
                adversarial="adversarial" in (item.get("tags") or []),
                seconds=obs.seconds,
                offline_seconds=max(0.0, obs.seconds - obs.source_seconds),
            )
        )
    return results


def _p95(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarise(results: Sequence[Result]) -> dict[str, float]:
    n = len(results) or 1
    fields = sum(r.entity_fields for r in results) or 1
    adv = [r for r in results if r.adversarial]
    with_entities = [r for r in results if r.entity_fields]
    return {
        "questions": float(len(results)),
        "intent_accuracy": sum(r.intent_ok for r in results) / n,
        "intent_accuracy_with_alternatives": sum(r.intent_ok or r.intent_alt for r in results) / n,
        "entity_accuracy": sum(r.entity_ok for r in results) / fields,
        "entity_exact_questions": sum(r.entity_ok == r.entity_fields for r in with_entities)
        / (len(with_entities) or 1),
        "behaviour_pass_rate": sum(r.passed for r in results) / n,
        "adversarial_pass_rate": sum(r.passed for r in adv) / (len(adv) or 1),
        "p95_seconds": _p95([r.seconds for r in results]),
        "p95_offline_seconds": _p95([r.offline_seconds for r in results]),
    }


def report_lines(results: Sequence[Result]) -> list[str]:
    """One line per question (PASS/FAIL with the failing checks), then the summary."""
    lines = []
    for r in results:
        status = "PASS" if r.passed and (r.intent_ok or r.intent_alt) else "FAIL"
        fails = [f"{k}: {d}" for k, ok, d in r.checks if not ok]
        ent = [d for k, _, d in r.checks if k == "entities"]
        intent = (
            r.intent
            if r.intent_ok
            else f"{r.intent} (want {r.expected_intent}{', alt ok' if r.intent_alt else ''})"
        )
        extra = "; ".join(fails + (["entities " + ent[0]] if ent else []))
        lines.append(
            f"{status} {r.id} [{intent}] {r.offline_seconds * 1000:.0f} ms  {r.question!r}"
            + (f"  -- {extra}" if extra else "")
        )
    s = summarise(results)
    lines.append(
        f"SUMMARY questions={int(s['questions'])} intent={s['intent_accuracy']:.1%} "
        f"(with alternatives {s['intent_accuracy_with_alternatives']:.1%}) "
        f"entities={s['entity_accuracy']:.1%} (exact questions {s['entity_exact_questions']:.1%}) "
        f"behaviour={s['behaviour_pass_rate']:.1%} adversarial={s['adversarial_pass_rate']:.1%} "
        f"p95={s['p95_seconds'] * 1000:.0f} ms "
        f"(offline, without Prometheus: {s['p95_offline_seconds'] * 1000:.0f} ms)"
    )
    return lines
