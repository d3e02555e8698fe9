"""Time phrases in questions → ``TimeRange`` and forecast horizons, with an injected clock.

"last night", "since 9am", "past 2h", "yesterday", "this morning", "this week",
absolute dates and times ("on 2026-11-21", "between 02:00 and 03:00"), and the
comparison phrases ("vs yesterday", "same time yesterday"). Called by
``vigil.nlq.entities``; ``now`` and the zone come from the caller (config), never from
the wall clock here. Names follow nlq-taxonomy.md: ``now``, ``last_<N><m|h|d>``,
``today``, ``yesterday``, ``last_night``, ``this_morning`` or an explicit range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Horizon", "TimeRange", "find_compare_to", "find_horizon", "find_time_range"]

_UNITS = {
    "s": 0,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "week": 604800,
    "weeks": 604800,
}
_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "couple of": 2,
    "few": 3,
}
_NUM = r"(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|twelve|couple of|few)"
_UNIT = r"(minutes?|mins?|m|hours?|hrs?|hr|h|days?|d|weeks?|wks?|w)"
_LAST_N = re.compile(
    rf"\b(?:in\s+the\s+|over\s+the\s+|for\s+the\s+|during\s+the\s+|within\s+the\s+|the\s+)?"
    rf"(?:last|past|previous|prev|recent|lst|pst)\s+{_NUM}\s*{_UNIT}\b"
)
_LAST_UNIT = re.compile(
    r"\b(?:in\s+the\s+|over\s+the\s+|for\s+the\s+|during\s+the\s+|the\s+)?"
    r"(?:last|past|previous)\s+(hour|day|week|30\s*min|half\s+hour)\b"
)
_N_AGO = re.compile(rf"\b{_NUM}\s*{_UNIT}\s+ago\b")
_BARE_WINDOW = re.compile(r"\b(\d+)\s*(m|h|d|w)\b")
_CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm|z|utc)?"
_SINCE_CLOCK = re.compile(rf"\b(?:since|from|after)\s+{_CLOCK}(?!\s*(?:minutes?|hours?|days?))\b")
_BETWEEN = re.compile(rf"\b(?:between|from)\s+{_CLOCK}\s+(?:and|to|until|-)\s+{_CLOCK}\b")
_ISO_DATE = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)(?:[t\s](\d{1,2}):(\d{2})(?::\d{2})?z?)?\b")
_HORIZON = re.compile(
    rf"\b(?:next|coming|upcoming|following|in|for)\s+(?:the\s+)?{_NUM}\s*{_UNIT}\b"
)
_HORIZON_UNIT = re.compile(r"\b(?:next|coming|rest\s+of\s+the)\s+(hour|day|week)\b")


@dataclass(frozen=True)
class TimeRange:
    """A window ``[start, end]`` (aware UTC) with the taxonomy's name; ``now`` is instant."""

    name: str
    start: datetime
    end: datetime
    clamped: str = ""

    @property
    def instant(self) -> bool:
        return self.name == "now"

    @property
    def seconds(self) -> int:
        return max(60, int((self.end - self.start).total_seconds()))

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "start": _iso(self.start), "end": _iso(self.end)}

    def describe(self) -> str:
        if self.name == "now":
            return "now"
        if self.name in {"last_night", "this_morning"}:
            return self.name.replace("_", " ")
        if re.fullmatch(r"last_\d+[mhd]", self.name):
            return "the last " + _spell(self.name[5:])
        if self.name in {"today", "yesterday"}:
            return self.name
        return f"{_hm(self.start)} to {_hm(self.end)}"


