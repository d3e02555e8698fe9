"""A short seeded demo end to end: the real tick on the twin, scored against ground truth.

Checks the report's figures, not just that it ran: every injected incident is listed as
detected or explicitly missed, and no action got past a guardrail.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from vigil.agent.config import load_config
from vigil.agent.demo import DemoResult, render_text, run_demo
from vigil.agent.store import SqliteStore
from vigil.core import MUTATING_ACTIONS, ActionStatus
from vigil.playbooks import builtin_playbooks


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo")
    cfg = load_config(None, {"VIGIL_SIM__DAYS": "1", "VIGIL_SIM__SEED": "11"})
    return run_demo(cfg, out, tick_seconds=600, warmup_days=1, html=True)


@pytest.mark.timeout(600)
def test_every_incident_is_detected_or_explicitly_missed(demo: DemoResult) -> None:
    score = demo.score
    assert len(score.incidents) >= 6, "one incident of each fault kind at least"
    text = render_text(demo)
    kinds = tuple(inc.kind for inc in score.incidents)
    lines = [ln for ln in text.splitlines() if ln.startswith(kinds)]
    assert len(lines) == len(score.incidents), "one report line per injected incident"
    for inc, line in zip(score.incidents, lines, strict=True):
        assert line.startswith(f"{inc.kind} {inc.target}"[:34])
        assert ("yes" in line) == inc.detected
        assert ("MISSED" in line) == (not inc.detected)
        if inc.detected:
            assert inc.detected_at is not None and inc.injected_at is not None
            assert inc.detected_at >= inc.injected_at, "no detection before the fault"
    assert score.detected >= len(score.incidents) // 2, text


@pytest.mark.timeout(600)
def test_no_action_got_past_a_guardrail(demo: DemoResult) -> None:
    cfg = load_config(None, {})
    g = cfg.guardrails
    with SqliteStore.open(demo.store_path, readonly=True) as store:
        rows = store.journal_list(limit=100_000)
    acted = [
        e for e in rows
        if e.action in MUTATING_ACTIONS
        and e.status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.REVERTED)
        and "revert_of" not in e.params  # reverting its own change is exempt by design
    ]  # fmt: skip
    for e in acted:
        assert e.target.namespace not in g.namespaces_deny
    by_hour: dict[int, int] = defaultdict(int)
    for e in acted:
        window = [
            x for x in acted if timedelta(0) <= e.updated_at - x.updated_at < timedelta(hours=1)
        ]
        by_hour[e.id] = len(window)
    assert max(by_hour.values(), default=0) <= g.max_actions_per_hour
    last: dict[tuple[str, str], list] = defaultdict(list)
    for e in sorted(acted, key=lambda x: x.created_at):
        last[(e.playbook, str(e.target))].append(e.created_at)
    books = {b.name: b for b in builtin_playbooks()}
    for (playbook, _target), times in last.items():
        book = books.get(playbook)
        override = book.guardrails.cooldown if book is not None and book.guardrails else None
        cooldown = override if override is not None else g.cooldown
        for a, b in itertools.pairwise(times):
            assert (b - a).total_seconds() >= cooldown, f"cooldown of {playbook} respected"
    assert all(r.reason for r in rows if r.status is ActionStatus.REFUSED)


@pytest.mark.timeout(600)
def test_the_report_and_the_store_are_left_behind(demo: DemoResult) -> None:
    assert demo.html_path is not None and demo.html_path.exists()
    html = demo.html_path.read_text()
    assert html.count("data:image/png;base64,") == 2
    assert (demo.out_dir / "main-plot.png").stat().st_size > 10_000
    text = (demo.out_dir / "report.txt").read_text()
    for section in (
        "Incidents:",
        "Scaling (all workloads)",
        "Predictive vs reactive scaling (8 scaled services)",
        "Actions:",
        "Guardrail refusals:",
        "Notifications sent:",
    ):
        assert section in text
    with SqliteStore.open(demo.store_path, readonly=True) as store:
        assert len(store.recent_ticks(1000)) == demo.ticks
    assert Path(demo.notifications_path).exists() == (demo.score.notifications > 0)


def test_ask_status_and_forecast_answer_from_the_demo_store(demo: DemoResult) -> None:
    """The config the demo leaves makes the CLI read its store, as of its simulated end,
    without a Prometheus."""
    import json

    from typer.testing import CliRunner

    from vigil.agent.cli import app

    config = str(demo.out_dir / "vigil.yaml")
    asked = CliRunner().invoke(
        app, ["--config", config, "ask", "--json", "what happened to checkout?"]
    )
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["intent"] == "action_explain"
    assert answer["entities"]["service"] == "checkout"
    text = answer["answer"]
    assert "Cannot answer" not in text and "checkout" in text
    with SqliteStore.open(demo.store_path, readonly=True) as store:
        mentioned = [i for i in answer.get("ids", []) if i.startswith("f-")]
        assert mentioned and all(store.get_finding(i).target is not None for i in mentioned)
    status = CliRunner().invoke(app, ["--config", config, "status", "--json"])
    assert status.exit_code == 0, status.output
    scaled = {row["workload"]: row for row in json.loads(status.stdout)["scaling"]}
    assert "shop/checkout" in scaled and scaled["shop/checkout"]["next_peak_at"]
    shown = CliRunner().invoke(app, ["--config", config, "forecast", "checkout", "--stored"])
    assert shown.exit_code == 0, shown.output
    assert "replicas planned for that peak" in shown.output


@pytest.mark.timeout(600)
def test_findings_mean_something(demo: DemoResult) -> None:
    # Before the fix (issue 4) a demo day raised about a thousand findings, 95 % of them
    # tied to no incident (per-pod CPU of young pods, daily swings taken for shifts).
    score = demo.score
    assert score.detected == len(score.incidents), render_text(demo)
    assert score.findings_unmatched <= 0.5 * score.findings_total
    assert score.findings_unmatched <= 40 * demo.days
    assert score.notifications <= 8 * score.findings_total


@pytest.mark.timeout(600)
def test_the_demo_cordons_and_uncordons_a_failed_node(demo: DemoResult) -> None:
    with SqliteStore.open(demo.store_path, readonly=True) as store:
        rows = store.journal_list(limit=100_000)
    node = [e for e in rows if e.target.kind == "Node" and e.status is ActionStatus.SUCCEEDED]
    assert [e.action for e in sorted(node, key=lambda e: e.id)] == ["cordon", "uncordon"]


def test_plain_read_commands_find_the_demo_next_door(
    demo: DemoResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vigil demo` then `vigil status` in the same folder, with no --config: the demo's
    store is read (and said so), as long as no store of one's own is there."""
    import json
    import os
    import shutil

    from typer.testing import CliRunner

    from vigil.agent.cli import app

    (tmp_path / "vigil-demo").mkdir()
    shutil.copy(demo.out_dir / "vigil.yaml", tmp_path / "vigil-demo" / "vigil.yaml")
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("VIGIL_")]:
        monkeypatch.delenv(key)
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert "reading the demo's" in result.stderr
    assert len(json.loads(result.stdout)["ticks"]) == 5
    # a store of one's own wins
    (tmp_path / "vigil.db").write_bytes(b"")
    mine = CliRunner().invoke(app, ["status", "--json"])
    assert "reading the demo's" not in mine.stderr
