"""Declarative YAML playbooks, their schema, matching findings to plans, guardrails and the
verify/revert policy. State goes through the ``Store`` port; imports only ``vigil.core``."""
