"""Checks of ``PrometheusSource``'s options: URL, auth, TLS files (private).

Each failure is a ``ConfigError`` naming ``prometheus.<option>`` and what to do, raised
when the source is built, so a bad config file fails at start-up rather than at the
first tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vigil.core import ConfigError

__all__ = ["auth_headers", "check_positive", "check_url", "client_cert_option", "tls_verify"]


def check_url(url: str) -> str:
    """The server root without a trailing slash; refuses other schemes and ``/api/v1``."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"prometheus.url must start with http:// or https://, got {url!r} "
            "(e.g. http://prometheus.monitoring:9090)"
        )
    url = url.rstrip("/")
    if url.endswith("/api/v1"):
        raise ConfigError(
            f"prometheus.url {url!r} ends with /api/v1: give the server root "
            f"({url.removesuffix('/api/v1')}); vigil adds the API path"
        )
    return url


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"prometheus.{name} must be > 0 seconds, got {value}")


def auth_headers(
    headers: Mapping[str, str] | None,
    bearer_token: str | None,
    username: str | None,
    password: str | None,
) -> dict[str, str]:
    """The headers every request carries: ``headers`` plus ``Authorization: Bearer`` when a
    token is given (basic auth goes through the session's ``auth``, not a header)."""
    out = dict(headers or {})
    has_auth_header = any(k.lower() == "authorization" for k in out)
    if bearer_token is not None and username is not None:
        raise ConfigError("prometheus: set either bearer_token or username/password, not both")
    if password is not None and username is None:
        raise ConfigError("prometheus.password is set but prometheus.username is not")
    if has_auth_header and (bearer_token is not None or username is not None):
        raise ConfigError(
            "prometheus.headers has an Authorization header and bearer_token or "
            "username is set too: keep one"
        )
    if bearer_token is not None:
        if not bearer_token.strip():
            raise ConfigError("prometheus.bearer_token is empty")
        out["Authorization"] = f"Bearer {bearer_token.strip()}"
    return out


def tls_verify(verify_tls: bool, ca_file: str | Path | None) -> bool | str:
    """requests' ``verify``: a CA bundle path, or whether to verify against the system's."""
    if ca_file is None:
        return verify_tls
    path = Path(ca_file)
    if not path.is_file():
        raise ConfigError(f"prometheus.ca_file {str(path)!r} is not a readable file")
    if not verify_tls:
        raise ConfigError("prometheus.ca_file is set but verify_tls is false: drop one")
    return str(path)


def client_cert_option(
    cert: str | Path | None, key: str | Path | None
) -> str | tuple[str, str] | None:
    """requests' ``cert``: the PEM file (key inside it), or (certificate, key)."""
    if cert is None:
        if key is not None:
            raise ConfigError("prometheus.client_key is set but client_cert is not")
        return None
    for name, value in (("client_cert", cert), ("client_key", key)):
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"prometheus.{name} {str(value)!r} is not a readable file")
    return str(cert) if key is None else (str(cert), str(key))
