"""How an incident message reads: plain text (webhook, file, Slack fallback) and Block Kit.

Called by the notifiers (``vigil.actions.slack``, ``webhook``, ``filesink``) and by
``vigil.agent.notifying`` to show a message in the CLI. Pure functions of a
``Notification``; well-known ``fields`` are shown specially: ``incident`` (the
incident's headline, kept when later states have their own title), ``approve_url`` /
``deny_url`` (signed approval links, shown as buttons), ``cluster``.
"""

from __future__ import annotations

from typing import Any

from vigil.core import IncidentState, Notification, Severity

__all__ = ["STATE_LABELS", "headline", "render_blocks", "render_text"]

STATE_LABELS: dict[IncidentState, tuple[str, str]] = {
    IncidentState.DETECTED: (":rotating_light:", "Detected"),
    IncidentState.ACTING: (":wrench:", "Acting"),
    IncidentState.AWAITING_APPROVAL: (":raised_hand:", "Awaiting approval"),
    IncidentState.VERIFIED: (":white_check_mark:", "Verified"),
    IncidentState.REVERTED: (":leftwards_arrow_with_hook:", "Reverted"),
    IncidentState.ESCALATED: (":sos:", "Escalated"),
    IncidentState.RESOLVED: (":large_green_circle:", "Resolved"),
}
_SEVERITY_MARK = {Severity.INFO: "INFO", Severity.WARNING: "WARNING", Severity.CRITICAL: "CRITICAL"}
_SHOWN = ("playbook", "action_id", "status", "target", "alertname")
# Slack refuses section texts over 3000 characters; keep well under it.
_MAX_SECTION = 2900


def headline(message: Notification) -> str:
    """``[WARNING] Verified · <incident headline>`` — what a reader sees first."""
    _, label = STATE_LABELS[message.state]
    about = str(message.fields.get("incident") or message.title)
    return f"[{_SEVERITY_MARK[message.severity]}] {label} · {about}"


def _context(message: Notification) -> str:
    parts = [f"incident {message.incident_key}"]
    if message.fields.get("cluster"):
        parts.append(f"cluster {message.fields['cluster']}")
    if message.namespace:
        parts.append(f"namespace {message.namespace}")
    parts.append(message.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"))
    return " · ".join(parts)


def _details(message: Notification) -> list[str]:
    return [f"{k}: {message.fields[k]}" for k in _SHOWN if message.fields.get(k) not in (None, "")]


def render_text(message: Notification) -> str:
    """The message as plain text: headline, context line, title, text, details, links."""
    lines = [headline(message), _context(message)]
    if message.fields.get("incident") and message.title != message.fields["incident"]:
        lines.append(message.title)
    if message.text:
        lines.append(message.text)
    details = _details(message)
    if details:
        lines.append(" · ".join(details))
    if message.fields.get("approve_url"):
        lines.append(f"approve: {message.fields['approve_url']}")
    if message.fields.get("deny_url"):
        lines.append(f"deny: {message.fields['deny_url']}")
    return "\n".join(lines)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:_MAX_SECTION]}


def render_blocks(message: Notification) -> list[dict[str, Any]]:
    """Block Kit: headline section, context line, body, details, approve/deny buttons."""
    emoji, _ = STATE_LABELS[message.state]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"{emoji} *{headline(message)}*")},
        {"type": "context", "elements": [_mrkdwn(_context(message))]},
    ]
    body = []
    if message.fields.get("incident") and message.title != message.fields["incident"]:
        body.append(f"*{message.title}*")
    if message.text:
        body.append(message.text)
    if body:
        blocks.append({"type": "section", "text": _mrkdwn("\n".join(body))})
    details = _details(message)
    if details:
        blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(details))]})
    buttons = []
    if message.fields.get("approve_url"):
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "url": str(message.fields["approve_url"]),
                "action_id": "vigil-approve",
            }
        )
    if message.fields.get("deny_url"):
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "url": str(message.fields["deny_url"]),
                "action_id": "vigil-deny",
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return blocks
