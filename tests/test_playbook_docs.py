"""docs/playbooks.md stays true: every test it cites exists, every built-in is listed."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO
from vigil.playbooks import builtin_playbooks

DOC = (REPO / "docs" / "playbooks.md").read_text()


def test_every_cited_test_exists() -> None:
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC)
    assert len(cited) >= 18
    for path, name in cited:
        tree = ast.parse((REPO / path).read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in names, f"docs/playbooks.md cites {path}::{name}, which does not exist"


def test_every_builtin_is_documented() -> None:
    for book in builtin_playbooks():
        assert f"| `{book.name}` |" in DOC, book.name
