"""Playbook schema, loading, built-ins, explain and the freeze-window cron matcher."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.core import NotFoundError
from vigil.playbooks import (
    CronWindow,
    GuardrailSettings,
    PlaybookError,
    PlaybookSettings,
    builtin_playbooks,
    explain,
    frozen_until,
    list_playbooks,
    load_playbooks,
    playbook_schema,
    validate_playbook_file,
)

GOOD = """
name: my-scale
description: scale out on saturation
when:
  anomaly:
    metrics: ["*cpu*"]
    matchers: ['namespace=~"shop|payments"']
steps:
  - action: scale
    params: {by: 2, max_replicas: 8}
verify:
  kubernetes: ready_replicas >= replicas
  promql:
    expr: 'sum(rate(x{namespace="$namespace"}[5m]))'
    op: "<"
    threshold: 3
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_builtin_loads_and_covers_the_issue() -> None:
    books = {b.name: b for b in builtin_playbooks()}
    assert set(books) == {
        "rollout-undo-after-bad-rollout",
        "crash-loop-delete-pod",
        "oom-raise-memory-limit",
        "memory-growth-restart",
        "predictive-scale-up",
        "predictive-scale-down",
        "predictive-hpa-floor",
        "saturation-scale-out",
        "node-not-ready-cordon",
        "node-pressure-cordon",
        "node-recovered-uncordon",
        "notify-only",
    }
    for book in books.values():
        if book.mutating:
            assert book.verify is not None, book.name
    assert books["notify-only"].priority > max(
        b.priority for n, b in books.items() if n != "notify-only"
    )
    assert books["oom-raise-memory-limit"].when.condition is not None
    assert books["oom-raise-memory-limit"].when.condition.min_count == 3
    assert [s.action for s in books["node-not-ready-cordon"].steps] == ["cordon"]


def test_a_good_file_validates_and_params_are_checked(tmp_path: Path) -> None:
    (book,) = validate_playbook_file(write(tmp_path, GOOD))
    assert book.steps[0].params == {"by": 2, "max_replicas": 8}
    assert book.mode == "approve"  # user playbooks ask before acting unless told otherwise
    assert len(book.verify.promql) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("params: {by: 2, max_replicas: 8}", "params: {by: 2, bogus: 1}"),
            "playbook 'my-scale': steps.0.bogus: unknown key",
        ),
        (
            ("params: {by: 2, max_replicas: 8}", "params: {by: 2, replicas: 3}"),
            "give exactly one of replicas, by, from_decision",
        ),
        (("- action: scale", "- action: reboot"), "steps.0.action"),
        (("ready_replicas >= replicas", "ready_replicas >= banana"), "unknown field 'banana'"),
        (('namespace=~"shop|payments"', 'namespace=="x"'), "cannot read label matcher"),
        (('x{namespace="$namespace"}', 'x{namespace="$ns"}'), "unknown placeholder(s) ns"),
        (("name: my-scale", "name: My_Scale"), "name: use lowercase letters"),
        (("  anomaly:", "  alert: {alertname: X}\n  anomaly:"), "exactly one of anomaly"),
    ],
)
def test_errors_name_the_file_the_playbook_and_the_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(PlaybookError) as err:
        validate_playbook_file(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)
    assert all(str(path) in p for p in err.value.problems)


