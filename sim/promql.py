"""A parser for the PromQL subset the twin answers (``docs/sim.md`` lists it).

Turns query text into a small AST (``Number``, ``Selector``, ``Call``, ``Aggregate``,
``Binary``, ``Negate``); anything outside the subset raises ``QueryError`` quoting
the query and saying what is not supported. Evaluated by ``vigil.sim.evaluator``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigil.core import QueryError
from vigil.sim.history import Matcher

__all__ = [
    "AGGREGATIONS",
    "FUNCTIONS",
    "Aggregate",
    "Binary",
    "Call",
    "Expr",
    "Negate",
    "Number",
    "Selector",
    "parse",
    "parse_duration",
]

AGGREGATIONS = {"sum", "avg", "max", "min", "count", "topk", "bottomk"}
# name -> argument kinds ("range", "vector", "scalar")
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "rate": ("range",),
    "irate": ("range",),
    "increase": ("range",),
    "delta": ("range",),
    "avg_over_time": ("range",),
    "max_over_time": ("range",),
    "min_over_time": ("range",),
    "sum_over_time": ("range",),
    "count_over_time": ("range",),
    "last_over_time": ("range",),
    "deriv": ("range",),
    "predict_linear": ("range", "scalar"),
    "histogram_quantile": ("scalar", "vector"),
    "abs": ("vector",),
    "ceil": ("vector",),
    "floor": ("vector",),
    "sqrt": ("vector",),
    "exp": ("vector",),
    "ln": ("vector",),
    "log2": ("vector",),
    "log10": ("vector",),
    "clamp_min": ("vector", "scalar"),
    "clamp_max": ("vector", "scalar"),
}
_UNSUPPORTED_KEYWORDS = {
    "offset": "the offset modifier",
    "group_left": "group_left (many-to-one matching)",
    "group_right": "group_right (one-to-many matching)",
    "and": "the set operator 'and'",
    "or": "the set operator 'or'",
    "unless": "the set operator 'unless'",
    "atan2": "atan2",
}
_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_PRECEDENCE = {
    "==": 1,
    "!=": 1,
    ">": 1,
    "<": 1,
    ">=": 1,
    "<=": 1,
    "+": 2,
    "-": 2,
    "*": 3,
    "/": 3,
    "%": 3,
    "^": 4,
}
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_DURATION = re.compile(r"^(?:(\d+)(ms|s|m|h|d|w|y))+$")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![a-zA-Z_:]))
  | (?P<duration_like>\d+[a-z]+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^(){}\[\],=<>@:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[Matcher, ...]
    range_s: float | None = None


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Expr
    param: Expr | None
    labels: tuple[str, ...]
    without: bool


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Negate:
    expr: Expr


Expr = Number | Selector | Call | Aggregate | Binary | Negate


def parse_duration(text: str, query: str = "") -> float:
    """``5m`` → 300.0, ``1h30m`` → 5400.0 (seconds)."""
    if not _DURATION.match(text):
        raise QueryError(f"bad duration {text!r} in query {query!r}", query=query)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(query):
            match = _TOKEN.match(query, pos)
            if match is None:
                self.fail(f"unexpected character {query[pos]!r} at position {pos}")
            assert match is not None
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, match.group()))
            pos = match.end()
        self.i = 0

    def fail(self, why: str) -> None:
        raise QueryError(f"cannot evaluate query {self.query!r}: {why}", query=self.query)

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            self.fail(f"expected {value!r} but found {tok[1] or 'end of query'!r}")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if not self.tokens:
            self.fail("the query is empty")
        expr = self.expression(0)
        if self.peek()[0] != "eof":
            self.fail(f"unexpected {self.peek()[1]!r} after a complete expression")
        return expr

    def _check_keyword(self, word: str) -> None:
        if word in _UNSUPPORTED_KEYWORDS:
            self.fail(f"{_UNSUPPORTED_KEYWORDS[word]} is not supported by the twin's PromQL subset")

    def expression(self, min_prec: int) -> Expr:
        lhs = self.unary()
        while True:
            kind, op = self.peek()
            if kind == "ident":
                self._check_keyword(op)
            if kind != "op" or op not in _PRECEDENCE or _PRECEDENCE[op] < min_prec:
                return lhs
            self.take()
            return_bool = False
            if self.peek() == ("ident", "bool"):
                if op not in _COMPARISONS:
                    self.fail("'bool' applies only to comparison operators")
                self.take()
                return_bool = True
            on = ignoring = None
            if self.peek()[1] in ("on", "ignoring"):
                word = self.take()[1]
                labels = self.label_list()
                on, ignoring = (labels, None) if word == "on" else (None, labels)
            if self.peek()[0] == "ident":
                self._check_keyword(self.peek()[1])
            # ^ is right-associative; the others left.
            next_prec = _PRECEDENCE[op] if op == "^" else _PRECEDENCE[op] + 1
            rhs = self.expression(next_prec)
            lhs = Binary(op, lhs, rhs, return_bool, on, ignoring)

    def unary(self) -> Expr:
        kind, value = self.peek()
        if kind == "op" and value in ("-", "+"):
            self.take()
            # Unary minus binds tighter than * but looser than ^ (-2 ^ 2 is -4).
            inner = self.expression(_PRECEDENCE["^"])
            return Negate(inner) if value == "-" else inner
        return self.primary()

    def label_list(self) -> tuple[str, ...]:
        self.take("(")
        labels: list[str] = []
        while self.peek()[1] != ")":
            kind, name = self.take()
            if kind != "ident":
                self.fail(f"expected a label name, found {name!r}")
            labels.append(name)
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return tuple(labels)

    def primary(self) -> Expr:
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return Number(float(value))
        if kind == "duration_like":
            self.fail(f"a duration ({value}) is only allowed inside [...]")
        if kind == "op" and value == "(":
            self.take()
            inner = self.expression(0)
            self.take(")")
            return self.range_suffix(inner)
        if kind == "op" and value == "{":
            return self.selector(None)
        if kind == "ident":
            self._check_keyword(value)
            if value in ("Inf", "inf", "NaN", "nan"):
                self.take()
                return Number(float(value))
            if value in AGGREGATIONS:
                return self.aggregate()
            if self.peek(1)[1] == "(":
                return self.call()
            if value in ("sum", "avg", "stddev", "stdvar", "quantile", "count_values", "group"):
                self.fail(f"aggregation {value!r} is not supported")
            self.take()
            return self.selector(value)
        self.fail(f"unexpected {value or 'end of query'!r}")
        raise AssertionError  # unreachable: fail raises

    def selector(self, name: str | None) -> Expr:
        matchers: list[Matcher] = []
        if self.peek()[1] == "{":
            self.take()
            while self.peek()[1] != "}":
                kind, label = self.take()
                if kind != "ident":
                    self.fail(f"expected a label name in the selector, found {label!r}")
                _, op = self.take()
                if op not in ("=", "!=", "=~", "!~"):
                    self.fail(f"expected a matcher (=, !=, =~, !~) after {label!r}, found {op!r}")
                s_kind, text = self.take()
                if s_kind != "string":
                    self.fail(f"expected a quoted string after {label}{op}, found {text!r}")
                val = _unquote(text)
                if op in ("=~", "!~"):
                    try:
                        re.compile(val)
                    except re.error as exc:
                        self.fail(f"bad regular expression {val!r}: {exc}")
                if label == "__name__" and op == "=":
                    if name is not None:
                        self.fail("metric name given twice")
                    name = val
                else:
                    matchers.append(Matcher(label, op, val))
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
        if name is None and not any(not m.matches({}) for m in matchers):
            self.fail(
                "a vector selector needs a metric name or a matcher that does not match empty"
            )
        return self.range_suffix(Selector(name, tuple(matchers)))

    def range_suffix(self, expr: Expr) -> Expr:
        if self.peek()[1] == "[":
            self.take()
            parts = []
            while self.peek()[1] not in ("]", ""):
                if ":" in self.peek()[1]:
                    self.fail("subqueries ([range:step]) are not supported")
                parts.append(self.take()[1])
            self.take("]")
            if not isinstance(expr, Selector) or expr.range_s is not None:
                self.fail("a range [..] applies only to a plain vector selector")
            assert isinstance(expr, Selector)
            seconds = parse_duration("".join(parts), self.query)
            if seconds <= 0:
                self.fail("a range must be positive")
            expr = Selector(expr.name, expr.matchers, seconds)
        if self.peek()[1] == "@":
            self.fail("the @ modifier is not supported")
        if self.peek() == ("ident", "offset"):
            self._check_keyword("offset")
        return expr

    def aggregate(self) -> Expr:
        op = self.take()[1]
        labels: tuple[str, ...] = ()
        without = False
        grouping_seen = False
        if self.peek()[1] in ("by", "without"):
            without = self.take()[1] == "without"
            labels = self.label_list()
            grouping_seen = True
        self.take("(")
        param: Expr | None = None
        if op in ("topk", "bottomk"):
            param = self.expression(0)
            self.take(",")
        expr = self.expression(0)
        self.take(")")
        if self.peek()[1] in ("by", "without"):
            if grouping_seen:
                self.fail("grouping given twice")
            without = self.take()[1] == "without"
            labels = self.label_list()
        return Aggregate(op, expr, param, labels, without)

    def call(self) -> Expr:
        name = self.take()[1]
        if name not in FUNCTIONS:
            supported = ", ".join(sorted(FUNCTIONS))
            self.fail(f"function {name}() is not supported (supported: {supported})")
        self.take("(")
        args: list[Expr] = []
        while self.peek()[1] != ")":
            args.append(self.expression(0))
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                self.fail(f"expected ',' or ')' in {name}(), found {self.peek()[1]!r}")
        self.take(")")
        kinds = FUNCTIONS[name]
        if len(args) != len(kinds):
            self.fail(f"{name}() takes {len(kinds)} argument(s), got {len(args)}")
        for arg, want in zip(args, kinds, strict=True):
            is_range = isinstance(arg, Selector) and arg.range_s is not None
            if want == "range" and not is_range:
                self.fail(f"{name}() needs a range vector such as metric[5m]")
            if want != "range" and is_range:
                self.fail(f"{name}() does not take a range vector")
        return Call(name, tuple(args))


def parse(query: str) -> Expr:
    """Parse ``query`` or raise ``QueryError`` naming what is wrong or unsupported."""
    return _Parser(query).parse()
