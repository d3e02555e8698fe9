"""The offline engine: safety gates → entities → intent → handler → ``Answer``.

``Engine.ask(question, previous=None)`` is what ``vigil ask``, ``vigil chat`` (through
``vigil.nlq.chat``) and the evaluation call. Gates run before anything else: empty input
gets help, input over ``max_question_chars`` is refused before classification, change
requests are refused with a pointer to playbooks and approvals, and names that are not
DNS-1123 labels or not known are answered without any query. Read-only throughout: the
engine holds a ``MetricSource`` (queries only), a ``StoreReader`` and a ``ClusterReader``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

from vigil.core import Clock, MetricSource, SystemClock, VigilError
from vigil.nlq import cues, handlers_cluster, handlers_metrics, handlers_records
from vigil.nlq.answer import Answer
from vigil.nlq.classifier import SAMPLE_NAMES, IntentModel, shipped_model
from vigil.nlq.context import Ctx, _NoSource
from vigil.nlq.entities import Entities, extract, suggestions
from vigil.nlq.inventory import Inventory, load_inventory
from vigil.nlq.ports import ClusterReader, StoreReader
from vigil.nlq.settings import NlqSettings

__all__ = ["EXAMPLES", "INTENTS", "Engine"]

INTENTS = (
    "metric_top", "metric_value", "metric_trend", "latency", "error_rate", "anomalies_list",
    "actions_list", "action_explain", "forecast", "health_summary", "pods_status", "capacity",
    "action_request", "out_of_scope",
)  # fmt: skip

EXAMPLES = (
    "which pods use the most memory in payments?",
    "p95 latency for checkout",
    "show me slow database queries",
    "error rate of search since 9am",
    "what did you do in the last hour, and did it help?",
    "why did checkout restart last night?",
    "forecast cpu for api for the next 2 hours",
    "is anything pending in data?",
    "status of platform",
)

Handler = Callable[[Ctx], Answer]
_HANDLERS: dict[str, Handler] = {
    "metric_top": handlers_metrics.metric_top,
    "metric_value": handlers_metrics.metric_value,
    "metric_trend": handlers_metrics.metric_trend,
    "latency": handlers_metrics.latency,
    "error_rate": handlers_metrics.error_rate,
    "anomalies_list": handlers_records.anomalies_list,
    "actions_list": handlers_records.actions_list,
    "action_explain": handlers_records.action_explain,
    "forecast": handlers_records.forecast,
    "health_summary": handlers_cluster.health_summary,
    "pods_status": handlers_cluster.pods_status,
    "capacity": handlers_cluster.capacity,
}
_FOLLOW_UP = re.compile(
    r"^\s*(and|what\s+about|how\s+about|same\s+for|and\s+for|ok\s+and|now\s+for|also|"
    r"what\s+of|and\s+what\s+about|same\s+(thing\s+)?but|only|just)\b"
)
_NEEDS_TARGET = {"metric_value", "metric_trend"}


class Engine:
    """Answers questions offline from the sources it is given (any may be ``None``)."""

    def __init__(
        self,
        *,
        metrics: MetricSource | None = None,
        store: StoreReader | None = None,
        cluster: ClusterReader | None = None,
        settings: NlqSettings | None = None,
        clock: Clock | None = None,
        model: IntentModel | None = None,
        inventory_ttl: float = 60.0,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.cluster = cluster
        self.settings = settings or NlqSettings()
        self.clock = clock or SystemClock()
        self.zone = ZoneInfo(self.settings.timezone)
        self.model = model or shipped_model()
        samples = {w for names in SAMPLE_NAMES.values() for n in names for w in n.split("-")}
        self.vocabulary = {
            t[2:] for t in self.model.vocabulary if t.startswith("w:") and t[2:] not in samples
        } | {"svcname", "nsname", "podname"}
        self._inventory: Inventory | None = None
        self._inventory_at = 0.0
        self.inventory_ttl = inventory_ttl

    def inventory(self) -> Inventory:
        """Known names, cached for ``inventory_ttl`` seconds."""
        if self._inventory is None or time.monotonic() - self._inventory_at > self.inventory_ttl:
            self._inventory = load_inventory(
                self.metrics, self.settings.metrics, self.clock.now(),
                store=self.store, cluster=self.cluster,
            )  # fmt: skip
            self._inventory_at = time.monotonic()
        return self._inventory

    # ------------------------------------------------------------------ the pipeline

    def ask(self, question: str, previous: Answer | None = None) -> Answer:
        """One question (``previous``: the last answer of a chat, for follow-ups)."""
        text = question if isinstance(question, str) else ""
        limit = self.settings.max_question_chars
        if len(text) > limit:
            return Answer(
                "out_of_scope",
                headline=f"Question too long: {len(text)} characters, the limit is {limit}. "
                "Ask one thing at a time in a sentence or two.",
                refused=True,
            )
        if not text.strip():
            return _help("Ask a question about metrics, anomalies or what vigil did.")
        now = self.clock.now()
        inv = self.inventory()
        ent = extract(
            text, inv, now=now, zone=self.zone,
            retention_days=self.settings.retention_days, max_limit=self.settings.max_limit,
            fuzzy_cutoff=self.settings.fuzzy_cutoff, vocabulary=self.vocabulary,
        )  # fmt: skip
        prediction = self.model.predict(ent.masked or text.lower())
        ranked = cues.combine(text, self._all_probs(ent.masked or text.lower()))
        intent, confidence = ranked[0][0], _softmax_top(ranked)
        alternatives = [name for name, _ in ranked[1:3]]
        if previous is not None and self._is_follow_up(text, ent, intent, confidence):
            intent = previous.intent
            _inherit(ent, previous, inv)
        elif (
            previous is None
            and _FOLLOW_UP.match(text.lower())
            and not (ent.service or ent.pod or ent.namespace or ent.metric)
        ):
            return _rephrase(text, confidence, intent)  # a follow-up to nothing
        elif cues.is_change_request(text):
            intent = "action_request"
        elif cues.is_secret_or_injection(text):
            intent = "out_of_scope"
        if (
            intent not in {"action_request", "out_of_scope"}
            and confidence < self.settings.min_confidence
        ):
            return _rephrase(text, confidence, prediction.intent)
        _prune(intent, ent)
        answer = self._answer(intent, ent, inv, text, now)
        answer.confidence = confidence
        answer.alternatives = alternatives
        return answer

    def _all_probs(self, text: str) -> dict[str, float]:
        idx, vals = self.model.vector(text)
        logits = self.model.intercept + (self.model.coef[:, idx] @ vals if idx.size else 0.0)
        logits = logits - logits.max()
        probs = [math.exp(float(x)) for x in logits]
        total = sum(probs)
        return {c: p / total for c, p in zip(self.model.classes, probs, strict=True)}

    def _is_follow_up(self, text: str, ent: Entities, intent: str, confidence: float) -> bool:
        if cues.is_change_request(text) or cues.is_secret_or_injection(text):
            return False
        if _FOLLOW_UP.match(text.lower()):
            return True
        words = re.findall(r"[a-z0-9-]+", text.lower())
        return len(words) <= 3 and confidence < 0.6

    def _answer(self, intent: str, ent: Entities, inv: Inventory, text: str, now: object) -> Answer:
        if intent == "action_request":
            return _refuse_change(ent)
        if intent == "out_of_scope":
            return _out_of_scope(text, ent)
        if ent.invalid:
            bad = ent.invalid[0]
            known = ", ".join(sorted(inv.services)[:3]) or "none known"
            return Answer(
                intent,
                entities=ent.as_json(),
                headline=f'"{bad}" is not a valid Kubernetes name (names are DNS-1123 labels: '
                f"lowercase letters, digits and '-'), so it was not found and nothing was "
                f"queried. Known services include: {known}.",
                refused=True,
            )
        if intent in _RECORD_INTENTS:
            # people's names ("what did bob reject") are not targets of record questions
            ent.unknown = [w for w in ent.unknown if ent.unknown_after.get(w) in _STRONG_SLOT]
        if ent.unknown and not (
            ent.service or ent.pod or (ent.namespace and intent not in _NEEDS_TARGET)
        ):
            word = ent.unknown[0]
            ns_slot = ent.unknown_after.get(word) in {"in", "namespace", "ns"}
            close = suggestions(word, inv, namespace_slot=ns_slot)
            headline = (
                f'"{word}" was not found among known services, namespaces or pods; '
                f"nothing was queried. Did you mean: {', '.join(close) or 'no close names'}?"
            )
            if inv.errors:  # the names could not be listed: say why instead of guessing
                headline = (
                    f'Cannot check "{word}": the list of known names could not be read '
                    f"({'; '.join(inv.errors)}). Nothing was queried."
                )
            return Answer(intent, entities=ent.as_json(), headline=headline)
        ctx = Ctx(
            ent=ent, inv=inv, settings=self.settings, now=self.clock.now(), question=text,
            metrics=self.metrics, store=self.store, cluster=self.cluster,
        )  # fmt: skip
        try:
            answer = _HANDLERS[intent](ctx)
        except _NoSource as exc:
            answer = ctx.answer(intent, headline=f"Cannot answer: {exc.what} is not configured.")
        except VigilError as exc:
            answer = ctx.answer(intent, headline=f"Cannot answer right now: {exc}")
        answer.entities = ent.as_json()
        if ent.time_range is not None and ent.time_range.clamped:
            answer.notes.insert(0, f"Time range {ent.time_range.clamped}.")
        return answer


_RECORD_INTENTS = {"anomalies_list", "actions_list", "action_explain"}
_STRONG_SLOT = {
    "for", "on", "of", "about", "in", "service", "svc", "deployment", "pod", "namespace", "ns",
}  # fmt: skip
_METRIC_INTENTS = {
    "metric_top", "metric_value", "metric_trend", "latency", "error_rate", "forecast", "capacity",
}  # fmt: skip


def _prune(intent: str, ent: Entities) -> None:
    """Drop filters that mean nothing for ``intent`` ("pending" pods are not approvals)."""
    if intent not in _RECORD_INTENTS:
        ent.status = ent.severity = ent.dry_run = None
    if intent not in _METRIC_INTENTS:
        ent.metric = None
    if intent not in {"metric_top", "latency", "error_rate", "anomalies_list", "actions_list"}:
        ent.limit = None
        ent.notes = [n for n in ent.notes if not n.startswith("Limit ")]
    if intent != "forecast":
        ent.horizon = None
    if intent != "latency":
        ent.threshold_ms = None


def _softmax_top(ranked: list[tuple[str, float]]) -> float:
    top = ranked[0][1]
    total = sum(math.exp(s - top) for _, s in ranked)
    return 1.0 / total


def _inherit(ent: Entities, previous: Answer, inv: Inventory) -> None:
    """Fill what a follow-up leaves out from the previous answer's entities."""
    old = previous.entities
    if not (ent.service or ent.pod or ent.namespace):
        ent.service = old.get("service")
        ent.pod = old.get("pod")
        ent.namespace = old.get("namespace")
    elif ent.service and not ent.namespace:
        ent.namespace = inv.service_ns.get(ent.service) or None
    for key in ("metric", "severity", "status", "dry_run", "limit", "threshold_ms"):
        if getattr(ent, key) is None and old.get(key) is not None:
            setattr(ent, key, old[key])
    back = {"rejected": "denied", "pending_approval": "pending-approval"}
    ent.status = back.get(ent.status, ent.status) if ent.status else ent.status
    if ent.time_range is None and "time_range" in old:
        from datetime import datetime

        from vigil.nlq.timeparse import TimeRange

        tr = old["time_range"]
        ent.time_range = TimeRange(
            tr["name"],
            datetime.fromisoformat(tr["start"].replace("Z", "+00:00")),
            datetime.fromisoformat(tr["end"].replace("Z", "+00:00")),
        )
    _ = timedelta


