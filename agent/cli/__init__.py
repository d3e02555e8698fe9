"""The ``vigil`` command: one typer app, each command group in its own module.

Only typer is imported at module level here; every command imports what it needs
inside its function, so ``vigil --help`` stays fast (tests/test_cli_speed.py guards it).
"""

from __future__ import annotations

from vigil.agent.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
