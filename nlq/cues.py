"""Rule cues beside the classifier: words that decide an intent whatever else is said.

The classifier (``vigil.nlq.classifier``) generalises over phrasing; these cues make the
cases that must never be wrong deterministic: an imperative change ("restart cart",
"delete all pods") is an ``action_request``; secrets and prompt-injection phrases are
``out_of_scope``; "why" leans to ``action_explain``, "forecast" to ``forecast``. Each
cue adds to an intent's log-probability. Called by ``vigil.nlq.engine``.
"""

from __future__ import annotations

import math
import re

__all__ = ["WRITE_VERBS", "combine", "is_change_request", "is_secret_or_injection"]

WRITE_VERBS = (
    r"delete|remove|kill|restart|reboot|bounce|recycle|scale|roll\s*back|rollback|undo|revert|"
    r"approve|deny|reject|drain|cordon|uncordon|evict|patch|apply|execute|set|bump|increase|"
    r"decrease|raise|lower|shut\s*down|shutdown|stop|fix|wipe|drop|truncate|mark|disable|"
    r"enable|turn\s+off|turn\s+on|exec|create|update|edit|change|resize|redeploy|deploy|"
    r"terminate|destroy|purge|flush|reset|insert|acknowledge|ack|silence|pause|resume|"
    r"restrat|delet|deleet|kubectl\s+(delete|scale|rollout|apply|patch|drain|cordon|edit|exec)"
)
_POLITE = (
    r"^(?:(?:hey|ok|okay|so|now|vigil)[,\s]+)?(?:please\s+|pls\s+|plz\s+)?"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+)?|i\s+(?:need|want)\s+(?:you\s+)?to\s+|"
    r"you\s+(?:should|must|need\s+to)\s+|go\s+ahead\s+and\s+|let'?s\s+|just\s+|run\s+)?"
)
_IMPERATIVE = re.compile(
    _POLITE
    + rf"(?:{WRITE_VERBS})\b(?!\s+(?:count|counts|rate|history|loops?|reason|status|events?)\b)"
)
_NOT_A_QUESTION_OF_STATE = re.compile(
    r"^(?:why|what|which|who|when|how|did|does|do|has|have|is|are|was|were|show|list|tell)\b"
)
_SECRET = re.compile(
    r"\b(secrets?|passwords?|passwd|api[\s_-]?keys?|tokens?|credentials?|creds|kubeconfig|"
    r"private\s+keys?|env(ironment)?\s+var(iable)?s?|certificates?|ssh\s+keys?)\b"
)
_INJECTION = re.compile(
    r"ignore\s+(all\s+)?(the\s+)?(previous|prior|above|earlier)\s+instructions|system\s+prompt|"
    r"admin\s+mode|developer\s+mode|jailbreak|you\s+are\s+now\b|disregard\s+(your|all)"
)