def _help(lead: str) -> Answer:
    return Answer(
        "out_of_scope",
        headline=lead + " I answer read-only questions about this cluster. Examples:",
        details=[f"  - {e}" for e in EXAMPLES],
    )


def _rephrase(text: str, confidence: float, guess: str) -> Answer:
    return _help(
        f"I am not sure what you are asking (best guess {guess}, confidence {confidence:.0%}); "
        "please rephrase, naming a service, a metric or a time."
    )


def _refuse_change(ent: Entities) -> Answer:
    return Answer(
        "action_request",
        entities=ent.as_json(),
        headline="I can't do that: this interface is read-only and never changes the cluster "
        "or approvals.",
        details=[
            "Changes go through playbooks with guardrails (dry-run, budgets, blast radius) and "
            "human approval: see `vigil status` for pending actions and `vigil approve ID` / "
            "`vigil deny ID` to decide one; playbooks live in the playbooks directory.",
            'I can tell you what vigil did or proposes: try "what is pending approval?".',
        ],
        refused=True,
    )


def _out_of_scope(text: str, ent: Entities) -> Answer:
    lower = text.lower()
    if cues.is_secret_or_injection(lower):
        return Answer(
            "out_of_scope",
            entities=ent.as_json(),
            headline="I can't help with that: I never read Secrets or credentials, and I only "
            "answer read-only questions about metrics, anomalies and vigil's actions.",
            details=[f"  - {e}" for e in EXAMPLES[:4]],
            refused=True,
        )
    if re.search(r"^\s*(help|\?+|what can (you|i) (do|ask)|how do i use)", lower):
        return _help("Here is what I can answer.")
    out = _help("That is out of scope for vigil; please rephrase.")
    out.refused = True
    return out
