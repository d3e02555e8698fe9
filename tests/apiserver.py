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


# Kinds served through CustomResourceDefinitions (tests/data/crds/). The test server's
# v1.20.2 build (Go 1.19, vendored reflect2 v1.0.1) dies with SIGSEGV on any custom
# resource that carries a metadata object, which would take the session's server down
# for every test after it: docs/deploy.md, "Custom resources on the test API server".
CUSTOM_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


def create(api: Any, doc: dict[str, Any], *, dry_run: bool = False) -> tuple[int, Any]:
    """POST ``doc`` (``?dryRun=All`` when asked): nothing is stored on a dry run."""
    if doc["kind"] in CUSTOM_KINDS:
        raise ValueError(
            f"{doc['kind']} is a custom resource: sending it would crash this API server "
            "build; check it with dry_run_custom_resource instead"
        )
    path = collection_path(doc) + ("?dryRun=All" if dry_run else "")
    return request(api, "POST", path, doc)


def dry_run_custom_resource(api: Any, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The server's schema errors for a custom resource: its body without ``metadata``
    (the part whose decoding crashes this build) in a server-side dry run. The server
    then decodes, prunes and validates it against the CRD's schema and refuses it for
    the missing name, listing every schema error beside that one; these are returned
    (``[]``: the schema accepts it). Check the metadata with ``dry_run_metadata``."""
    body = {key: value for key, value in doc.items() if key != "metadata"}
    status, reply = request(api, "POST", collection_path(doc) + "?dryRun=All", body)
    causes = (reply.get("details") or {}).get("causes", []) if reply else []
    unnamed = [c for c in causes if c.get("field") == "metadata.name"]
    if status != 422 or [c.get("reason") for c in unnamed] != ["FieldValueRequired"]:
        # anything else means the request did not reach schema validation as expected
        raise AssertionError(f"{doc['kind']}: unexpected reply {status}: {reply}")
    return [c for c in causes if c.get("field") != "metadata.name"]


def dry_run_metadata(api: Any, doc: dict[str, Any]) -> tuple[int, Any]:
    """A custom resource's metadata checked by the server on a ConfigMap that carries it:
    object metadata is validated the same way for every namespaced kind (name a DNS
    subdomain, labels, annotations). 201, or 409 when such a ConfigMap exists (a conflict
    is found only after validation passed)."""
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
    return create(api, carrier, dry_run=True)
