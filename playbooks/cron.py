"""Cron-like freeze windows: a five-field matcher (minute hour day-of-month month weekday).

Used by ``vigil.playbooks.guardrails`` (no action while a window matches) and by the
settings validator. Written here rather than taken as a dependency: the matcher is
small, and a window means "every minute matching the fields", as in crontab(5).
Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CronWindow", "frozen_until"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 7),
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    3: {m: i + 1 for i, m in enumerate(_MONTHS)},
    4: {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


def _value(text: str, index: int, spec: str) -> int:
    name, low, high = _FIELDS[index]
    lowered = text.lower()
    if lowered in _NAMES.get(index, {}):
        return _NAMES[index][lowered]
    try:
        number = int(text)
    except ValueError:
        raise ValueError(
            f"freeze window {spec!r}: {name} field has {text!r}, not a number in {low}-{high}"
        ) from None
    if not low <= number <= high:
        raise ValueError(f"freeze window {spec!r}: {name} {number} is outside {low}-{high}")
    return number


def _field(text: str, index: int, spec: str) -> frozenset[int]:
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValueError(f"freeze window {spec!r}: empty list item in the {name} field")
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(
                    f"freeze window {spec!r}: {name} step {step_text!r} must be a positive integer"
                )
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, index, spec), _value(b, index, spec)
            if first > last:
                raise ValueError(f"freeze window {spec!r}: {name} range {body!r} runs backwards")
        else:
            first = _value(body, index, spec)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True)
class CronWindow:
    """One window, e.g. ``* 22-23 * * fri`` (Friday 22:00–23:59 UTC)."""

    spec: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, spec: str) -> CronWindow:
        parts = spec.split()
        if len(parts) != 5:
            raise ValueError(
                f"freeze window {spec!r}: need 5 fields (minute hour day-of-month month "
                f"weekday), got {len(parts)}; e.g. '* 22-23 * * fri'"
            )
        minutes, hours, days, months, weekdays = (
            _field(text, i, spec) for i, text in enumerate(parts)
        )
        return cls(
            spec,
            minutes,
            hours,
            days,
            months,
            weekdays,
            day_restricted=parts[2] != "*",
            weekday_restricted=parts[4] != "*",
        )

    def matches(self, when: datetime) -> bool:
        """Whether the minute containing ``when`` (read in UTC) is inside the window."""
        if when.tzinfo is None:
            raise ValueError("freeze windows need a timezone-aware time")
        t = when.astimezone(UTC)
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        day_ok = t.day in self.days
        weekday_ok = (t.isoweekday() % 7) in self.weekdays
        # crontab(5): when both day fields are restricted, either may match.
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def frozen_until(windows: list[CronWindow], when: datetime) -> datetime | None:
    """``None`` when no window matches ``when``; else the first later minute that is free.

    Searches at most 8 days ahead (a window that never ends reports the search limit).
    """
    if not any(w.matches(when) for w in windows):
        return None
    t = when.replace(second=0, microsecond=0)
    limit = t + timedelta(days=8)
    while t < limit:
        t += timedelta(minutes=1)
        if not any(w.matches(t) for w in windows):
            return t
    return limit
