"""Label matchers as Alertmanager writes them: ``name="v"``, ``name!="v"``, ``=~``, ``!~``.

Parsed when a playbook is loaded (``vigil.playbooks.schema``) and evaluated by
``vigil.playbooks.matching`` against a finding's labels. Regexes are fully anchored,
as in Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LabelMatcher", "parse_matcher"]

_MATCHER = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[^\s"]*)\s*$'
)


@dataclass(frozen=True)
class LabelMatcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """A missing label reads as the empty string (Prometheus semantics)."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> LabelMatcher:
    """``namespace=~"prod-.*"`` → ``LabelMatcher``; a clear ``ValueError`` otherwise."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(
            f'cannot read label matcher {text!r}: write NAME OP "VALUE" with OP one of '
            '=, !=, =~, !~ (e.g. namespace=~"prod-.*")'
        )
    raw = found["value"]
    value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
    if found["op"] in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"label matcher {text!r}: bad regular expression: {exc}") from None
    return LabelMatcher(found["name"], found["op"], value)
