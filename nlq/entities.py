"""Entity extraction: names, metric, time range, limit, ids and filters from a question.

Names (service, namespace, pod) resolve against the live ``Inventory`` only: exact, then
case-insensitive, then fuzzy (``difflib`` ratio >= cutoff with one best candidate:
"assuming X"); otherwise "not found" with up to three close names. A word shaped like an
injection (quotes, braces, ``=~``…) is not a DNS-1123 label and is rejected before any
query. Called by ``vigil.nlq.engine``; times through ``vigil.nlq.timeparse``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vigil.nlq.inventory import Inventory
from vigil.nlq.lexicon import ENGLISH as _ENGLISH
from vigil.nlq.timeparse import (
    Horizon,
    TimeRange,
    find_compare_to,
    find_horizon,
    find_time_range,
)

__all__ = ["Entities", "extract"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_TOKEN = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]|[a-z0-9]")
# Characters no Kubernetes name has and every PromQL/SQL injection needs.
_HOSTILE = re.compile(r"[\"{}\[\]`|$\\]|;(?!dr\b)|=~|!=|=\"|'(?!(s|t|re|ll|ve|d|m)\b)|--|\.\*")
_SLOT_BEFORE = {
    "of", "for", "on", "does", "is", "did", "about", "service", "svc", "deployment",
    "deploy", "pod", "app", "namespace", "ns", "in", "restart", "scale",
}  # fmt: skip
_SLOT_AFTER = {
    "service", "svc", "pods", "pod", "memory", "mem", "cpu", "latency", "traffic", "errors",
    "error", "restart", "restarted", "restarts", "p95", "p99", "namespace", "deployment",
    "rps", "crash", "crashing", "healthy", "status", "usage", "slow", "using", "use", "uses",
}  # fmt: skip
# Namespaces and services that are also ordinary words count only with a cue nearby.
_COMMON_WORDS = {
    "data", "default", "monitoring", "system", "prod", "production", "staging", "test",
    "dev", "web", "app", "apps", "search", "api", "all", "status", "health", "top",
}  # fmt: skip
_NS_CUE_BEFORE = {"in", "namespace", "ns", "-n", "of", "for", "on", "across"}
_NS_CUE_AFTER = {"namespace", "ns"}
_METRICS = (
    ("http_latency_p99", r"\bp99\b|99th|tail latency"),
    ("http_latency_p95", r"\bp9?5\b|95th|latenc|lattency|response time|slow(?!.*quer)|duration"),
    ("db_query_duration", r"\b(sql|quer(y|ies)|querys|statements?|db|database)\b"),
    (
        "http_5xx_ratio",
        r"5xx|\b50\ds\b|\b50\d\s+(errors?|responses?)|errors?\b|eror|erorr|error rate|"
        r"fail(ing|ure|s)",
    ),
    ("restarts", r"restart|restrat|crash|\boom"),
    (
        "request_rate",
        r"traffic|trafic|\brps\b|\bqps\b|requests?|throughput|\bload\b|busier|busiest",
    ),
    ("memory", r"memory|memroy|memmory|\bmem\b|\bram\b|working set|memorey"),
    ("cpu", r"\bcpus?\b|\bcores?\b|processor"),
    ("pvc_usage", r"\b(pvc|volume|disk|storage|space)\b"),
    ("node_memory_requested", r"\bnodes?\b.*\b(memory|mem|ram)\b|\b(memory|mem)\b.*\bnodes?\b"),
)
_STATUS = (
    ("pending-approval", r"pending|waiting (for|on)|awaiting|needs? approval|approvals? needed"),
    ("denied", r"reject|denied|deny|declin|refused by"),
    ("succeeded", r"succe|worked|successful|completed"),
    ("failed", r"\bfailed\b|\bfailures?\b"),
    ("approved", r"\bapproved\b"),
    ("reverted", r"revert|rolled back|rollbacks?"),
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}


@dataclass
class Entities:
    """What a question names; ``problems`` stop the question before any query."""

    service: str | None = None
    namespace: str | None = None
    pod: str | None = None
    metric: str | None = None
    time_range: TimeRange | None = None
    horizon: Horizon | None = None
    limit: int | None = None
    threshold_ms: float | None = None
    severity: str | None = None
    status: str | None = None
    dry_run: bool | None = None
    action_id: int | None = None
    anomaly_id: int | None = None
    record_id: int | None = None
    compare_to: str | None = None
    quantile: float | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unknown_after: dict[str, str] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    masked: str = ""
    limit_asked: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("service", "namespace", "pod", "metric", "limit", "severity"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.time_range is not None:
            out["time_range"] = self.time_range.as_json()
        if self.horizon is not None:
            out["horizon"] = self.horizon.name
        if self.status is not None:
            # the taxonomy's words for the journal's statuses
            out["status"] = {"denied": "rejected", "pending-approval": "pending_approval"}.get(
                self.status, self.status
            )
        if self.threshold_ms is not None:
            ms = self.threshold_ms
            out["threshold"] = f"{ms / 1000:g}s" if ms >= 1000 and ms % 1000 == 0 else f"{ms:g}ms"
        for key in ("threshold_ms", "dry_run", "action_id", "anomaly_id", "compare_to"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _closest(word: str, names: set[str], n: int = 3) -> list[str]:
    scored = sorted(
        ((difflib.SequenceMatcher(None, word, name).ratio(), name) for name in names),
        key=lambda t: (-t[0], t[1]),
    )
    return [name for _, name in scored[:n]]


def _fuzzy(word: str, names: set[str], cutoff: float) -> str | None:
    """The single best name with ratio >= cutoff, or ``None`` (none, or a tie)."""
    scored = sorted(
        ((difflib.SequenceMatcher(None, word, name).ratio(), name) for name in names),
        reverse=True,
    )
    if not scored or scored[0][0] < cutoff:
        return None
    if len(scored) > 1 and scored[1][0] >= scored[0][0] - 1e-9:
        return None
    return scored[0][1]


def _limit(text: str, max_limit: int, ent: Entities) -> None:
    m = re.search(
        r"\b(?:top|first|limit|best|worst)\s*-?\s*(\d+|one|two|three|four|five|six|ten)\b", text
    )
    m = m or re.search(
        r"\b(\d+|one|two|three|four|five|six|ten)\s+(?:pods|services|containers|queries|nodes|"
        r"heaviest|biggest|busiest|slowest|largest|noisiest|worst|most)\b",
        text,
    )
    if not m:
        return
    raw = m.group(1)
    asked = _NUMBER_WORDS.get(raw) or int(raw)
    ent.limit_asked = asked
    clamped = min(max(asked, 1), max_limit)
    if clamped != asked:
        ent.notes.append(f"Limit {asked} clamped to {clamped} (allowed 1..{max_limit}).")
    ent.limit = clamped


def _filters(text: str, ent: Entities) -> None:
    if m := re.search(r"\b(?:action|actions|act)\s*(?:#|no\.?|number|id)?\s*(\d+)\b", text):
        ent.action_id = int(m.group(1))
    if m := re.search(
        r"\b(?:anomal\w*|finding|incident|detection)\s*(?:#|no\.?|number|id)?\s*(\d+)\b", text
    ):
        ent.anomaly_id = int(m.group(1))
    if ent.action_id is None and ent.anomaly_id is None and (m := re.search(r"#\s*(\d+)\b", text)):
        ent.record_id = int(m.group(1))
    if m := re.search(
        r"(?:slower|longer|more|over|above|exceed\w*|>)\s*(?:than\s*)?(\d+(?:\.\d+)?)\s*"
        r"(ms|milliseconds?|s|secs?|seconds?)\b",
        text,
    ):
        value = float(m.group(1))
        ent.threshold_ms = value if m.group(2).startswith("m") else value * 1000
    if m := re.search(r"\b(critical|crit|warning|warnings|warn|info)\b", text):
        ent.severity = {"crit": "critical", "warnings": "warning", "warn": "warning"}.get(
            m.group(1), m.group(1)
        )
    for status, pattern in _STATUS:
        if re.search(pattern, text):
            ent.status = status
            break
    if ent.status is None:
        if re.search(r"\b(open|unresolved|ongoing|active|still)\b", text):
            ent.status = "open"
        elif re.search(r"\b(resolved|closed|fixed)\b", text):
            ent.status = "resolved"
    if re.search(r"dry[\s-]?runs?|would (you )?have|simulated", text):
        ent.dry_run = True
    if re.search(r"\bp99\b|99th", text):
        ent.quantile = 0.99
    elif re.search(r"\bp50\b|median", text):
        ent.quantile = 0.5
    elif re.search(r"\bp95\b|95th", text):
        ent.quantile = 0.95


def _metric(text: str) -> str | None:
    for name, pattern in _METRICS:
        if re.search(pattern, text):
            return name
    return None


def _candidates(tokens: list[str]) -> list[tuple[int, int, str]]:
    """(first, last, text) for single tokens and hyphen-joined runs of two and three."""
    out = []
    for n in (3, 2, 1):
        for i in range(len(tokens) - n + 1):
            out.append((i, i + n - 1, "-".join(tokens[i : i + n])))
    return out


def extract(
    question: str,
    inv: Inventory,
    *,
    now: datetime,
    zone: ZoneInfo,
    retention_days: float,
    max_limit: int,
    fuzzy_cutoff: float,
    vocabulary: set[str],
) -> Entities:
    """Every entity of ``question``; names only from ``inv``; ``masked`` is the question with
    resolved names replaced by the classifier's placeholder tokens."""
    ent = Entities()
    lower = question.lower().replace("’", "'")
    for raw in lower.split():
        word = raw.strip(".,!?:")
        if _HOSTILE.search(word) and re.search(r"[a-z0-9]", word):
            ent.invalid.append(raw.strip(".,!?:"))
    rng, rest = find_time_range(lower, now, zone, retention_days=retention_days)
    ent.time_range = rng
    ent.horizon = find_horizon(lower)
    ent.compare_to = find_compare_to(lower)
    _limit(lower, max_limit, ent)
    _filters(lower, ent)

    tokens = _NAME_TOKEN.findall(rest)
    used: set[int] = set()
    masked = list(tokens)
    pods, services, namespaces = set(inv.pod_ns), inv.services, inv.namespaces
    for first, last, cand in _candidates(tokens):
        if any(i in used for i in range(first, last + 1)):
            continue
        before = tokens[first - 1] if first else ""
        after = tokens[last + 1] if last + 1 < len(tokens) else ""
        kind = None
        if cand in pods:
            kind = "pod"
        elif cand in services and (
            cand not in _COMMON_WORDS
            or before in _SLOT_BEFORE
            or after in _SLOT_AFTER
            or len(tokens) <= 3
        ):
            kind = "service"
        elif cand in namespaces and (
            cand not in _COMMON_WORDS or before in _NS_CUE_BEFORE or after in _NS_CUE_AFTER
        ):
            kind = "namespace"
        if kind is None:
            continue
        _assign(ent, inv, kind, cand)
        for i in range(first, last + 1):
            used.add(i)
            masked[i] = ""
        masked[first] = {"pod": "podname", "service": "svcname", "namespace": "nsname"}[kind]

    # Unresolved words in a name's slot: fuzzy, else unknown.
    for i, tok in enumerate(tokens):
        if i in used or tok.isdigit() or len(tok) < 3 or tok in vocabulary or tok in _ENGLISH:
            continue
        if re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d|mi|gi|am|pm|x)?|p\d\d|\d+xx", tok):
            continue
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        names = pods | services | namespaces
        if tok in names:  # a known name without the cue an ordinary word needs: take it
            kind = "pod" if tok in pods else "service" if tok in services else "namespace"
            _assign(ent, inv, kind, tok)
            used.add(i)
            masked[i] = {"pod": "podname", "service": "svcname", "namespace": "nsname"}[kind]
            continue
        guess = _fuzzy(tok, names, fuzzy_cutoff)
        if guess is not None:
            kind = "pod" if guess in pods else "service" if guess in services else "namespace"
            _assign(ent, inv, kind, guess)
            ent.notes.append(f'Assuming {kind} "{guess}" for "{tok}".')
            used.add(i)
            masked[i] = {"pod": "podname", "service": "svcname", "namespace": "nsname"}[kind]
            continue
        if difflib.get_close_matches(tok, vocabulary, n=1, cutoff=0.8):
            continue  # a misspelt ordinary word, not a name
        if before in _SLOT_BEFORE or after in _SLOT_AFTER or "-" in tok:
            ent.unknown.append(tok)
            ent.unknown_after[tok] = before
    ent.masked = " ".join(t for t in masked if t)
    # the metric from the words around the names ("orders-db" says nothing about databases)
    ent.metric = _metric(
        " ".join(t for i, t in enumerate(tokens) if i not in used) if tokens else lower
    )
    if ent.service and not ent.namespace:
        ent.namespace = inv.service_ns.get(ent.service) or None
    return ent


def _assign(ent: Entities, inv: Inventory, kind: str, name: str) -> None:
    if kind == "pod" and ent.pod is None:
        ent.pod = name
        ent.namespace = ent.namespace or inv.pod_ns.get(name)
        ent.service = ent.service or inv.pod_service.get(name)
    elif (kind == "service" and ent.service is None) or (kind == "service" and ent.pod is not None):
        ent.service = name
    elif kind == "namespace" and ent.namespace is None:
        ent.namespace = name


def suggestions(word: str, inv: Inventory, *, namespace_slot: bool = False) -> list[str]:
    """Up to three known names closest to ``word`` (namespaces first after "in X", else
    services first, then the rest)."""
    if namespace_slot and inv.namespaces:
        return _closest(word, inv.namespaces)
    close = _closest(word, inv.services) if inv.services else []
    if not close:
        close = _closest(word, inv.namespaces | set(inv.pod_ns))
    return close


def is_dns_label(name: str) -> bool:
    return bool(_DNS_LABEL.match(name)) and len(name) <= 63
