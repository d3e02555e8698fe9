"""The Kubernetes adapter's pure parts, without a server: the rate limiter, how API
failures become vigil errors, kubectl's rollback rules, settings, and lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from vigil.actions.kubernetes import (
    ActionRejected,
    ApiServerUnavailable,
    ConflictPersisted,
    DisruptionBudgetBlocked,
    Forbidden,
    KubernetesSettings,
    RateLimited,
    Unauthorized,
)
from vigil.actions.kubernetes._calls import TokenBucket
from vigil.actions.kubernetes._errors import Op, translate, transport
from vigil.actions.kubernetes._rollout import (
    owned_history,
    pick_revision,
    restart_patch,
    undo_patch,
)
from vigil.core import NotFoundError, PermanentError, RetryableError

OP = Op("patch", "deployments/scale", "apps", "shop", "deployment/shop/api")


def api_error(
    status: int, message: str = "", headers: dict[str, str] | None = None, **body: Any
) -> Any:
    """What ``ApiException`` carries: status, the Status body, the response headers."""
    return SimpleNamespace(
        status=status,
        reason="Reason",
        body=json.dumps({"kind": "Status", "message": message, **body}),
        headers=headers or {},
    )


# ---------------------------------------------------------------------- rate limiter
def test_token_bucket_allows_a_burst_then_paces_to_qps() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(qps=2.0, burst=3, monotonic=lambda: now[0], sleep=sleep)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # 4th request waits one token's time
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 10.0  # idle: the bucket refills, but never beyond the burst
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() > 0
    assert TokenBucket(0, 1, monotonic=lambda: 0.0, sleep=sleep).take() == 0.0  # off


# ---------------------------------------------------------------------- errors
def test_403_names_the_rbac_rule_from_the_servers_words() -> None:
    server = (
        'deployments.apps "api" is forbidden: User "system:serviceaccount:vigil:vigil" '
        'cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"'
    )
    err = translate(api_error(403, server), OP, delay=5)
    assert isinstance(err, Forbidden) and isinstance(err, PermanentError)
    assert str(err).startswith(
        "deployment/shop/api: forbidden: vigil needs verb 'patch' on 'deployments/scale' "
        "(apps) in namespace shop; see deploy/rbac.yaml"
    )
    assert (err.verb, err.resource, err.group, err.namespace) == (
        "patch",
        "deployments/scale",
        "apps",
        "shop",
    )


def test_403_without_the_usual_wording_falls_back_to_the_request() -> None:
    err = translate(api_error(403, "denied by a webhook"), OP, delay=5)
    assert "vigil needs verb 'patch' on 'deployments/scale' (apps) in namespace shop" in str(err)
    nodes = Op("patch", "nodes", "", None, "node/a")
    assert "on 'nodes' (core) cluster-wide" in str(translate(api_error(403, "no"), nodes, delay=5))


def test_each_status_becomes_the_error_that_decides_what_happens_next() -> None:
    cases: list[tuple[Any, type[Exception]]] = [
        (api_error(401, "Unauthorized"), Unauthorized),
        (api_error(404, 'deployments.apps "api" not found'), NotFoundError),
        (api_error(409, "the object has been modified"), ConflictPersisted),
        (api_error(422, "spec.replicas: Invalid value: -1"), ActionRejected),
        (api_error(400, "bad"), ActionRejected),
        (api_error(500, "etcdserver: request timed out"), ApiServerUnavailable),
        (api_error(429, "slow down", {"Retry-After": "4"}), RateLimited),
        (api_error(418, "teapot"), PermanentError),
    ]
    for exc, kind in cases:
        err = translate(exc, OP, delay=5)
        assert type(err) is kind, (exc.status, err)
        assert str(err).startswith("deployment/shop/api: ")
    assert translate(api_error(429, "x", {"Retry-After": "4"}), OP, delay=5).delay == 4.0  # type: ignore[attr-defined]
    assert translate(api_error(503, "x"), OP, delay=5).delay == 5.0  # type: ignore[attr-defined]


def test_a_disruption_budget_429_is_a_refusal_not_a_rate_limit() -> None:
    exc = api_error(
        429,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget api needs 2 healthy pods",
                }
            ]
        },
    )
    err = translate(exc, OP, delay=5)
    assert isinstance(err, DisruptionBudgetBlocked) and not isinstance(err, RetryableError)
    assert "The disruption budget api needs 2 healthy pods" in str(err)


def test_transport_failures_are_retryable_but_tls_is_not() -> None:
    import urllib3

    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    err = transport(refused, OP, delay=3)
    assert isinstance(err, ApiServerUnavailable) and err.delay == 3.0
    tls = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError("bad cert"))  # type: ignore[arg-type]
    assert type(transport(tls, OP, delay=3)) is PermanentError


# ---------------------------------------------------------------------- kubectl rollback
def _rs(revision: int, uid: str, image: str, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {"deployment.kubernetes.io/revision": str(revision), **annotations},
            "ownerReferences": [{"controller": True, "uid": uid, "kind": "Deployment"}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "api", "pod-template-hash": f"h{revision}"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            }
        },
    }


def test_rollback_picks_the_revision_before_the_newest_among_owned_replicasets() -> None:
    history = owned_history(
        [_rs(1, "d1", "a:1"), _rs(3, "d1", "a:3"), _rs(2, "d1", "a:2"), _rs(9, "other", "x")], "d1"
    )
    assert sorted(history) == [1, 2, 3]
    assert pick_revision(history, None, "deployment/shop/api") == 2
    assert pick_revision(history, 1, "deployment/shop/api") == 1
    with pytest.raises(
        NotFoundError, match=r"revision 7 not in its rollout history \(revisions: 1, 2, 3\)"
    ):
        pick_revision(history, 7, "deployment/shop/api")
    with pytest.raises(ActionRejected, match="no rollout history"):
        pick_revision({1: {}}, None, "deployment/shop/api")


def test_rollback_patch_copies_template_and_annotations_as_kubectl_does() -> None:
    deployment = {
        "metadata": {
            "resourceVersion": "41",
            "annotations": {"deployment.kubernetes.io/revision": "3", "team": "payments"},
        },
        "spec": {"template": _rs(3, "d1", "a:3")["spec"]["template"]},
    }
    old = _rs(2, "d1", "a:2", **{"change-cause": "v2"})
    ops = undo_patch(deployment, old)
    assert ops is not None
    by_path = {op["path"]: op["value"] for op in ops}
    assert by_path["/metadata/resourceVersion"] == "41"  # stale → 409, never a blind write
    assert by_path["/spec/template"]["spec"]["containers"][0]["image"] == "a:2"
    assert "pod-template-hash" not in by_path["/spec/template"]["metadata"]["labels"]
    # the Deployment keeps its own revision annotation; the ReplicaSet's others come along
    assert by_path["/metadata/annotations"] == {
        "deployment.kubernetes.io/revision": "3",
        "change-cause": "v2",
    }
    same = {**deployment, "spec": {"template": old["spec"]["template"]}}
    assert undo_patch(same, old) is None  # kubectl's "skipped rollback"


def test_restart_patch_is_kubectls_annotation() -> None:
    patch = restart_patch("7", datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC))
    assert patch["metadata"] == {"resourceVersion": "7"}
    annotations = patch["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-11-23T12:00:05Z"}


# ---------------------------------------------------------------------- settings, imports
def test_settings_explain_bad_values() -> None:
    with pytest.raises(ValueError, match="in_cluster is on"):
        KubernetesSettings(in_cluster=True, context="prod")
    with pytest.raises(ValueError, match="conflict_retries"):
        KubernetesSettings(conflict_retries=-1)
    with pytest.raises(ValueError, match="extra"):
        KubernetesSettings(kubeconfig_path="x")  # type: ignore[call-arg]
    assert all(f.description for f in KubernetesSettings.model_fields.values())


def test_importing_the_adapter_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys, vigil.actions.kubernetes as k; "
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported at module level'; "
        "print(sorted(k.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "KubernetesCluster" in out.stdout


def test_public_surface() -> None:
    import vigil.actions.kubernetes as adapter

    for name in adapter.__all__:
        assert getattr(adapter, name).__doc__, name


def test_kube_tests_skip_with_a_reason_without_the_shared_tools(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.kubefixture import skip_reason

    assert "set VIGIL_SHARED_DIR" in str(skip_reason(None))
    assert "kube-up.sh is missing" in str(skip_reason(tmp_path))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kube-up.sh").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "needs 'etcd' on PATH (apt-get install -y etcd-server" in str(skip_reason(tmp_path))
