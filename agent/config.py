"""Typed, grouped configuration: one YAML file plus ``VIGIL_<GROUP>__<KEY>`` overrides.

Loaded once at the entry point (``vigil.agent.cli``) and passed down; no module reads
the environment at import time. Every field says its unit and why its default. Unknown
keys are errors. ``load_config`` turns every problem into a ``ConfigError`` whose
``problems`` name the key path and what is allowed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from vigil.actions.kubernetes.settings import KubernetesSettings
from vigil.agent.daemon_settings import LeaderSettings, NotifySettings, ServerSettings
from vigil.core import ConfigError
from vigil.detectors.scaling_settings import ScalingGroup
from vigil.detectors.settings import DetectionSettings as DetectorSettings
from vigil.nlq.settings import LlmSettings, NlqSettings
from vigil.playbooks.settings import GuardrailSettings, PlaybookSettings
from vigil.sim.settings import SimSettings

__all__ = [
    "ENV_PREFIX",
    "Config",
    "config_schema",
    "load_config",
    "redacted",
]

ENV_PREFIX = "VIGIL_"

Seconds = Annotated[float, Field(gt=0)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PrometheusSettings(_Group):
    url: str = Field(
        "http://127.0.0.1:9090",
        description="Base URL of the Prometheus HTTP API. Default: a local Prometheus.",
    )
    timeout: Seconds = Field(
        30.0, description="Seconds per HTTP request; long range queries are chunked anyway."
    )
    retries: int = Field(
        3, ge=0, le=10, description="Retries on connection errors and 5xx before giving up."
    )
    backoff: Seconds = Field(
        0.5, description="Seconds of the first retry wait; doubles on each retry."
    )
    backoff_max: Seconds = Field(
        30.0,
        description="Seconds: cap on each retry wait and on Retry-After; also the retry delay "
        "suggested to the scheduler when Prometheus stays down.",
    )
    max_workers: int = Field(
        4, ge=1, le=32, description="Parallel chunk fetches; 4 keeps Prometheus load modest."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers, e.g. X-Scope-OrgID for multi-tenant back ends.",
    )
    compression: bool = Field(
        False,
        description="Ask for gzip; off because Prometheus compresses at ~15 MB/s per core, "
        "slower than a LAN.",
    )
    max_points_per_request: int = Field(
        11_000,
        ge=1,
        le=11_000,
        description="Points per series per request; longer ranges are chunked (Prometheus' "
        "limit is 11,000).",
    )
    max_points: int = Field(
        1_000_000,
        ge=1,
        description="Points per series per query at most; refuses a runaway range before asking.",
    )
    bearer_token: SecretStr | None = Field(
        None, description="Bearer token sent as `Authorization: Bearer …` (secret)."
    )
    username: str | None = Field(None, description="Basic-auth user name.")
    password: SecretStr | None = Field(None, description="Basic-auth password (secret).")
    verify_tls: bool = Field(True, description="Verify the server certificate (HTTPS).")
    ca_file: Path | None = Field(None, description="CA bundle to verify the server with.")
    client_cert: Path | None = Field(None, description="Client certificate (PEM) for mTLS.")
    client_key: Path | None = Field(None, description="Client key (PEM) for mTLS.")
    step: Seconds = Field(
        60.0, description="Seconds between points of fetched series; 1 min matches scrape data."
    )
    lookback: Seconds = Field(
        8 * 86400.0,
        description="Seconds of history detectors fit on; 8 days shows daily and weekly shape.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DetectionSettings(DetectorSettings):
    """What to score (PromQL), and the detectors' own settings (``vigil.detectors``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    queries: dict[str, str] = Field(
        default_factory=lambda: {
            "http_error_ratio": 'sum by (namespace, service) (rate(http_requests_total{code=~"5.."}'
            "[5m])) / sum by (namespace, service) (rate(http_requests_total[5m]))",
            "http_request_duration_p99_seconds": "histogram_quantile(0.99, sum by (namespace, "
            "service, le) (rate(http_request_duration_seconds_bucket[5m])))",
            "http_requests_per_second": "sum by (namespace, service) "
            "(rate(http_requests_total[5m]))",
            "container_cpu_cores": "sum by (namespace, pod) "
            "(rate(container_cpu_usage_seconds_total[5m]))",
            "container_memory_working_set_bytes": "sum by (namespace, pod) "
            "(container_memory_working_set_bytes)",
        },
        description="Name → PromQL scored each tick; the name becomes the series' metric "
        "(its suffix gives the unit: _seconds, _bytes, _ratio, _cores). Defaults: error "
        "ratio, p99 latency and request rate per service, CPU and memory per pod.",
    )
    descriptions: dict[str, str] = Field(
        default_factory=lambda: {
            "http_error_ratio": "5xx ratio",
            "http_request_duration_p99_seconds": "p99 latency",
            "http_requests_per_second": "request rate (req/s)",
            "container_cpu_cores": "CPU",
            "container_memory_working_set_bytes": "memory working set",
        },
        description="Metric name → human name used in anomaly summaries ('p99 latency').",
    )
    min_severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="Anomalies below this severity are stored but open no finding."
    )
    resolve_after: float = Field(
        900.0,
        gt=0,
        description="Seconds without an anomaly on a series before its finding is resolved; "
        "15 min rides out gaps between ticks without keeping stale incidents open.",
    )
    refit_every: float = Field(
        1800.0,
        gt=0,
        description="Seconds between runs of `vigil run`'s refit job, which refits every "
        "bank last fitted more than refit_interval ago, off the tick (the tick only scores). "
        "30 min: a bank is refitted 6 to 6.5 h after its last fit. `vigil demo` and "
        "`vigil backtest` refit inside their simulated ticks instead (max_refits_per_tick).",
    )
    shadow: dict[str, Any] | None = Field(
        None,
        description="Challenger run in shadow mode: detection model settings (alarm_level, "
        "persistence_k, min_points, …) that differ from the active ones, the rest taken "
        "from them. A second engine scores the same series each tick; its anomalies are "
        "stored, never acted on; compare with `vigil shadow report`. null: no shadow.",
    )

    def model_settings(self) -> DetectorSettings:
        """The active (champion) detection model settings, without the agent's fields."""
        return DetectorSettings.model_validate(
            self.model_dump(include=set(DetectorSettings.model_fields))
        )

    def challenger_settings(self) -> DetectorSettings | None:
        """The shadow (challenger) model settings: the active ones with ``shadow`` applied."""
        if self.shadow is None:
            return None
        return DetectorSettings.model_validate(
            {**self.model_settings().model_dump(), **self.shadow}
        )

    @model_validator(mode="after")
    def _shadow_valid(self) -> DetectionSettings:
        try:
            self.challenger_settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"shadow.{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValueError(
                f"{problems} (shadow takes detection model settings such as alarm_level, "
                "persistence_k, persistence_n, min_points)"
            ) from None
        return self


