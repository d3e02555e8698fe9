"""Chaos: kill the process between "the cluster changed" and "the journal says succeeded",
restart, and check the action is not repeated and the journal shows the outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(60)
WORKER = REPO / "tests" / "playbook_chaos_worker.py"


def test_killed_mid_action_then_restarted_never_repeats_the_action(tmp_path: Path) -> None:
    store, state = tmp_path / "vigil.db", tmp_path / "cluster.json"
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "act", str(store), str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "applied", proc.stderr.read() if proc.stderr else line
    finally:
        proc.kill()  # SIGKILL: no cleanup, no journal update
        proc.communicate(timeout=30)
    assert proc.returncode == -9
    assert state.exists()  # the twin, with the change applied, as the killed process left it

    out = subprocess.run(
        [sys.executable, str(WORKER), "restart", str(store), str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    ((row_id, status, message),) = seen["reconciled"]
    assert status == "succeeded"
    assert "interrupted; reconciled after restart: replicas=7 (was 3) (not repeated)" in message
    assert seen["again"] == [True]  # the same finding on the next tick: a duplicate
    assert [r for r in seen["rows"] if r[1] == "scale"] == [[row_id, "scale", "succeeded"]]
    assert seen["replicas"] == 7
    assert seen["calls"] == [["scale", "deployment/shop/cart"]]  # once, never repeated
