"""deploy/: the manifests parse, the config validates, the rules compile, and a real
kube-apiserver accepts every object with a server-side dry run."""

from __future__ import annotations

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


# ---------------------------------------------------------------- the real API server


@pytest.fixture(scope="session")
def kubeconfig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    yield from apiserver.kubeconfig(request, tmp_path_factory)


def establish_crds(api: Any) -> None:
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
    establish_crds(api)
    namespace_and_identity(api)
    for name in SHIPPED:
        for doc in docs(DEPLOY / name):
            status, body = apiserver.create(api, doc, dry_run=True)
            assert status == 201, f"{name}: {doc['kind']} refused: {body.get('message')}"
    # nothing was stored
    status, _ = apiserver.request(api, "GET", "/apis/apps/v1/namespaces/vigil/deployments/vigil")
    assert status == 404
    # The monitoring objects: this kube-apiserver build (1.20.2 compiled with Go 1.19)
    # crashes with SIGSEGV decoding any custom resource (an old json-iterator/reflect2
    # under a newer Go), so they cannot be sent to it. What the server can check: the
    # CRDs establish and discovery serves exactly the kinds and plurals the files use.
    _, group = apiserver.request(api, "GET", "/apis/monitoring.coreos.com/v1")
    served = {r["kind"]: r["name"] for r in group["resources"]}
    for name in MONITORING:
        [doc] = docs(DEPLOY / name)
        assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] in served
    # and the dry run does validate: a broken Deployment is refused
    [dep] = docs(DEPLOY / "deployment.yaml")
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    status, body = apiserver.create(api, dep, dry_run=True)
    assert status == 422 and "containerPort" in body["message"]


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
