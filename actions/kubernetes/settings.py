"""Settings of the Kubernetes adapter: the ``kubernetes`` group of vigil's config file.

The agent's config loader composes ``KubernetesSettings`` into its root model and hands
it to ``KubernetesCluster.from_settings``; nothing here reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["KubernetesSettings"]


class KubernetesSettings(BaseModel):
    """How vigil reaches the API server and how patiently it retries."""

    model_config = ConfigDict(extra="forbid")

    in_cluster: bool = Field(
        default=False,
        description=(
            "Use the pod's ServiceAccount (token and CA under "
            "/var/run/secrets/kubernetes.io/serviceaccount). Default off so a laptop run "
            "uses the kubeconfig; the shipped manifests set it on."
        ),
    )
    kubeconfig: Path | None = Field(
        default=None,
        description=(
            "Path of a kubeconfig file; unset means $KUBECONFIG or ~/.kube/config, as "
            "kubectl does. Ignored when in_cluster is on."
        ),
    )
    context: str | None = Field(
        default=None,
        description="kubeconfig context to use; unset means the file's current-context.",
    )
    connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Seconds to open a connection to the API server; 5 s fails a dead endpoint "
            "well inside one scheduler tick."
        ),
    )
    read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds to wait for an answer; 30 s covers a large list across namespaces "
            "on a busy server (kubectl's default is unbounded)."
        ),
    )
    conflict_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description=(
            "Extra fresh read-and-write attempts after a 409 conflict; 3 rides out a "
            "controller updating the same object, more would mask a fight between writers."
        ),
    )
    rate_limit_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "How many 429 answers to wait out (per request) before giving the tick back "
            "with a RetryableError; 2 keeps one action from stalling a tick."
        ),
    )
    max_retry_after_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Longest Retry-After (seconds) vigil waits in place; a longer one is returned "
            "to the scheduler as the retry delay instead of blocking the tick."
        ),
    )
    retry_delay_s: float = Field(
        default=5.0,
        ge=0,
        description=(
            "Suggested retry delay (seconds) for transient failures that carry no "
            "Retry-After (timeouts, dropped connections, 5xx, persistent conflicts)."
        ),
    )
    qps: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Client-side request rate limit (requests/second, 0 = off); 10 is twice "
            "client-go's default, ample for one agent, and keeps a storm from flooding the server."
        ),
    )
    burst: int = Field(
        default=20,
        ge=1,
        description=(
            "Requests allowed at once above qps (client-go's burst); 20 = two seconds of qps."
        ),
    )
    list_page_size: int = Field(
        default=500,
        ge=1,
        le=10000,
        description=(
            "Objects per page when listing pods, workloads and ReplicaSets (limit/continue); "
            "500 is kubectl's chunk size, small enough for the API server's memory."
        ),
    )
    field_manager: str = Field(
        default="vigil",
        min_length=1,
        max_length=128,
        description=(
            "fieldManager recorded on every write, so `kubectl get -o yaml "
            "--show-managed-fields` shows which fields vigil set."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesSettings:
        if self.in_cluster and (self.kubeconfig is not None or self.context is not None):
            raise ValueError(
                "kubernetes: in_cluster is on, so kubeconfig/context would be ignored; "
                "unset them or set in_cluster: false"
            )
        return self
