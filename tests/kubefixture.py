"""Start and stop a real kube-apiserver (+ etcd, controller-manager) for the kube tests.

``tests/conftest.py``'s session fixture ``kube`` calls ``start``/``stop``; the helpers
below build objects the way a cluster would have them (``/work/shared/bin/README.md``:
no kubelet or scheduler, so pods stay Pending until a test patches their status).
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.cluster_behaviours import NEW_IMAGE, World
from vigil.core import ObjectRef

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
AGENT_USER = "system:serviceaccount:vigil:vigil"
AGENT_GROUPS = "system:serviceaccounts,system:serviceaccounts:vigil"


def skip_reason(shared: Path | None) -> str | None:
    """Why the real API server cannot run here, or ``None`` when it can."""
    if shared is None:
        return (
            "needs ../shared/bin/kube-up.sh (the real kube-apiserver): set VIGIL_SHARED_DIR "
            "or clone beside the shared folder"
        )
    if not (shared / "bin" / "kube-up.sh").is_file():
        return f"{shared}/bin/kube-up.sh is missing"
    for tool in ("etcd", "openssl", "curl"):
        if shutil.which(tool) is None:
            return (
                f"kube-up.sh needs {tool!r} on PATH (apt-get install -y etcd-server openssl curl)"
            )
    return None


@dataclass(frozen=True)
class KubeServer:
    """A running control plane: where it listens and the tokens it accepts."""

    shared: Path
    dir: Path
    kubeconfig: Path
    server: str
    ca: Path
    admin_token: str
    agent_token: str

    def kubeconfig_for(self, name: str, token: str, server: str | None = None) -> Path:
        """A kubeconfig acting as ``token`` against ``server`` (default: the API server)."""
        url = server or self.server
        cluster: dict[str, Any] = {"server": url}
        if url.startswith("https"):
            cluster["certificate-authority"] = str(self.ca)
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}}],
            "current-context": name,
        }
        path = self.dir / f"kubeconfig-{name}"
        path.write_text(yaml.safe_dump(doc))
        return path

    def admin(self) -> Any:
        """An ``ApiClient`` for the cluster admin (test setup only)."""
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig))


def start(shared: Path, workdir: Path) -> KubeServer:
    """Run kube-up.sh in ``workdir`` with an extra token for vigil's ServiceAccount."""
    agent_token = secrets.token_hex(16)
    tokens = workdir / "extra-tokens.csv"
    tokens.write_text(f'{agent_token},{AGENT_USER},vigil-uid,"{AGENT_GROUPS}"\n')
    up = subprocess.run(
        [str(shared / "bin" / "kube-up.sh"), str(workdir / "kube")],
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(Path.home()),
            "KUBE_UP_TOKENS": str(tokens),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if up.returncode != 0:
        stop(workdir / "kube", shared)
        raise RuntimeError(f"kube-up.sh failed ({up.returncode}): {up.stderr[-2000:]}")
    kubeconfig = workdir / "kube" / "kubeconfig"
    doc = yaml.safe_load(kubeconfig.read_text())
    return KubeServer(
        shared=shared,
        dir=workdir / "kube",
        kubeconfig=kubeconfig,
        server=doc["clusters"][0]["cluster"]["server"],
        ca=Path(doc["clusters"][0]["cluster"]["certificate-authority"]),
        admin_token=doc["users"][0]["user"]["token"],
        agent_token=agent_token,
    )


def stop(directory: Path, shared: Path) -> None:
    """kube-down.sh: stops exactly the processes kube-up.sh recorded."""
    if (directory / "pids").exists():
        subprocess.run(
            [str(shared / "bin" / "kube-down.sh"), str(directory)],
            capture_output=True,
            timeout=60,
            check=False,
        )


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll a real server until ``probe`` returns something (the controllers are async)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------- objects
def create_namespace(api: Any, name: str) -> None:
    from kubernetes import client

    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


def deployment_body(name: str, image: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            # Recreate: without a kubelet no pod becomes ready, so a rolling update
            # would stall with both ReplicaSets half-scaled.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def create_deployment(api: Any, namespace: str, name: str, replicas: int = 2) -> None:
    from kubernetes import client

    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment_body(name, "shop/api:1.0", replicas)
    )
    wait_for_revision(api, namespace, name, 1)


def revision(api: Any, namespace: str, name: str) -> int:
    from kubernetes import client

    dep = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    return int((dep.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))


def wait_for_revision(api: Any, namespace: str, name: str, number: int) -> int:
    return wait_for(
        f"deployment {namespace}/{name} at revision {number}",
        lambda: revision(api, namespace, name) >= number or None,
    )


def set_image(api: Any, namespace: str, name: str, image: str) -> None:
    """A new rollout (the next revision), as ``kubectl set image`` makes it."""
    from kubernetes import client

    before = revision(api, namespace, name)
    client.AppsV1Api(api).patch_namespaced_deployment(
        name,
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    wait_for_revision(api, namespace, name, before + 1)


def pods_of(api: Any, namespace: str, app: str, count: int) -> list[Any]:
    from kubernetes import client

    core = client.CoreV1Api(api)

    def probe() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live if len(live) >= count else None

    return wait_for(f"{count} pods of {namespace}/{app}", probe)


def set_pod_status(
    api: Any,
    namespace: str,
    name: str,
    *,
    ready: bool = True,
    restarts: int = 0,
    waiting: str | None = None,
    last_terminated: str | None = None,
    exit_code: int = 137,
    node: str | None = None,
) -> None:
    """Play kubelet: patch a pod's status (Running, ready, restarts, CrashLoopBackOff…)."""
    from kubernetes import client

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": now}}
    )
    container: dict[str, Any] = {
        "name": "app",
        "image": "shop/api",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
    }
    if last_terminated:
        container["lastState"] = {"terminated": {"reason": last_terminated, "exitCode": exit_code}}
    status = {
        "phase": "Running",
        "startTime": now,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [container],
    }
    core = client.CoreV1Api(api)
    core.patch_namespaced_pod_status(
        name, namespace, {"status": status}, _content_type="application/merge-patch+json"
    )
    if node:
        # spec.nodeName can only be set through the binding subresource (as the scheduler does)
        core.create_namespaced_pod_binding(
            name,
            namespace,
            client.V1Binding(
                metadata=client.V1ObjectMeta(name=name),
                target=client.V1ObjectReference(kind="Node", name=node),
            ),
            _preload_content=False,
        )


def create_node(api: Any, name: str, conditions: Mapping[str, str] | None = None) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    conds = {"Ready": "True", "MemoryPressure": "False", **(conditions or {})}
    core.patch_node_status(
        name,
        {
            "status": {
                "conditions": [{"type": t, "status": s} for t, s in conds.items()],
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            }
        },
        _content_type="application/merge-patch+json",
    )


def create_hpa(api: Any, namespace: str, name: str, target: str, lo: int, hi: int) -> None:
    from kubernetes import client

    client.AutoscalingV1Api(api).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "minReplicas": lo,
                "maxReplicas": hi,
                "targetCPUUtilizationPercentage": 80,
            },
        },
    )


