"""The typer application and its global options; registers the command modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigil.agent.cli import (
    _ask_cmd,
    _bench_cmd,
    _config_cmd,
    _demo_cmd,
    _forecast_cmd,
    _playbooks_cmd,
    _run_cmd,
    _shadow_cmd,
)
from vigil.agent.cli._state import state

app = typer.Typer(
    name="vigil",
    help="vigil: a self-healing AIOps agent for Kubernetes. Detects anomalies, scales ahead "
    "of demand and remediates under guardrails (dry-run by default).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich costs ~0.1 s on every `--help`
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="VIGIL_CONFIG",
            help="YAML config file (default: built-in defaults plus VIGIL_… variables).",
            dir_okay=False,
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option("--log-format", help="Log format: text or json (overrides the config)."),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="debug, info, warning or error (overrides the config)."),
    ] = None,
) -> None:
    state.config_path = config
    state._config = None  # one invocation, one load (CliRunner reuses the process)
    state.log_format = log_format
    state.log_level = log_level


app.add_typer(_config_cmd.app, name="config")
_run_cmd.register(app)
_demo_cmd.register(app)
_ask_cmd.register(app)
_playbooks_cmd.register(app)
_bench_cmd.register(app)
_forecast_cmd.register(app)
_shadow_cmd.register(app)
