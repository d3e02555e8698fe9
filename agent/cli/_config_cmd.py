"""``vigil config validate|schema|show``: check a file, print the JSON schema, show the
effective configuration with secrets redacted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vigil.agent.cli._state import state

app = typer.Typer(
    help="Validate, describe and show the configuration.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="The YAML config file to check.", dir_okay=False)],
) -> None:
    """Check FILE (with VIGIL_… overrides applied); list every problem with its key path."""
    from vigil.agent.config import load_config
    from vigil.core import ConfigError

    try:
        load_config(file)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None
    typer.echo(f"{file}: valid")


@app.command()
def schema() -> None:
    """Print the JSON schema of the config file (for editors and CI checks)."""
    from vigil.agent.config import config_schema

    typer.echo(json.dumps(config_schema(), indent=2, sort_keys=True))


@app.command()
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Print the effective configuration (file + environment + defaults), secrets as ***."""
    import yaml

    from vigil.agent.config import redacted

    data = redacted(state.config())
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
