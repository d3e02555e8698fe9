"""The docs stay true: README commands, CI script, config reference, CLI reference."""

from __future__ import annotations

import re
import subprocess
import sys

import click
import typer

from tests.conftest import REPO
from vigil.agent.cli import app
from vigil.agent.config_docs import config_reference

HEAVY = (
    "statsmodels",
    "sklearn",
    "kubernetes",
    "langchain",
    "langgraph",
    "matplotlib",
    "pandas",
    "prometheus_api_client",
    "slack_sdk",
    "scipy",
    "apscheduler",
)


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)


def test_readme_has_exactly_two_quick_start_commands() -> None:
    blocks = readme_blocks()
    assert len(blocks) == 2, blocks
    demo, tests = blocks
    assert "vigil demo" in demo
    for need in (
        "prometheus",
        "etcd-server",
        "openssl",
        "curl",
        "--no-install-recommends",
        "[dev,llm]",
    ):
        assert need in tests, need


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    command = readme_blocks()[1].strip()
    assert command in [line.strip() for line in ci], "'.ci/run' must run the README's command"


def test_configuration_reference_is_current() -> None:
    assert (REPO / "docs" / "configuration.md").read_text() == config_reference(), (
        "docs/configuration.md is stale: run `make docs`"
    )


def all_commands() -> list[tuple[str, click.Command]]:
    root = typer.main.get_command(app)
    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())
        else:
            out.append((path, cmd))

    walk(root, "")
    return out


def test_every_command_has_help_and_is_documented() -> None:
    cli_doc = (REPO / "docs" / "cli.md").read_text()
    commands = all_commands()
    assert commands
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"`vigil {path}` has no help text"
        assert f"vigil {path}" in cli_doc, f"`vigil {path}` is missing from docs/cli.md"


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from vigil.agent.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_vigil_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vigil.agent.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "config" in out.stdout
