"""Settings of the natural-language layer: ``NlqSettings`` (offline engine) and
``LlmSettings`` (the optional LangChain agent).

The agent's configuration (``vigil.agent.config``) composes them as the ``nlq`` and
``llm`` groups; ``vigil.nlq.engine.Engine`` and ``vigil.nlq.llm`` take them as built
values. Every field gives its unit and why its default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from vigil.nlq.metrics_map import MetricMap

__all__ = ["LlmSettings", "NlqSettings"]


class NlqSettings(BaseModel):
    """The offline engine: time zone, limits, input bounds and the metric map."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    as_of: AwareDatetime | None = Field(
        None,
        description="Answer as of this UTC time instead of now: 'last 24 hours', 'today' "
        "and 'now' are measured from it. For a store that is not live (the one "
        "`vigil demo` leaves, which sets it to the end of its simulated days, or a "
        "post-mortem copy). Unset: now.",
    )
    timezone: str = Field(
        "UTC",
        description="IANA zone for 'yesterday', 'since 9am', 'last night'. Default UTC, "
        "the zone Prometheus and the store speak.",
    )
    default_limit: int = Field(
        5, ge=1, le=50, description="Rows in a top-N answer when none is asked (rows)."
    )
    max_limit: int = Field(
        50, ge=1, le=500, description="Largest top-N honoured (rows); larger asks are clamped."
    )
    max_question_chars: int = Field(
        2000,
        ge=10,
        description="Longer questions are refused before classification (characters); "
        "2,000 holds any real question and bounds the work per input.",
    )
    retention_days: float = Field(
        15.0,
        gt=0,
        description="Prometheus retention in days; longer ranges are clamped to it. "
        "Default: Prometheus' own default of 15 days.",
    )
    slow_query_threshold_ms: float = Field(
        500.0, gt=0, description="A database query is 'slow' above this p95 (milliseconds)."
    )
    fuzzy_cutoff: float = Field(
        0.85,
        ge=0.5,
        le=1.0,
        description="difflib ratio a misspelt name needs to be resolved ('assuming X'); "
        "0.85 accepts one typo in a short name and refuses guesses.",
    )
    min_confidence: float = Field(
        0.20,
        ge=0.0,
        le=1.0,
        description="Classifier probability below which vigil asks to rephrase (0..1).",
    )
    metrics: MetricMap = Field(
        default_factory=MetricMap,
        description="Metric names and labels of this cluster (cAdvisor, kube-state-metrics "
        "and HTTP/DB histogram conventions by default).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"nlq.timezone {value!r} is not an IANA zone (e.g. UTC, Europe/Berlin)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _limits_ordered(self) -> NlqSettings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"nlq.default_limit {self.default_limit} exceeds nlq.max_limit {self.max_limit}"
            )
        return self


class LlmSettings(BaseModel):
    """The optional LLM agent: which chat model, and the budgets that bound one question."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    provider: Literal["none", "openai", "ollama"] = Field(
        "none", description="`none` keeps vigil offline; otherwise the chat model's API."
    )
    model: str | None = Field(None, description="Model name, e.g. gpt-4o-mini or llama3.1.")
    base_url: str | None = Field(
        None, description="OpenAI-compatible (…/v1) or Ollama (http://host:11434) base URL."
    )
    api_key: SecretStr | None = Field(None, description="API key for OpenAI-compatible APIs.")
    timeout: float = Field(30.0, gt=0, description="Seconds per model call.")
    max_steps: int = Field(
        8, ge=1, le=50, description="Model calls per question at most (a loop bound)."
    )
    max_tool_calls: int = Field(
        6, ge=1, le=50, description="Tool calls per question at most (bounds load on sources)."
    )
    max_tokens: int = Field(
        1024, ge=64, le=32768, description="Tokens per model reply at most (cost bound)."
    )
    max_tool_output_chars: int = Field(
        4000,
        ge=200,
        description="Characters of one tool result handed to the model; keeps the context "
        "(and what cluster data can say to the model) small.",
    )

    @model_validator(mode="after")
    def _model_needed(self) -> LlmSettings:
        if self.provider != "none" and not self.model:
            raise ValueError(f"llm.model is required when llm.provider is {self.provider!r}")
        return self
