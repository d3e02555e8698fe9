"""``act_by_hand``: one action by a person (``vigil act``), through the same guardrails and journal.

A person is the approver, so no approval row is asked for, and cooldown and the
per-playbook rate limit (which stop automated loops) do not apply; namespace rules,
budgets, blast radius, storm protection, freeze windows and dry-run all do. Every call
is a journal row under the playbook name ``manual``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from vigil.core import ActionKind, JournalEntry, Mode, ObjectRef, Plan, idempotency_key
from vigil.playbooks.executor import Outcome, PlaybookEngine
from vigil.playbooks.guardrails import MANUAL
from vigil.playbooks.schema import PARAMS

__all__ = ["act_by_hand", "manual_plan"]


def manual_plan(
    action: str,
    target: str | ObjectRef,
    params: Mapping[str, Any],
    *,
    dry_run: bool,
    now: datetime,
    by: str = "",
) -> Plan:
    """Validate a by-hand action (``--set`` values may be strings) into a plan."""
    try:
        kind = ActionKind(action)
    except ValueError:
        known = ", ".join(k.value for k in ActionKind)
        raise ValueError(f"unknown action {action!r}; known: {known}") from None
    ref = target if isinstance(target, ObjectRef) else ObjectRef.parse(target)
    try:
        checked = PARAMS[kind].model_validate(dict(params)).model_dump(exclude_defaults=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{kind} {ref}: bad parameters: {problems}") from None
    if kind is ActionKind.SCALE and "replicas" not in checked and "by" not in checked:
        raise ValueError(f"scale {ref}: give --set replicas=N or --set by=N")
    who = f" by {by}" if by else ""
    return Plan(
        finding_id=f"manual-{now:%Y%m%dT%H%M%S%f}",
        playbook=MANUAL,
        step=0,
        action=kind,
        target=ref,
        params=checked,
        mode=Mode.DRY_RUN if dry_run else Mode.AUTO,
        created_at=now,
        reason=f"by hand{who}",
        idempotency_key=idempotency_key(MANUAL, kind, ref, sorted(checked.items()), now),
    )


def act_by_hand(
    engine: PlaybookEngine,
    action: str,
    target: str | ObjectRef,
    params: Mapping[str, Any],
    *,
    dry_run: bool,
    now: datetime,
    by: str = "",
) -> tuple[JournalEntry | None, Outcome]:
    """Run one action by hand; returns the journal row (``vigil act`` prints it)."""
    plan = manual_plan(action, target, params, dry_run=dry_run, now=now, by=by)
    outcome = engine.submit(plan, now=now)
    return outcome.entry, outcome
