"""deploy/: the manifests parse, the config validates, the rules compile, and a real
kube-apiserver accepts every object with a server-side dry run; the ServiceMonitor and
PrometheusRule against the Prometheus Operator's CRDs (vendored in tests/data/crds/),
through the workaround for the test server's crash on custom resources (docs/deploy.md,
"Custom resources on the test API server")."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apiserver
import pytest
import yaml

from vigil.agent.config import load_config
from vigil.agent.leader import KubeLease, LeaderElector
from vigil.core import ManualClock

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CRDS = REPO / "tests" / "data" / "crds"
SHIPPED = ["config.yaml", "storage.yaml", "deployment.yaml", "service.yaml"]
MONITORING = ["monitoring/servicemonitor.yaml", "monitoring/prometheusrule.yaml"]


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    names = kustomization["resources"]
    assert names[0] == "rbac.yaml"  # namespace and service account before anything in them
    missing = [n for n in names if not (DEPLOY / n).is_file() and n != "rbac.yaml"]
    assert missing == []


def test_configmap_holds_a_valid_dry_run_config(tmp_path: Path) -> None:
    [cm] = docs(DEPLOY / "config.yaml")
    path = tmp_path / "vigil.yaml"
    path.write_text(cm["data"]["vigil.yaml"])
    cfg = load_config(path, environ={})
    assert cfg.guardrails.dry_run is True and cfg.leader.enabled
    assert str(cfg.store.path).startswith("/var/lib/vigil/")


def test_deployment_is_non_root_probed_limited_and_secret_driven() -> None:
    [dep] = docs(DEPLOY / "deployment.yaml")
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert (
        c["securityContext"]["readOnlyRootFilesystem"]
        and not c["securityContext"]["allowPrivilegeEscalation"]
    )
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(c["resources"]) == {"requests", "limits"}
    secret_vars = {e["name"] for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secret_vars == {"VIGIL_NOTIFY__SLACK__TOKEN", "VIGIL_NOTIFY__SLACK__WEBHOOK_URL",
                           "VIGIL_NOTIFY__WEBHOOK__SECRET", "VIGIL_SERVER__ALERTMANAGER_TOKEN",
                           "VIGIL_SERVER__APPROVAL_SECRET"}  # fmt: skip
    assert pod["serviceAccountName"] == "vigil"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile  # the image's user is the one the pod runs as


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs promtool (apt-get install prometheus)"
)
def test_prometheus_rules_compile_with_promtool(tmp_path: Path) -> None:
    [rule] = docs(DEPLOY / "monitoring" / "prometheusrule.yaml")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 4 rules found" in out.stdout


def test_service_monitor_scrapes_the_service_port() -> None:
    [monitor] = docs(DEPLOY / "monitoring" / "servicemonitor.yaml")
    [service] = docs(DEPLOY / "service.yaml")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_alertmanager_route_sends_labelled_alerts_to_vigil_with_resolved() -> None:
    cfg = yaml.safe_load((DEPLOY / "monitoring" / "alertmanager-route.yml").read_text())
    [route] = cfg["route"]["routes"]
    [receiver] = [r for r in cfg["receivers"] if r["name"] == route["receiver"]]
    [hook] = receiver["webhook_configs"]
    assert hook["url"].endswith(":8080/alertmanager") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"


def crd_schema(kind: str) -> dict[str, Any]:
    """The vendored upstream CRD's openAPIV3Schema for ``kind`` (its one version, v1)."""
    for path in sorted(CRDS.glob("*.yaml")):
        [crd] = docs(path)
        if crd["spec"]["names"]["kind"] == kind:
            [version] = crd["spec"]["versions"]
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"no CRD for {kind} in {CRDS}")


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields a v1.20 API server would drop without a word (structural pruning): it
    keeps only what the schema names, so a misspelt field (``intervall``) disappears
    and the object still passes. Newer servers refuse such fields (field validation
    Strict, 1.25+); this gives the same answer against the same schema."""
    if isinstance(value, list):
        items = schema.get("items", {})
        return [
            f for i, item in enumerate(value) for f in pruned_fields(item, items, f"{path}[{i}]")
        ]
    if not isinstance(value, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    known, rest = schema.get("properties", {}), schema.get("additionalProperties")
    found: list[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if where == "metadata":
            continue  # the root's metadata is ObjectMeta, checked by the server, not pruned
        if key in known:
            found += pruned_fields(item, known[key], where)
        elif isinstance(rest, dict):
            found += pruned_fields(item, rest, where)
        elif rest is not True:
            found.append(where)
    return found


def test_vendored_crds_are_upstream_files_unchanged() -> None:
    paths = sorted(CRDS.glob("*.yaml"))
    assert len(paths) == 2 and (CRDS / "LICENSE").is_file() and (CRDS / "NOTICE").is_file()
    for path in paths:
        header, body = [], path.read_text().splitlines(keepends=True)
        while body and body[0].startswith("#"):
            header.append(body.pop(0))
        [digest] = [h.split(":")[-1].strip() for h in header if "sha256" in h]
        assert hashlib.sha256("".join(body).encode()).hexdigest() == digest, path.name
        assert any("Apache License, Version 2.0" in h for h in header), path.name


def test_pruning_walk_finds_misspelt_and_misplaced_fields() -> None:
    [monitor] = docs(DEPLOY / "monitoring" / "servicemonitor.yaml")
    schema = crd_schema("ServiceMonitor")
    assert pruned_fields(monitor, schema) == []
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    monitor["spec"]["selector"]["matchLabels"]["app"] = "vigil"  # a map: any key is kept
    monitor["spec"]["selector"]["app"] = "vigil"
    assert pruned_fields(monitor, schema) == ["spec.selector.app", "spec.endpoints[0].intervall"]


# ---------------------------------------------------------------- the real API server


@pytest.fixture(scope="session")
def kubeconfig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    yield from apiserver.kubeconfig(request, tmp_path_factory)


def establish_crds(api: Any) -> None:
    """Create the vendored CRDs and wait until they are Established and served."""
    for path in sorted(CRDS.glob("*.yaml")):
        [crd] = docs(path)
        status, body = apiserver.create(api, crd)
        assert status in (201, 409), body
    for path in sorted(CRDS.glob("*.yaml")):
        name = docs(path)[0]["metadata"]["name"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # waiting for a real server's controller
            _, body = apiserver.request(
                api, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
            conditions = {
                c["type"]: c["status"] for c in body.get("status", {}).get("conditions", [])
            }
            if conditions.get("Established") == "True":
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"CRD {name} not established in 30 s")
    # the API server's discovery of new resources lags their establishment slightly
    deadline = time.monotonic() + 30
    while apiserver.request(api, "GET", "/apis/monitoring.coreos.com/v1")[0] != 200:
        assert time.monotonic() < deadline, "monitoring.coreos.com/v1 never served"
        time.sleep(0.2)


def namespace_and_identity(api: Any) -> None:
    """Namespace and ServiceAccount: from deploy/rbac.yaml when it is there (created for
    real, as `kubectl apply -k` would), else just the two objects the others need."""
    rbac = DEPLOY / "rbac.yaml"
    objects = docs(rbac) if rbac.is_file() else [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vigil"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "vigil", "namespace": "vigil"}},
    ]  # fmt: skip
    for doc in objects:
        status, body = apiserver.create(api, doc)
        assert status in (201, 409), body


@pytest.mark.kube
def test_every_shipped_manifest_passes_a_server_side_dry_run(kubeconfig: Path) -> None:
    api = apiserver.admin_client(kubeconfig)
    namespace_and_identity(api)
    for name in SHIPPED:
        for doc in docs(DEPLOY / name):
            status, body = apiserver.create(api, doc, dry_run=True)
            assert status == 201, f"{name}: {doc['kind']} refused: {body.get('message')}"
    # nothing was stored
    status, _ = apiserver.request(api, "GET", "/apis/apps/v1/namespaces/vigil/deployments/vigil")
    assert status == 404
    # and the dry run does validate: a broken Deployment is refused
    [dep] = docs(DEPLOY / "deployment.yaml")
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    status, body = apiserver.create(api, dep, dry_run=True)
    assert status == 422 and "containerPort" in body["message"]


@pytest.mark.kube
def test_monitoring_objects_pass_the_upstream_schemas_on_the_server(kubeconfig: Path) -> None:
    """deploy/monitoring/ against the Prometheus Operator's own CRDs, on the real server.
    This API server build crashes on any custom resource that carries metadata, so the
    server checks the body (without metadata) against the CRD's schema and the metadata
    on a ConfigMap (apiserver.dry_run_custom_resource; docs/deploy.md says why)."""
    api = apiserver.admin_client(kubeconfig)
    establish_crds(api)
    namespace_and_identity(api)
    for name in MONITORING:
        [doc] = docs(DEPLOY / name)
        assert apiserver.dry_run_custom_resource(api, doc) == [], name
        status, body = apiserver.dry_run_metadata(api, doc)
        assert status in (201, 409), f"{name}: metadata refused: {body.get('message')}"
        assert pruned_fields(doc, crd_schema(doc["kind"])) == [], name
    # the server's schema check can fail: wrong types and a missing required field
    [monitor] = docs(DEPLOY / "monitoring" / "servicemonitor.yaml")
    monitor["spec"]["endpoints"][0]["port"] = 8080
    monitor["spec"]["namespaceSelector"]["matchNames"] = "vigil"
    causes = {c["field"]: c for c in apiserver.dry_run_custom_resource(api, monitor)}
    assert {field: c["reason"] for field, c in causes.items()} == {
        "spec.endpoints.port": "FieldValueInvalid",
        "spec.namespaceSelector.matchNames": "FieldValueInvalid",
    }  # the server lists them in no fixed order
    assert "must be of type string" in causes["spec.endpoints.port"]["message"]
    assert "must be of type array" in causes["spec.namespaceSelector.matchNames"]["message"]
    [rule] = docs(DEPLOY / "monitoring" / "prometheusrule.yaml")
    del rule["spec"]["groups"][0]["name"]
    rule["spec"]["groups"][1]["rules"][0]["for"] = 300
    causes = apiserver.dry_run_custom_resource(api, rule)
    assert sorted((c["field"], c["reason"]) for c in causes) == [
        ("spec.groups.name", "FieldValueRequired"),
        ("spec.groups.rules.for", "FieldValueInvalid"),
    ]
    # and so can the metadata check: a name that is not a DNS subdomain
    [monitor] = docs(DEPLOY / "monitoring" / "servicemonitor.yaml")
    monitor["metadata"]["name"] = "Vigil_Monitor"
    status, body = apiserver.dry_run_metadata(api, monitor)
    assert status == 422 and "metadata.name" in body["message"]
    # the guard: a custom resource with its metadata is never sent
    with pytest.raises(ValueError, match="would crash this API server"):
        apiserver.create(api, monitor, dry_run=True)


@pytest.mark.kube
@pytest.mark.skipif(
    not (DEPLOY / "rbac.yaml").is_file(),
    reason="deploy/rbac.yaml comes with the Kubernetes adapter branch",
)
def test_the_agent_identity_may_hold_the_leader_lease(kubeconfig: Path) -> None:
    admin = apiserver.admin_client(kubeconfig)
    namespace_and_identity(admin)
    agent = apiserver.admin_client(kubeconfig)
    agent.set_default_header("Impersonate-User", "system:serviceaccount:vigil:vigil")
    agent.set_default_header("Impersonate-Group", "system:serviceaccounts")
    [cm] = docs(DEPLOY / "config.yaml")
    lease = yaml.safe_load(cm["data"]["vigil.yaml"])["leader"]
    clock = ManualClock(datetime(2026, 11, 23, 12, tzinfo=UTC))
    # a name of its own: other tests (the adapter's RBAC test) use the shipped one
    name = f"{lease['name']}-manifest-test"
    elector = LeaderElector(KubeLease(agent, lease["namespace"], name), "vigil-7f9c-x1", clock)
    assert elector.step() is True
    assert elector.step() is True  # renew (update) is allowed too
    assert elector.release() is True
    status, _ = apiserver.request(
        agent, "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/vigil/leases/{name}"
    )
    assert status == 403  # least privilege: get, create, update only
