"""``explain(name)``: what a playbook does, in words, for ``vigil playbooks explain NAME``.

Reads the loaded playbook and the effective guardrail limits; no I/O beyond loading.
"""

from __future__ import annotations

from vigil.core import NotFoundError
from vigil.playbooks.limits import effective_limits
from vigil.playbooks.loading import load_playbooks
from vigil.playbooks.schema import Playbook
from vigil.playbooks.settings import GuardrailSettings, PlaybookSettings

__all__ = ["describe_seconds", "explain"]


def describe_seconds(value: float) -> str:
    """``3600`` → ``1 h``, ``900`` → ``15 min``, ``42`` → ``42 s``."""
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def _trigger(book: Playbook) -> list[str]:
    when = book.when
    lines: list[str] = []
    matchers: tuple[str, ...] = ()
    if when.anomaly is not None:
        metric = ", ".join(when.anomaly.metrics) or "any metric"
        lines.append(f"an anomaly of severity {when.anomaly.min_severity} or worse on {metric}")
        matchers = when.anomaly.matchers
    elif when.forecast is not None:
        f = when.forecast
        horizon = f" within {describe_seconds(f.within)}" if f.within else ""
        metric = ", ".join(f.metrics) or "any metric"
        lines.append(f"a forecast of {metric} crossing its {f.crosses}{horizon}")
        matchers = f.matchers
    elif when.alert is not None:
        lines.append(f"a firing Alertmanager alert {when.alert.alertname}")
        matchers = when.alert.matchers
    elif when.condition is not None:
        c = when.condition
        times = f" (at least {c.min_count} times)" if c.min_count > 1 else ""
        lines.append(f"the Kubernetes condition {c.type}{times}")
        matchers = c.matchers
    lines.extend(f"  with label {m}" for m in matchers)
    if when.after_rollout_within:
        recent = describe_seconds(when.after_rollout_within)
        lines.append(f"  and the target's last rollout at most {recent} ago")
    return lines


def explain(
    name: str,
    settings: PlaybookSettings | None = None,
    guardrails: GuardrailSettings | None = None,
) -> str:
    """Human text: when it fires, its steps, how it verifies, which guardrails apply."""
    books = {b.name: b for b in load_playbooks(settings)}
    if name not in books:
        raise NotFoundError(
            f"no playbook named {name!r}; known: {', '.join(sorted(books)) or 'none'} "
            "(see `vigil playbooks list`)"
        )
    book = books[name]
    g = guardrails or GuardrailSettings()
    lim = effective_limits(g, book.guardrails)
    out = [f"{book.name} (priority {book.priority}): {book.description}", "", "Fires on:"]
    out += [f"  {line}" for line in _trigger(book)]
    out += ["", f"Acts on the {book.target} the finding is about, in order:"]
    for i, step in enumerate(book.steps, 1):
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        out.append(f"  {i}. {step.action}{f' ({params})' if params else ''}")
    if len(book.steps) > 1:
        out.append("  each step escalates to the next when its verification fails")
    out.append("")
    if book.verify is None:
        out.append("Verify: nothing to verify (no change is made).")
    else:
        v = book.verify
        out.append(f"Verify {describe_seconds(v.within or g.verify_after)} after acting:")
        for p in v.promql:
            out.append(f"  PromQL {p.expr} {p.op} {p.threshold:g} (empty result: {p.empty})")
        if v.kubernetes is not None:
            out.append(f"  Kubernetes: {v.kubernetes}")
        out.append(f"  if it fails: {', then '.join(book.on_failure)}")
    mode = "dry-run (guardrails.dry_run is on)" if g.dry_run else book.mode
    out += [
        "",
        "Guardrails:",
        f"  mode: {mode}",
        f"  cooldown per target: {describe_seconds(lim.cooldown)}",
        f"  rate limit: {lim.per_playbook_per_hour} actions/hour for this playbook",
        f"  budget: {lim.per_namespace_per_hour} actions/hour per namespace, "
        f"{lim.per_cluster_per_hour} cluster-wide",
        f"  blast radius: keep >= {lim.min_available} ready replicas, take down <= "
        f"{lim.max_unavailable_percent:g} % at once",
        f"  storm: no action when >= {g.storm_unhealthy_percent:g} % of a namespace is unhealthy",
        f"  denied namespaces: {', '.join(g.namespaces_deny)}",
    ]
    if g.namespaces_allow:
        out.append(f"  allowed namespaces: {', '.join(g.namespaces_allow)}")
    if g.freeze_windows:
        out.append(f"  freeze windows (UTC): {'; '.join(g.freeze_windows)}")
    return "\n".join(out) + "\n"