@dataclass(frozen=True)
class Horizon:
    """How far ahead a forecast question looks (``next_2h``)."""

    name: str
    seconds: int


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hm(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _spell(window: str) -> str:
    num, unit = window[:-1], window[-1]
    word = {"m": "minute", "h": "hour", "d": "day"}[unit]
    return f"{num} {word}{'' if num == '1' else 's'}"


def _number(text: str) -> float:
    text = re.sub(r"\s+", " ", text)
    return float(_WORDS[text]) if text in _WORDS else float(text)


def _window_name(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"last_{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"last_{seconds // 3600}h"
    return f"last_{max(1, seconds // 60)}m"


def _unit_seconds(unit: str) -> int:
    unit = unit.strip()
    if unit in _UNITS:
        return _UNITS[unit]
    return _UNITS.get(unit.rstrip("s"), 3600)


def _clock_time(hour: str, minute: str | None, suffix: str | None) -> time | None:
    h, m = int(hour), int(minute or 0)
    if suffix == "pm" and h < 12:
        h += 12
    if suffix == "am" and h == 12:
        h = 0
    if not suffix and minute is None and h > 24:
        return None
    if h > 23 or m > 59:
        return None
    return time(h, m)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def find_time_range(
    text: str, now: datetime, zone: ZoneInfo, *, retention_days: float
) -> tuple[TimeRange | None, str]:
    """The first time phrase in lowercase ``text`` as a range, and the text without it.

    Ranges reaching past the retention are clamped, and say so in ``clamped``."""
    found = _match(text, now, zone)
    if found is None:
        return None, text
    rng, span = found
    rest = (text[: span[0]] + " " + text[span[1] :]).strip()
    oldest = now - timedelta(days=retention_days)
    if rng.start < oldest:
        days = f"{retention_days:g}"
        note = f"clamped to the {days}-day retention (asked from {_hm(rng.start)})"
        name = _window_name(retention_days * 86400) if rng.name.startswith("last_") else rng.name
        rng = TimeRange(name, oldest, rng.end, note)
    return rng, rest


def _match(text: str, now: datetime, zone: ZoneInfo) -> tuple[TimeRange, tuple[int, int]] | None:
    local = now.astimezone(zone)
    today = local.date()
    midnight = _at(today, time(0), zone)

    if m := _BETWEEN.search(text):
        first = _clock_time(m.group(1), m.group(2), m.group(3))
        second = _clock_time(m.group(4), m.group(5), m.group(6))
        if first and second:
            start, end = _at(today, first, zone), _at(today, second, zone)
            if start > now:
                start, end = start - timedelta(days=1), end - timedelta(days=1)
            if end < start:
                end += timedelta(days=1)
            return TimeRange("range", start, min(end, now)), m.span()
    if m := _ISO_DATE.search(text):
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if m.group(4):
            start = _at(day, time(int(m.group(4)), int(m.group(5))), zone)
            return TimeRange("range", start, min(start + timedelta(hours=1), now)), m.span()
        start = _at(day, time(0), zone)
        return TimeRange("range", start, min(start + timedelta(days=1), now)), m.span()
    if m := _LAST_N.search(text):
        seconds = _number(m.group(1)) * _unit_seconds(m.group(2))
        if seconds >= 60:
            name = _window_name(seconds)
            return TimeRange(name, now - timedelta(seconds=seconds), now), m.span()
    if m := _LAST_UNIT.search(text):
        word = m.group(1)
        seconds = {"hour": 3600, "day": 86400, "week": 7 * 86400}.get(word, 1800)
        return TimeRange(_window_name(seconds), now - timedelta(seconds=seconds), now), m.span()
    if m := re.search(r"\b(this|past|last|current)\s+week\b", text):
        return TimeRange("last_7d", now - timedelta(days=7), now), m.span()
    if m := re.search(r"\bsince\s+(yesterday|yday|midnight|this\s+morning)\b", text):
        start = {
            "midnight": midnight,
            "this morning": _at(today, time(6), zone),
        }.get(re.sub(r"\s+", " ", m.group(1)), midnight - timedelta(days=1))
        return TimeRange("range", start, now), m.span()
    if m := re.search(r"\b(last\s+night|overnight|during\s+the\s+night|lastnight)\b", text):
        start = _at(today - timedelta(days=1), time(18), zone)
        return TimeRange("last_night", start, min(_at(today, time(6), zone), now)), m.span()
    if m := re.search(r"\b(this\s+morning|earlier\s+this\s+morning)\b", text):
        start = _at(today, time(6), zone)
        return TimeRange("this_morning", start, min(_at(today, time(12), zone), now)), m.span()
    if m := re.search(r"\bthis\s+afternoon\b", text):
        start = _at(today, time(12), zone)
        return TimeRange("range", start, min(_at(today, time(18), zone), now)), m.span()
    if m := _SINCE_CLOCK.search(text):
        clock = _clock_time(m.group(1), m.group(2), m.group(3))
        if clock is not None and (m.group(2) or m.group(3) or int(m.group(1)) <= 23):
            start = _at(today, clock, zone)
            if start > now:
                start -= timedelta(days=1)
            return TimeRange("range", start, now), m.span()
    if (m := re.search(r"\b(yesterday|yday|yesterdy|yesteday)\b", text)) and not re.search(
        r"(same\s+time|compared?\s+(to|with)|vs\.?|versus|than)\s+yesterday", text
    ):
        start = midnight - timedelta(days=1)
        return TimeRange("yesterday", start, midnight), m.span()
    if m := re.search(r"\b(today|so\s+far\s+today|todays|2day)\b", text):
        return TimeRange("today", midnight, now), m.span()
    if m := re.search(r"\b(right\s+now|currently|at\s+the\s+moment|atm|now)\b", text):
        return TimeRange("now", now, now), m.span()
    if m := _N_AGO.search(text):
        seconds = _number(m.group(1)) * _unit_seconds(m.group(2))
        if seconds >= 60:
            return TimeRange(_window_name(seconds), now - timedelta(seconds=seconds), now), m.span()
    if m := re.search(r"\b(?:in|over|for|last|past)\s+(\d+)\s*(m|h|d|w)\b", text):
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
        if seconds >= 60:
            return TimeRange(_window_name(seconds), now - timedelta(seconds=seconds), now), m.span()
    return None


def default_range(name: str, now: datetime) -> TimeRange:
    """A default window by name (``now``, ``last_1h``, ``last_6h``, ``last_24h``)."""
    if name == "now":
        return TimeRange("now", now, now)
    seconds = int(name[5:-1]) * _UNITS[name[-1]]
    return TimeRange(name, now - timedelta(seconds=seconds), now)


def find_compare_to(text: str) -> str | None:
    """``yesterday``/``last_week`` when the question compares with an earlier window."""
    if re.search(
        r"(same\s+time\s+yesterday|compared?\s+(to|with)\s+yesterday|vs\.?\s+yesterday|"
        r"versus\s+yesterday|than\s+yesterday)",
        text,
    ):
        return "yesterday"
    if re.search(r"(compared?\s+(to|with)|vs\.?|versus|than)\s+last\s+week", text):
        return "last_week"
    return None


def find_horizon(text: str) -> Horizon | None:
    """A forecast horizon: "next 2 hours" → ``next_2h``; "tonight" → until midnight."""
    if m := _HORIZON.search(text):
        seconds = int(_number(m.group(1)) * _unit_seconds(m.group(2)))
        if seconds >= 3600 and seconds % 86400 == 0:
            return Horizon(f"next_{seconds // 86400}d", seconds)
        if seconds >= 60:
            return Horizon(f"next_{max(1, round(seconds / 3600))}h", seconds)
    if m := _HORIZON_UNIT.search(text):
        seconds = {"hour": 3600, "day": 86400, "week": 604800}[m.group(1)]
        name = {"hour": "next_1h", "day": "next_1d", "week": "next_7d"}[m.group(1)]
        return Horizon(name, seconds)
    if re.search(r"\b(this\s+week|by\s+the\s+weekend)\b", text):
        return Horizon("next_7d", 604800)
    if re.search(r"\btomorrow\b", text):
        return Horizon("next_1d", 86400)
    if re.search(r"\b(tonight|this\s+evening|later\s+today|end\s+of\s+(the\s+)?day)\b", text):
        return Horizon("tonight", 12 * 3600)
    return None