def raw(api: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request through the client's transport (for APIs the typed client lacks:
    policy/v1beta1 PodDisruptionBudgets on this v1.20 server)."""
    import json

    request = api.param_serialize(
        method,
        path,
        body=body,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    data = json.loads(response.data) if response.data else None
    return response.status, data


def create_pdb(api: Any, namespace: str, name: str, app: str, min_available: int) -> None:
    status, data = raw(
        api,
        "POST",
        f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets",
        {
            "apiVersion": "policy/v1beta1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
        },
    )
    assert status == 201, data

    def processed() -> bool | None:
        _, pdb = raw(
            api, "GET", f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/{name}"
        )
        st = pdb.get("status") or {}
        return st.get("observedGeneration") == pdb["metadata"]["generation"] or None

    wait_for(f"PodDisruptionBudget {namespace}/{name} processed", processed)


def apply_dict(api: Any, doc: Mapping[str, Any]) -> None:
    """Create one object from its manifest; an existing one is left as it is."""
    from kubernetes import utils
    from kubernetes.utils import FailToCreateError

    try:
        utils.create_from_dict(api, dict(doc))
    except FailToCreateError as exc:
        if not all(e.status == 409 for e in exc.api_exceptions):
            raise


def apply_manifest(api: Any, path: Path) -> None:
    """Create every object of a multi-document YAML (the shipped RBAC), idempotently."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            apply_dict(api, doc)


