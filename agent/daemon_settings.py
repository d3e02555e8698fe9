"""Settings of the daemon's parts: notify (channels, routing, delivery), server, leader.

Drop-in replacements for the ``notify``, ``server`` and ``leader`` groups of
``vigil.agent.config`` (same keys, plus the ones the notifiers, the HTTP server and the
elector need), for the lead to compose into ``Config``. Every field gives its unit and
why its default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from vigil.agent.routing import Route

__all__ = ["LeaderSettings", "NotifySettings", "ServerSettings", "SlackSettings", "WebhookSettings"]

Seconds = Annotated[float, Field(gt=0)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SlackSettings(_Group):
    token: SecretStr | None = Field(
        None, description="Bot token (xoxb-…, scope chat:write): one message per incident, edited."
    )
    webhook_url: SecretStr | None = Field(
        None, description="Incoming-webhook URL, used when no token is set (cannot edit; secret)."
    )
    channel: str | None = Field(None, description="Channel for the bot token, e.g. '#ops'.")
    base_url: str = Field(
        "https://slack.com/api/", description="Slack Web API base URL (tests point it locally)."
    )

    @model_validator(mode="after")
    def _channel_with_token(self) -> SlackSettings:
        if self.token is not None and not self.channel:
            raise ValueError("notify.slack.channel is required with notify.slack.token")
        return self


class WebhookSettings(_Group):
    url: str | None = Field(None, description="Generic webhook receiving signed JSON posts.")
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 signing key (X-Vigil-Signature; secret)."
    )


class NotifySettings(_Group):
    slack: SlackSettings = Field(default_factory=SlackSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    file: Path | None = Field(
        None, description="Append notifications as JSON lines here (the demo's local sink)."
    )
    routes: tuple[Route, ...] = Field(
        (),
        description="Routing by severity, namespace glob and state; empty = every channel "
        "gets warning and critical incidents.",
    )
    timeout: Seconds = Field(10.0, description="Seconds per delivery attempt.")
    max_attempts: int = Field(
        50,
        ge=1,
        description="Attempts before a message is dead-lettered; 50 at the 10-minute cap "
        "is about 8 hours of outage.",
    )
    rate_limit_per_minute: int = Field(
        20, ge=1, description="Messages per channel per minute; Slack allows about 1/s."
    )
    base_delay: Seconds = Field(
        5.0, description="Seconds before the first retry; doubles per consecutive failure."
    )
    max_delay: Seconds = Field(
        600.0,
        description="Longest wait between retries, in seconds; also how late the first "
        "retry after an outage can come.",
    )
    poll_interval: Seconds = Field(
        1.0, description="Seconds between outbox drains by the delivery thread."
    )

    @model_validator(mode="after")
    def _backoff(self) -> NotifySettings:
        if self.base_delay > self.max_delay:
            raise ValueError("notify.base_delay must not exceed notify.max_delay")
        return self


class ServerSettings(_Group):
    host: str = Field("0.0.0.0", description="Address the HTTP server binds (in a pod: all).")  # noqa: S104
    port: int = Field(8080, ge=1, le=65535, description="HTTP port for health, metrics, hooks.")
    alertmanager_token: SecretStr | None = Field(
        None, description="Bearer token Alertmanager must send to POST /alertmanager (secret)."
    )
    approval_secret: SecretStr | None = Field(
        None, description="Key that signs approval links, 16+ characters (secret)."
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Base URL people reach this server at, for approval links; null = no links.",
    )
    approval_ttl: Seconds = Field(
        3600.0, description="Seconds an approval link stays valid; an hour suits on-call."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest accepted request body, in bytes."
    )
    request_timeout: Seconds = Field(
        10.0, description="Socket timeout per request, in seconds (a slow client frees its thread)."
    )
    ready_max_age: Seconds | None = Field(
        None,
        description="Seconds since the last successful tick before /readyz fails; null = "
        "max(300, 5 × agent.interval).",
    )

    @model_validator(mode="after")
    def _secret_length(self) -> ServerSettings:
        secret = self.approval_secret
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError(
                "server.approval_secret must be at least 16 characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return self


class LeaderSettings(_Group):
    enabled: bool = Field(False, description="Elect a leader through a Lease (for >1 replica).")
    namespace: str = Field("vigil", description="Namespace of the Lease.")
    name: str = Field("vigil-leader", description="Name of the Lease.")
    lease_duration: Seconds = Field(15.0, description="Seconds a lease is valid without renewal.")
    renew_every: Seconds = Field(5.0, description="Seconds between renewals by the leader.")
    renew_deadline: Seconds | None = Field(
        None,
        description="Seconds without a renewal after which the leader stops acting; null = "
        "2/3 of lease_duration, so it steps down before anyone may take over.",
    )
    identity: str | None = Field(
        None, description="This replica's name in the Lease; null = $POD_NAME, else host name."
    )

    @model_validator(mode="after")
    def _timings(self) -> LeaderSettings:
        deadline = self.renew_deadline or self.lease_duration * 2 / 3
        if not self.renew_every < deadline <= self.lease_duration:
            raise ValueError(
                "leader needs renew_every < renew_deadline <= lease_duration "
                f"(got {self.renew_every}, {deadline:g}, {self.lease_duration} seconds)"
            )
        return self
