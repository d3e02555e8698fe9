"""Shared fixtures: where ``../shared`` is, and skips with a reason when it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.kubefixture import KubeServer, WorldPool

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """``$VIGIL_SHARED_DIR``, else the ``shared`` folder beside the repository."""
    env = os.environ.get("VIGIL_SHARED_DIR")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip(
            "needs ../shared (benchmark data, kube-apiserver): set VIGIL_SHARED_DIR or "
            "clone beside the shared folder"
        )
    return path


# ---------------------------------------------------------------- real kube-apiserver
@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """One real control plane (etcd, kube-apiserver, controller-manager) per session."""
    from tests.kubefixture import skip_reason, start, stop

    shared = shared_dir()
    reason = skip_reason(shared)
    if reason is not None or shared is None:
        pytest.skip(reason or "no shared dir")
    workdir = tmp_path_factory.mktemp("kube")
    server = start(shared, workdir)
    try:
        yield server
    finally:
        stop(server.dir, shared)


@pytest.fixture(scope="session")
def worlds(kube: KubeServer) -> Iterator[WorldPool]:
    """Fresh ``World``s (tests/cluster_behaviours.py) on the real API server, built ahead."""
    from tests.kubefixture import WorldPool

    pool = WorldPool(kube)
    try:
        yield pool
    finally:
        pool.close()
