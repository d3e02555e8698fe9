"""Global CLI options, set by the app callback and read by commands (one process, one run)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from vigil.agent.config import Config


DEMO_CONFIG = "vigil-demo/vigil.yaml"  # what `vigil demo` writes with its default --out


@dataclass
class CliState:
    config_path: Path | None = None
    log_format: str | None = None
    log_level: str | None = None
    _config: Config | None = None

    def config(self, *, reading: bool = False) -> Config:
        """Load the configuration once; a bad config exits 2 with every problem listed.

        ``reading`` (status, ask, chat, forecast, actions): with no ``--config`` and no
        store at the configured path, the config ``vigil demo`` left in ``./vigil-demo``
        is used instead (said on stderr), so `vigil demo` then `vigil ask …` just works.
        """
        if self._config is None:
            from vigil.agent.config import load_config
            from vigil.core import ConfigError

            try:
                self._config = load_config(self.config_path)
                demo = Path(DEMO_CONFIG)
                if (
                    reading
                    and self.config_path is None
                    and not self._config.store.path.exists()
                    and demo.is_file()
                ):
                    sys.stderr.write(
                        f"note: no store at {self._config.store.path}; reading the demo's "
                        f"({demo}; pass --config to choose)\n"
                    )
                    self._config = load_config(demo)
            except ConfigError as exc:
                fail(str(exc), code=2)
        return self._config


state = CliState()


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print an error for a person (stderr) and exit with ``code``."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)
