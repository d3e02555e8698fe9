"""Declarative YAML playbooks, their schema, matching findings to plans, guardrails and the
verify/revert policy. State goes through the ``Store`` port; imports only ``vigil.core``.

The agent's playbook stage: ``load_playbooks`` once, then each tick ``match_findings``
→ ``PlaybookEngine.submit`` for each plan, ``run_approved``, ``expire_approvals`` and
``verify_due``; ``reconcile`` once at start. The CLI: ``list_playbooks``,
``validate_playbook_file``, ``explain``, ``approve``/``deny``, ``act_by_hand``,
``backtest``.
"""

from vigil.playbooks.approvals import approve, deny, plan_from_entry
from vigil.playbooks.backtest import BacktestReport, Firing, PlaybookSummary, backtest
from vigil.playbooks.changes import Change, compute_change
from vigil.playbooks.cron import CronWindow, frozen_until
from vigil.playbooks.executor import Outcome, PlaybookEngine
from vigil.playbooks.explaining import explain
from vigil.playbooks.guardrails import COUNTED, MANUAL, Decision, Guardrails
from vigil.playbooks.journal_memory import MemoryJournal
from vigil.playbooks.loading import (
    PlaybookError,
    builtin_playbooks,
    list_playbooks,
    load_playbooks,
    parse_playbooks,
    validate_playbook_file,
)
from vigil.playbooks.manual import act_by_hand, manual_plan
from vigil.playbooks.matching import Match, match_finding, match_findings, plan_for_step
from vigil.playbooks.schema import Playbook, playbook_schema
from vigil.playbooks.settings import GuardrailSettings, PlaybookSettings, ResourceBounds
from vigil.playbooks.verification import Check, evaluate, revert_call

__all__ = [
    "COUNTED",
    "MANUAL",
    "BacktestReport",
    "Change",
    "Check",
    "CronWindow",
    "Decision",
    "Firing",
    "GuardrailSettings",
    "Guardrails",
    "Match",
    "MemoryJournal",
    "Outcome",
    "Playbook",
    "PlaybookEngine",
    "PlaybookError",
    "PlaybookSettings",
    "PlaybookSummary",
    "ResourceBounds",
    "act_by_hand",
    "approve",
    "backtest",
    "builtin_playbooks",
    "compute_change",
    "deny",
    "evaluate",
    "explain",
    "frozen_until",
    "list_playbooks",
    "load_playbooks",
    "manual_plan",
    "match_finding",
    "match_findings",
    "parse_playbooks",
    "plan_for_step",
    "plan_from_entry",
    "playbook_schema",
    "revert_call",
    "validate_playbook_file",
]
