"""The Kubernetes verify conditions: ``ready_replicas >= replicas``, ``crash_looping_pods == 0``.

A condition is ``LEFT OP RIGHT`` where each side is a field of the target's state or a
number (``true``/``false`` for flags). Parsed when a playbook is loaded
(``vigil.playbooks.schema``), evaluated by ``vigil.playbooks.verification`` on facts it
reads through the ``Cluster`` port.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["NODE_FIELDS", "OPERATORS", "WORKLOAD_FIELDS", "KubeCondition", "parse_condition"]

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

WORKLOAD_FIELDS: Mapping[str, str] = {
    "replicas": "desired replicas",
    "ready_replicas": "ready replicas",
    "available_replicas": "available replicas",
    "updated_replicas": "replicas on the current revision",
    "revision": "rollout revision",
    "crash_looping_pods": "pods waiting in CrashLoopBackOff",
    "not_ready_pods": "pods not ready",
    "restarts_increase": "container restarts since the action (summed over the pods)",
    "oom_killed_pods": "pods whose last termination was OOMKilled and restarted since",
}
NODE_FIELDS: Mapping[str, str] = {
    "ready": "node Ready condition (true/false)",
    "unschedulable": "node cordoned (true/false)",
    "pressure": "number of pressure conditions that are True",
}

_CONDITION = re.compile(r"^\s*(\S+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def _operand(text: str, fields: Mapping[str, str], spec: str) -> str | float:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return 1.0 if lowered == "true" else 0.0
    try:
        return float(text)
    except ValueError:
        pass
    if text not in fields:
        raise ValueError(
            f"condition {spec!r}: unknown field {text!r}; known: {', '.join(sorted(fields))}"
        )
    return text


@dataclass(frozen=True)
class KubeCondition:
    """A parsed condition; ``scope`` is ``workload`` or ``node``."""

    text: str
    left: str | float
    op: str
    right: str | float
    scope: str

    def fields(self) -> tuple[str, ...]:
        return tuple(x for x in (self.left, self.right) if isinstance(x, str))

    def evaluate(self, facts: Mapping[str, float]) -> tuple[bool, str]:
        """Whether it holds on ``facts``, and what was observed (e.g. ``ready_replicas=2``)."""
        left = facts[self.left] if isinstance(self.left, str) else self.left
        right = facts[self.right] if isinstance(self.right, str) else self.right
        observed = ", ".join(f"{name}={facts[name]:g}" for name in self.fields())
        return OPERATORS[self.op](left, right), observed


def parse_condition(text: str) -> KubeCondition:
    """Read ``ready_replicas >= replicas``; fields decide whether it is about a workload
    or a node, and may not mix the two."""
    found = _CONDITION.match(text)
    if found is None:
        raise ValueError(
            f"cannot read condition {text!r}: write FIELD OP FIELD-or-NUMBER with OP one of "
            "<, <=, >, >=, ==, != (e.g. 'ready_replicas >= replicas')"
        )
    left_text, op, right_text = found.groups()
    names = {left_text, right_text}
    scope = "node" if names & set(NODE_FIELDS) else "workload"
    fields = NODE_FIELDS if scope == "node" else WORKLOAD_FIELDS
    left = _operand(left_text, fields, text)
    right = _operand(right_text, fields, text)
    if not isinstance(left, str) and not isinstance(right, str):
        raise ValueError(f"condition {text!r} compares two constants; name a field")
    return KubeCondition(text.strip(), left, op, right, scope)
