"""A ``Notifier`` that appends each message as one JSON line to a local file.

The demo's default sink (``notify.file``) and a dependable fallback: no network, and
``tail -f`` shows what a person would have been told. Each line is the webhook's JSON
body, so one reader handles both. The delivery worker calls ``send``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from vigil.actions.webhook import webhook_payload
from vigil.core import Delivery, Notification, PermanentError, RetryableError

__all__ = ["FileSink"]


class FileSink:
    """Appends JSON lines to ``path`` (created with its directory), flushed and fsynced."""

    supports_update = False

    def __init__(self, path: Path | str, *, name: str = "file", fsync: bool = True) -> None:
        self.name = name
        self.path = Path(path)
        self._fsync = fsync
        self._lock = threading.Lock()

    def send(self, message: Notification) -> Delivery:
        line = json.dumps(webhook_payload(message), sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                if self._fsync:
                    os.fsync(fh.fileno())
        except (IsADirectoryError, PermissionError, NotADirectoryError) as exc:
            raise PermanentError(
                f"{self.name}: cannot append to {self.path}: {exc.strerror}; "
                "point notify.file at a writable file"
            ) from exc
        except OSError as exc:  # a full disk may clear up
            raise RetryableError(
                f"{self.name}: writing {self.path} failed: {exc.strerror}", delay=30.0
            ) from exc
        return Delivery(self.name, message.dedupe_key)

    def update(self, message_ref: str, message: Notification) -> Delivery:
        """A file is append-only: the new state is a new line naming the incident."""
        return self.send(message)