# ---------------------------------------------------------------------- the World
_numbers = itertools.count(1)


def unique() -> int:
    """A number for namespace and node names no other test in the session uses."""
    return next(_numbers)


def build_world(kube: KubeServer, prefix: str) -> World:
    """Set the ``World`` up on the real API server (as the admin), in a new namespace."""
    from kubernetes import client

    admin = kube.admin()
    ns = f"{prefix}-{unique()}"
    create_namespace(admin, ns)
    create_deployment(admin, ns, "api")
    set_image(admin, ns, "api", NEW_IMAGE)
    newest = max(
        client.AppsV1Api(admin).list_namespaced_replica_set(ns).items,
        key=lambda rs: int(rs.metadata.annotations["deployment.kubernetes.io/revision"]),
    )

    def current_pods() -> list[Any] | None:
        pods = pods_of(admin, ns, "api", 2)
        mine = [p for p in pods if p.metadata.owner_references[0].name == newest.metadata.name]
        return mine if len(mine) == 2 and len(pods) == 2 else None

    pods = wait_for("the new ReplicaSet's 2 pods", current_pods)
    for pod in pods:
        set_pod_status(admin, ns, pod.metadata.name)
    node = f"node-{ns}"
    create_node(admin, node)
    create_hpa(admin, ns, "api", "api", 1, 5)

    def settle(ref: ObjectRef) -> None:
        apps = client.AppsV1Api(admin)

        def caught_up() -> bool | None:
            # Recreate strategy: the new ReplicaSet (and the revision) appears only after
            # the old pods are gone, so wait until every replica is of the new template.
            dep = apps.read_namespaced_deployment(ref.name, ns)
            seen = (dep.status.observed_generation or 0) >= dep.metadata.generation
            return (seen and dep.status.updated_replicas == dep.spec.replicas) or None

        wait_for(f"{ref} observed by its controller", caught_up)

    return World(
        namespace=ns,
        deployment=ObjectRef("Deployment", ns, "api"),
        pods=(
            ObjectRef("Pod", ns, pods[0].metadata.name),
            ObjectRef("Pod", ns, pods[1].metadata.name),
        ),
        node=node,
        hpa=ObjectRef("hpa", ns, "api"),
        settle=settle,
    )


class WorldPool:
    """Worlds built ahead in the background while tests run: most of a world's cost is
    waiting for the controllers (about 1 s alone), which overlaps well. ``ahead``
    worlds are always in the making; each ``take`` starts the next one."""

    def __init__(self, kube: KubeServer, ahead: int = 3) -> None:
        self._kube = kube
        self._executor = ThreadPoolExecutor(ahead, thread_name_prefix="world")
        self._lock = threading.Lock()
        self._futures = deque(self._submit() for _ in range(ahead))

    def _submit(self) -> Future[World]:
        return self._executor.submit(build_world, self._kube, "w")

    def take(self) -> World:
        """A fresh world no other test has touched."""
        with self._lock:
            future = self._futures.popleft()
            self._futures.append(self._submit())
        return future.result(timeout=60)

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._executor.shutdown(wait=True)