class LoggingSettings(_Group):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level written."
    )
    format: Literal["text", "json"] = Field(
        "text", description="`json` for log shippers, `text` for people."
    )


class StoreSettings(_Group):
    path: Path = Field(
        Path("vigil.db"), description="SQLite file (WAL mode); in a pod, on a volume."
    )
    retention_days: float = Field(
        30.0, gt=0, description="Days of history kept; older rows are pruned each day."
    )
    busy_timeout: Seconds = Field(
        5.0, description="Seconds a writer waits for a lock before failing."
    )


class AgentSettings(_Group):
    interval: Seconds = Field(
        60.0, description="Seconds between ticks; one Prometheus scrape interval or more."
    )
    cluster_name: str = Field("default", description="Name used in notifications and metrics.")


class Config(BaseModel):
    """The whole configuration. Every group has defaults; an empty file is valid."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    agent: AgentSettings = Field(default_factory=AgentSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    scaling: ScalingGroup = Field(default_factory=ScalingGroup)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    playbooks: PlaybookSettings = Field(default_factory=PlaybookSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    nlq: NlqSettings = Field(default_factory=NlqSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    sim: SimSettings = Field(default_factory=SimSettings)


def config_schema() -> dict[str, Any]:
    """The JSON schema of the YAML file, for editors and `vigil config schema`."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vigil configuration"
    return schema


def _allowed_keys(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in path:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        annotation = current.model_fields[part].annotation
        current = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return sorted(current.model_fields) if current is not None else []


def _describe(error: Mapping[str, Any], origin: Mapping[tuple[str, ...], str]) -> str:
    loc = tuple(error.get("loc", ()))
    key = ".".join(str(p) for p in loc) or "(top level)"
    for path, var in origin.items():
        if tuple(str(p) for p in loc[: len(path)]) == path or path[: len(loc)] == loc:
            key = f"{key} (from environment variable {var})"
            break
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Config, loc[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"{key}: unknown key{hint}"
    message = str(error.get("msg", "invalid value"))
    got = error.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    return f"{key}: {message}{shown}"


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``VIGIL_PROMETHEUS__URL=…`` → ``{"prometheus": {"url": …}}``.

    Lists and mappings are written as YAML/JSON (``VIGIL_GUARDRAILS__NAMESPACES_DENY='[a, b]'``);
    scalars stay strings for pydantic to convert, so a token of digits stays a string.
    Returns the tree and, per key path, the variable it came from (for error messages).
    """
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if not all(parts):
            continue
        value: Any = raw
        if raw.strip() in ("", "null", "~"):
            value = None
        elif raw.lstrip()[:1] in ("[", "{"):
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"environment {name}: not valid YAML/JSON: {exc}",
                    problems=(f"{name}: not valid YAML/JSON",),
                ) from exc
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment {name}: conflicts with another VIGIL_ variable")
        node[parts[-1]] = value
        origin[parts] = name
    return tree, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a config file into a mapping, with errors that name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; create it or drop --config to use defaults",
            problems=(f"{path}: not found",),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}", problems=(str(exc),)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{path}: not valid YAML{where}: {problem}"
        raise ConfigError(msg, problems=(msg,)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = f"{path}: the top level must be a mapping of groups, got {type(data).__name__}"
        raise ConfigError(msg, problems=(msg,))
    return data


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the file at ``path`` (or defaults), apply ``VIGIL_…`` overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    env = os.environ if environ is None else environ
    overrides, origin = _env_overrides(env)
    data = _merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = tuple(_describe(err, origin) for err in exc.errors())
        source = str(path) if path is not None else "configuration"
        count = len(problems)
        head = f"{source}: {count} problem{'s' if count != 1 else ''}"
        raise ConfigError(head + "\n  " + "\n  ".join(problems), problems=problems) from None


def redacted(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, secrets replaced by ``'***'``."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***"
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, (tuple, list)):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    result = walk(config)
    json.dumps(result)  # it must be plain data
    return result
