"""The metric map: which Prometheus metric and label names answer which question.

Defaults are the names real clusters have: cAdvisor (``container_*``), kube-state-metrics
(``kube_*``), the kubelet's volume stats, and the HTTP / database histogram conventions
(``http_requests_total`` with ``code``, ``*_duration_seconds_bucket``). A cluster with
other names is taught through the ``nlq.metrics`` config group. Read by
``vigil.nlq.promql`` (the templates) and ``vigil.nlq.inventory`` (label discovery).
Names are validated here, so no template can ever carry user text as a metric name.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["METRIC_VOCABULARY", "MetricMap"]

# The taxonomy's metric vocabulary (nlq-taxonomy.md); the only metric words an answer uses.
METRIC_VOCABULARY = (
    "memory",
    "cpu",
    "restarts",
    "request_rate",
    "http_5xx_ratio",
    "http_latency_p95",
    "http_latency_p99",
    "db_query_duration",
    "node_memory_requested",
    "pvc_usage",
)

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _m(default: str, what: str) -> Any:
    return Field(default, description=f"Metric name: {what}.")


def _lab(default: str, what: str) -> Any:
    return Field(default, description=f"Label name: {what}.")


class MetricMap(BaseModel):
    """Metric and label names; every value is checked to be a Prometheus name."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    cpu_usage: str = _m("container_cpu_usage_seconds_total", "cAdvisor CPU seconds counter")
    memory_working_set: str = _m(
        "container_memory_working_set_bytes", "cAdvisor working-set bytes gauge"
    )
    restarts: str = _m("kube_pod_container_status_restarts_total", "kube-state restarts counter")
    pod_phase: str = _m("kube_pod_status_phase", "kube-state pod phase (1 for the current)")
    pod_labels: str = _m("kube_pod_labels", "kube-state pod labels (joins pods to services)")
    pod_info: str = _m("kube_pod_info", "kube-state pod info (node of a pod)")
    waiting_reason: str = _m(
        "kube_pod_container_status_waiting_reason", "kube-state waiting reason (CrashLoopBackOff)"
    )
    terminated_reason: str = _m(
        "kube_pod_container_status_terminated_reason", "kube-state terminated reason (Error)"
    )
    last_terminated_reason: str = _m(
        "kube_pod_container_status_last_terminated_reason", "kube-state last termination reason"
    )
    last_terminated_exitcode: str = _m(
        "kube_pod_container_status_last_terminated_exitcode", "kube-state last exit code"
    )
    resource_limits: str = _m("kube_pod_container_resource_limits", "kube-state limits")
    resource_requests: str = _m("kube_pod_container_resource_requests", "kube-state requests")
    node_allocatable: str = _m("kube_node_status_allocatable", "kube-state node allocatable")
    deployment_replicas: str = _m(
        "kube_deployment_status_replicas", "kube-state deployment replicas (current)"
    )
    deployment_desired: str = _m(
        "kube_deployment_spec_replicas", "kube-state deployment replicas (desired)"
    )
    deployment_available: str = _m(
        "kube_deployment_status_replicas_available", "kube-state available replicas"
    )
    hpa_min: str = _m("kube_horizontalpodautoscaler_spec_min_replicas", "HPA minimum")
    hpa_max: str = _m("kube_horizontalpodautoscaler_spec_max_replicas", "HPA maximum")
    hpa_current: str = _m("kube_horizontalpodautoscaler_status_current_replicas", "HPA current")
    pvc_used: str = _m("kubelet_volume_stats_used_bytes", "kubelet PVC used bytes")
    pvc_capacity: str = _m("kubelet_volume_stats_capacity_bytes", "kubelet PVC capacity bytes")
    http_requests: str = _m("http_requests_total", "HTTP requests counter with a status code")
    http_duration_bucket: str = _m(
        "http_request_duration_seconds_bucket", "HTTP latency histogram buckets"
    )
    db_duration_bucket: str = _m(
        "db_query_duration_seconds_bucket", "database query latency histogram buckets"
    )

    namespace_label: str = _lab("namespace", "namespace of a series")
    pod_label: str = _lab("pod", "pod of a series")
    container_label: str = _lab("container", "container of a cAdvisor series")
    node_label: str = _lab("node", "node of a series")
    service_label: str = _lab("service", "service of an HTTP/DB series")
    pod_service_label: str = _lab(
        "label_app", "label of kube_pod_labels naming a pod's service (app.kubernetes.io/name)"
    )
    code_label: str = _lab("code", "HTTP status code label")
    query_label: str = _lab("query", "database statement label of the DB histogram")
    hpa_label: str = _lab("horizontalpodautoscaler", "HPA name label of kube-state metrics")
    pvc_label: str = _lab("persistentvolumeclaim", "PVC name label of kubelet volume stats")
    deployment_label: str = _lab("deployment", "deployment name label of kube-state metrics")

    @model_validator(mode="after")
    def _names_are_prometheus_names(self) -> MetricMap:
        for key, value in self.model_dump().items():
            pattern = _LABEL_NAME if key.endswith("_label") else _METRIC_NAME
            if not pattern.match(value):
                raise ValueError(
                    f"nlq.metrics.{key}: {value!r} is not a Prometheus "
                    f"{'label' if key.endswith('_label') else 'metric'} name"
                )
        return self
