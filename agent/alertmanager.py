"""Alertmanager's webhook payload (version 4) → findings: firing opens, resolved closes.

``vigil.agent.server`` hands the raw body to ``parse_payload`` (which validates all of
it before anything is written, so a bad payload changes nothing) and then to
``apply_alerts``. A firing alert becomes ``Finding(kind=ALERT)`` whose id comes from the
alert's fingerprint and ``startsAt``: Alertmanager repeating the same alert (every
``repeat_interval``) refreshes one finding. A resolved alert closes that finding and
never opens one, so it can never start an action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from vigil.agent.stages import target_from_labels
from vigil.core import Finding, FindingKind, NotFoundError, PermanentError, Severity, finding_id

__all__ = ["Alert", "AlertResult", "PayloadError", "alert_finding", "apply_alerts", "parse_payload"]

MAX_ALERTS = 1000  # Alertmanager's max_alerts is usually far lower; more is a runaway sender

_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "info": Severity.INFO,
    "none": Severity.INFO,
}
_FRACTION = re.compile(r"\.(\d+)")


class PayloadError(PermanentError):
    """The body is not a usable Alertmanager v4 payload; the message says where and why."""


@dataclass(frozen=True)
class Alert:
    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""

    @property
    def subject(self) -> str:
        return f"alert:{self.fingerprint}"

    @property
    def finding_id(self) -> str:
        return finding_id(FindingKind.ALERT, self.subject, self.starts_at)


@dataclass
class AlertResult:
    new: int = 0
    repeat: int = 0
    resolved: int = 0
    unknown: int = 0  # resolved alerts vigil never saw firing


def _time(value: Any, where: str) -> datetime | None:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{where}: expected an RFC 3339 time string, got {value!r}")
    if value.startswith("0001-01-01"):
        return None  # Go's zero time: "not set"
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise PayloadError(f"{where}: {value!r} has no timezone")
    return when.astimezone(UTC)


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{where}: expected an object of strings")
    return dict(value)


def parse_payload(body: bytes) -> list[Alert]:
    """Every alert of a v4 payload, or ``PayloadError`` naming the first problem."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object (Alertmanager webhook payload)")
    if str(data.get("version")) != "4":
        raise PayloadError(
            f"payload version {data.get('version')!r} is not supported; vigil reads version 4"
        )
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("payload has no 'alerts' list")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"payload has {len(alerts)} alerts, more than {MAX_ALERTS}")
    out = []
    for i, raw in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(raw, dict):
            raise PayloadError(f"{where}: expected an object")
        status = raw.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"{where}.status: expected firing or resolved, got {status!r}")
        fingerprint = raw.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint.strip():
            raise PayloadError(f"{where}.fingerprint: missing (Alertmanager always sends one)")
        starts = _time(raw.get("startsAt"), f"{where}.startsAt")
        if starts is None:
            raise PayloadError(f"{where}.startsAt: the zero time is not a start")
        ends = _time(raw["endsAt"], f"{where}.endsAt") if raw.get("endsAt") else None
        url = raw.get("generatorURL") or ""
        out.append(
            Alert(
                status=status,
                labels=_labels(raw.get("labels"), f"{where}.labels"),
                annotations=_labels(raw.get("annotations"), f"{where}.annotations"),
                starts_at=starts,
                ends_at=ends,
                fingerprint=fingerprint.strip(),
                generator_url=url if isinstance(url, str) else "",
            )
        )
    return out


def alert_finding(alert: Alert, *, now: datetime) -> Finding:
    """The finding a firing alert opens (or refreshes)."""
    labels = alert.labels
    name = labels.get("alertname", "alert")
    where = "/".join(x for x in (labels.get("namespace"), labels.get("deployment")
                                 or labels.get("pod") or labels.get("service")) if x)  # fmt: skip
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    title = f"{name}" + (f" on {where}" if where else "") + (f": {summary}" if summary else "")
    severity = _SEVERITIES.get(labels.get("severity", "").lower(), Severity.WARNING)
    return Finding(
        kind=FindingKind.ALERT,
        subject=alert.subject,
        title=title[:300],
        severity=severity,
        observed_at=now,
        started_at=alert.starts_at,
        labels=labels,
        target=target_from_labels(labels),
        details={
            **alert.annotations,
            "fingerprint": alert.fingerprint,
            "generator_url": alert.generator_url,
        },
    )


class _FindingWriter(Protocol):
    def record_finding(self, finding: Finding) -> bool: ...

    def resolve_finding(self, finding_id: str, at: datetime) -> None: ...


def apply_alerts(store: _FindingWriter, alerts: list[Alert], *, now: datetime) -> AlertResult:
    """Record firing alerts, close resolved ones; returns what happened to each."""
    result = AlertResult()
    for alert in alerts:
        if alert.status == "firing":
            if store.record_finding(alert_finding(alert, now=now)):
                result.new += 1
            else:
                result.repeat += 1
            continue
        try:
            store.resolve_finding(alert.finding_id, alert.ends_at or now)
            result.resolved += 1
        except NotFoundError:
            result.unknown += 1
    return result
