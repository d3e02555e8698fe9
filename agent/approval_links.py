"""Signed, expiring approval links: minted for Slack buttons and the CLI, checked by the server.

A link carries ``action``, ``decision`` (approve or deny), ``expires`` (Unix seconds)
and ``sig`` = hex HMAC-SHA256(server.approval_secret, "action|decision|expires"). Nobody
without the secret can forge or alter one, and it stops working at ``expires``.
``vigil.agent.notifying`` puts links on awaiting-approval messages;
``vigil.agent.server`` serves ``GET /approve`` (a confirmation page, since chat apps
and mail scanners prefetch links) and ``POST /approve`` (the decision).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from vigil.core import PermanentError

__all__ = ["DECISIONS", "ApprovalLinks", "LinkError", "SignedDecision"]

DECISIONS = ("approve", "deny")


class LinkError(PermanentError):
    """An approval link that is malformed, tampered with or expired; the message says which."""


@dataclass(frozen=True)
class SignedDecision:
    """A verified link: which action, which decision, valid until when."""

    action_id: int
    decision: str
    expires: int


class ApprovalLinks:
    """Mints and checks approval links under ``base_url`` (the server's public address)."""

    def __init__(self, secret: str, base_url: str, *, ttl: float = 3600.0) -> None:
        if len(secret) < 16:
            raise ValueError(
                "approval secret must be at least 16 characters (server.approval_secret)"
            )
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"approval base URL must start with http(s)://, got {base_url!r}")
        if ttl <= 0:
            raise ValueError(f"approval link lifetime must be > 0 seconds, got {ttl}")
        self._key = secret.encode()
        self._base = base_url.rstrip("/")
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"ApprovalLinks(base_url={self._base!r}, ttl={self.ttl:g})"

    def _sig(self, action_id: int, decision: str, expires: int) -> str:
        msg = f"{action_id}|{decision}|{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def query(self, action_id: int, decision: str, *, now: datetime) -> dict[str, str]:
        """The signed query parameters of one link."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be approve or deny, got {decision!r}")
        expires = int((now + timedelta(seconds=self.ttl)).timestamp())
        return {
            "action": str(action_id),
            "decision": decision,
            "expires": str(expires),
            "sig": self._sig(action_id, decision, expires),
        }

    def mint(self, action_id: int, decision: str, *, now: datetime) -> str:
        """``https://vigil.example/approve?action=7&decision=approve&expires=…&sig=…``."""
        return f"{self._base}/approve?{urlencode(self.query(action_id, decision, now=now))}"

    def check(self, params: dict[str, str], *, now: datetime) -> SignedDecision:
        """Verify link parameters; raise ``LinkError`` naming what is wrong."""
        missing = [k for k in ("action", "decision", "expires", "sig") if not params.get(k)]
        if missing:
            raise LinkError(f"approval link lacks {', '.join(missing)}")
        try:
            action_id = int(params["action"])
            expires = int(params["expires"])
        except ValueError:
            raise LinkError("approval link: action and expires must be integers") from None
        decision = params["decision"]
        if decision not in DECISIONS:
            raise LinkError(f"approval link: decision must be approve or deny, not {decision!r}")
        if not hmac.compare_digest(self._sig(action_id, decision, expires), params["sig"]):
            raise LinkError("approval link signature does not match: the link was altered")
        if now.timestamp() >= expires:
            raise LinkError(
                f"approval link for action {action_id} expired; use `vigil {decision} "
                f"{action_id}` or ask for a new link"
            )
        return SignedDecision(action_id, decision, expires)