_CUES: tuple[tuple[str, re.Pattern[str], float], ...] = tuple(
    (intent, re.compile(pattern), weight)
    for intent, pattern, weight in (
        (
            "action_explain",
            r"^\s*(why|wy|why)\b|\bwhy\b|\bexplain\b|root\s+cause|what\s+caused|reason\s+(for|why)|what\s+happened\s+(to|with)|story\s+behind|walk\s+me\s+through",
            2.0,
        ),
        (
            "forecast",
            r"forecast|forcast|forecst|predict|projection|\bwill\b.*\b(run\s+out|hit|reach|fill|exceed|oom|need|break|peak)|when\s+will|how\s+long\s+until|going\s+to\s+(need|run|hit|fill)|\bnext\s+\d*\s*(h|hours?|days?)\b|\btonight\b|\btomorrow\b",
            2.2,
        ),
        (
            "anomalies_list",
            r"anomal|anomol|unusual|weird|odd\b|detected|detections?|flagged|findings?|incidents?\b|alerts?\s+fired",
            1.6,
        ),
        ("anomalies_list", r"\bdetect|\bnotice|\bspot(ted)?\b", 1.0),
        (
            "metric_top",
            r"\b(cpu|memory|mem|ram)\b.*\bpods\b|\bpods\b.*\b(cpu|memory|mem|ram)\b",
            1.0,
        ),
        ("metric_trend", r"\bsince\b|\bover\s+the\s+(last|past)\b", 0.8),
        ("actions_list", r"\bdid\b.*\b(fix|help|work|solve|resolve)\w*|\bdry[\s-]?runs?\b", 1.5),
        ("metric_value", r"\btotal\b|\boverall\b|\baltogether\b|\bin\s+sum\b", 1.0),
        (
            "latency",
            r"\bp(50|90|95|99)\b|latenc|lattency|response\s+times?|\bslow|duration|percentile|how\s+fast|sql|quer(y|ies)|querys",
            1.5,
        ),
        (
            "error_rate",
            r"5xx|\b50[0-9]s\b|\b50[0-9]\s+(errors?|responses?)|error\s*(rate|ratio|percentage)|\berrors?\b|eror|erorr|failing\s+requests|failure\s+rate|fail\b",
            1.4,
        ),
        (
            "metric_top",
            r"\btop\s*-?\d*\b|\bmost\b|heaviest|heavist|biggest|largest|highest|\brank|leaderboard|\bhogs?\b|worst|greediest|noisiest|busiest|slowest\s+services|\bsort",
            1.5,
        ),
        (
            "actions_list",
            r"\bdid\s+(you|u|vigil|the\s+agent)\b|\byou\s+(do|did|take|took|make|made)\b|actions?\b|actons|approv|pending|rejected|denied|dry[\s-]?run|remediat|journal|notifications?|did\s+it\s+help|what\s+changed|would\s+(you\s+)?have",
            1.4,
        ),
        (
            "pods_status",
            r"pending|crash\s*loop|crashloop|crashing|oom\s*kill|oomkilled|not\s+running|\brunning\b|replicas|pods?\s+(status|list)|evicted|stuck|\bready\b|\bphase\b|get\s+pods|describe|annotations?|is\s+\S+\s+up\b",
            1.3,
        ),
        (
            "capacity",
            r"\bnodes?\b|headroom|\bhpa\b|autoscal|\bpvc\b|volumes?|\bdisk\b|storage|allocatable|capacity|capcity|room\s+for|over\s*committed|max(ed)?\s+(out|replicas)|scale\s+further|space\s+left|how\s+far\s+can",
            1.5,
        ),
        (
            "health_summary",
            r"\bstatus\b|stauts|\bhealth|helth|healthy|\bok\b|overview|summar|sitrep|on\s+fire|broken|how\s+(is|are|'s)\s+(it|we|things|the\s+cluster)|hows\s+it|report\b|tl;?dr|worry",
            1.3,
        ),
        (
            "metric_trend",
            r"\btrend|over\s+time|growing|increas|rising|risen|drop|climb|going\s+(up|down)|compare|\bvs\.?\b|versus|than\s+yesterday|spik|leak|\bgraph|\bplot|\bchart|histor|evolv|sparkline|behaving|changed|busier|developed",
            1.5,
        ),
        (
            "metric_value",
            r"how\s+much|how\s+many\s+(cores|requests|restarts|times)|what\s+is\s+the\s+(current\s+)?(cpu|memory|request)|\bcurrent\b|right\s+now|\busage\b|footprint|consum",
            0.9,
        ),
        (
            "out_of_scope",
            r"^\s*(help|\?+|hi|hello|hey|thanks?|thank\s+you|test|ping)\s*[!.?]*\s*$|what\s+can\s+(you|i)\s+(do|ask)|how\s+do\s+i\s+use|joke|weather|poem|pizza|movie|recipe|cook",
            2.5,
        ),
    )
)


def is_change_request(text: str) -> bool:
    """An imperative asking vigil to change something ("restart cart", "please delete …")."""
    text = text.strip().lower()
    if _NOT_A_QUESTION_OF_STATE.match(text) and not re.match(r"^(?:can|could|would|will)\s", text):
        return False
    return bool(_IMPERATIVE.search(text))


def is_secret_or_injection(text: str) -> bool:
    """Asks for secrets, or tries to talk the engine out of its rules."""
    text = text.lower()
    return bool(_SECRET.search(text) or _INJECTION.search(text))


def combine(text: str, ranked: dict[str, float]) -> list[tuple[str, float]]:
    """Classifier probabilities plus cue weights, as (intent, score) best first."""
    lower = text.lower()
    scores = {intent: math.log(max(p, 1e-6)) for intent, p in ranked.items()}
    for intent, pattern, weight in _CUES:
        if intent in scores and pattern.search(lower):
            scores[intent] += weight
    if is_change_request(lower):
        scores["action_request"] = scores.get("action_request", -10.0) + 6.0
    if is_secret_or_injection(lower):
        scores["out_of_scope"] = scores.get("out_of_scope", -10.0) + 6.0
    return sorted(scores.items(), key=lambda kv: -kv[1])
