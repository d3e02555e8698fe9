"""A real kube-apiserver for the leader-election and manifest tests.

Uses the session fixture ``kube`` (tests/kubefixture.py, from the Kubernetes adapter
work) when it exists; otherwise starts one control plane with ``../shared/bin/kube-up.sh``
for the session, once, whichever test module asks first. Skips with a reason when the
shared folder or etcd is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_dir

_started: dict[str, Path] = {}


def _skip_reason(shared: Path | None) -> str | None:
    if shared is None or not (shared / "bin" / "kube-up.sh").is_file():
        return "needs ../shared/bin/kube-up.sh (a real kube-apiserver): set VIGIL_SHARED_DIR"
    for tool in ("etcd", "openssl", "curl"):
        if shutil.which(tool) is None:
            return f"kube-up.sh needs {tool} (apt-get install -y etcd-server openssl curl)"
    return None


def kubeconfig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Session fixture body: the admin kubeconfig of a running API server."""
    try:
        kube: Any = request.getfixturevalue("kube")
    except pytest.FixtureLookupError:
        kube = None
    if kube is not None:
        yield Path(kube.kubeconfig)
        return
    if "admin" in _started:
        yield _started["admin"]
        return
    shared = shared_dir()
    reason = _skip_reason(shared)
    if reason is not None or shared is None:
        pytest.skip(reason or "no shared folder")
    workdir = tmp_path_factory.mktemp("apiserver") / "kube"
    up = subprocess.run([str(shared / "bin" / "kube-up.sh"), str(workdir)], capture_output=True,
                        text=True, timeout=120, check=False)  # fmt: skip
    if up.returncode != 0:
        subprocess.run([str(shared / "bin" / "kube-down.sh"), str(workdir)], capture_output=True,
                       timeout=60, check=False)  # fmt: skip
        raise RuntimeError(f"kube-up.sh failed: {up.stderr[-2000:]}")
    _started["admin"] = workdir / "kubeconfig"
    try:
        yield workdir / "kubeconfig"
    finally:
        _started.pop("admin", None)
        subprocess.run([str(shared / "bin" / "kube-down.sh"), str(workdir)], capture_output=True,
                       timeout=60, check=False)  # fmt: skip


def admin_client(path: Path) -> Any:
    from kubernetes import config

    return config.new_client_from_config(str(path))


def create_namespace(api: Any, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


_CORE_PLURALS = {
    "Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps",
    "Secret": "secrets", "Service": "services", "PersistentVolumeClaim": "persistentvolumeclaims",
}  # fmt: skip
_PLURALS = {
    "Deployment": "deployments", "Role": "roles", "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings",
    "CustomResourceDefinition": "customresourcedefinitions", "Lease": "leases",
    "ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules",
}  # fmt: skip
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def request(api: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request through the client's transport; ``(status, JSON body)``."""
    import json

    req = api.param_serialize(
        method, path, body=body,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )  # fmt: skip
    response = api.call_api(*req)
    response.read()
    return response.status, json.loads(response.data) if response.data else None


def collection_path(doc: dict[str, Any]) -> str:
    kind = doc["kind"]
    group_version = doc["apiVersion"]
    prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    plural = _CORE_PLURALS.get(kind) or _PLURALS[kind]
    if kind in _CLUSTER_SCOPED:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{doc['metadata']['namespace']}/{plural}"


def create(api: Any, doc: dict[str, Any], *, dry_run: bool = False) -> tuple[int, Any]:
    """POST ``doc`` (``?dryRun=All`` when asked): nothing is stored on a dry run."""
    path = collection_path(doc) + ("?dryRun=All" if dry_run else "")
    return request(api, "POST", path, doc)