def test_yaml_syntax_errors_say_where(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsteps: [\n")
    with pytest.raises(PlaybookError, match=r"not valid YAML at line \d+"):
        validate_playbook_file(path)


def test_a_mutating_playbook_needs_verify_and_the_right_target(tmp_path: Path) -> None:
    no_verify = GOOD.split("verify:", maxsplit=1)[0]
    with pytest.raises(PlaybookError, match="needs `verify`"):
        validate_playbook_file(write(tmp_path, no_verify))
    node_target = GOOD.replace("steps:", "target: node\nsteps:")
    with pytest.raises(PlaybookError, match="scale acts on a workload, but target is 'node'"):
        validate_playbook_file(write(tmp_path, node_target))


def test_user_playbooks_replace_builtins_and_order_by_priority(tmp_path: Path) -> None:
    override = GOOD.replace("name: my-scale", "name: notify-only").replace(
        "description:", "priority: 1\ndescription:"
    )
    write(tmp_path, override, "a.yaml")
    books = load_playbooks(
        PlaybookSettings(directories=(tmp_path,), disabled=("predictive-scale-up",))
    )
    names = [b.name for b in books]
    assert names[0] == "notify-only"
    assert "predictive-scale-up" not in names
    assert books[0].steps[0].action == "scale"


def test_settings_naming_unknown_playbooks_are_errors() -> None:
    with pytest.raises(PlaybookError, match=r"playbooks\.disabled: no playbook named 'nope'"):
        load_playbooks(PlaybookSettings(disabled=("nope",)))
    books = load_playbooks(PlaybookSettings(modes={"saturation-scale-out": "dry-run"}))
    assert next(b for b in books if b.name == "saturation-scale-out").mode == "dry-run"


def test_schema_is_json_and_forbids_unknown_keys() -> None:
    schema = playbook_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert {"name", "when", "steps"} <= set(schema["required"])


def test_explain_says_when_steps_verify_and_guardrails() -> None:
    text = explain("crash-loop-delete-pod", guardrails=GuardrailSettings(dry_run=False))
    assert "CrashLoopBackOff" in text
    assert "1. delete-pod" in text and "2. notify" in text
    assert "crash_looping_pods == 0" in text
    assert "cooldown per target: 1 h" in text
    assert "budget: 5 actions/hour per namespace, 10 cluster-wide" in text
    assert "mode: auto" in text
    with pytest.raises(NotFoundError, match="no playbook named 'nope'"):
        explain("nope")
    assert [b.name for b in list_playbooks()][-1] == "notify-only"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cron_windows_match_like_crontab() -> None:
    friday_night = CronWindow.parse("* 22-23 * * fri")
    assert friday_night.matches(t("2026-11-27 22:30"))  # a Friday
    assert not friday_night.matches(t("2026-11-27 21:59"))
    assert not friday_night.matches(t("2026-11-26 22:30"))  # Thursday
    every_15 = CronWindow.parse("*/15 9 1,15 * *")
    assert every_15.matches(t("2026-12-15 09:45"))
    assert not every_15.matches(t("2026-12-15 09:46"))
    # both day fields restricted: either matches (crontab(5))
    either = CronWindow.parse("* * 1 * 7")
    assert either.matches(t("2026-11-01 10:00"))  # the 1st (a Sunday too)
    assert either.matches(t("2026-11-08 10:00"))  # a Sunday
    assert not either.matches(t("2026-11-09 10:00"))
    assert frozen_until([friday_night], t("2026-11-27 23:10")) == t("2026-11-28 00:00")
    assert frozen_until([friday_night], t("2026-11-27 12:00")) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("* * * *", "need 5 fields"),
        ("61 * * * *", "minute 61 is outside 0-59"),
        ("* 5-2 * * *", "runs backwards"),
        ("* * * * funday", "weekday field has 'funday'"),
        ("*/0 * * * *", "step '0' must be a positive integer"),
    ],
)
def test_bad_cron_windows_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronWindow.parse(spec)
    with pytest.raises(ValueError, match=message):
        GuardrailSettings(freeze_windows=(spec,))


def test_guardrail_settings_extend_the_config_group_field_for_field() -> None:
    """The agent can swap its ``guardrails`` group for ours without renaming a key."""
    from vigil.agent.config import GuardrailSettings as ConfigGroup

    ours, theirs = GuardrailSettings.model_fields, ConfigGroup.model_fields
    assert set(theirs) <= set(ours)
    for name, field in theirs.items():
        assert ours[name].default == field.default, name


@pytest.mark.parametrize("book", builtin_playbooks(), ids=lambda b: b.name)
def test_every_builtin_explains_itself(book: object) -> None:
    name = book.name  # type: ignore[attr-defined]
    text = explain(name, guardrails=GuardrailSettings())
    assert text.startswith(f"{name} (priority ")
    assert "mode: dry-run (guardrails.dry_run is on)" in text
    for step in book.steps:  # type: ignore[attr-defined]
        assert f". {step.action}" in text
