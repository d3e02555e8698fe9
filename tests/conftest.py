"""Shared fixtures: where ``../shared`` is, and skips with a reason when it is absent."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
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


# ---------------------------------------------------------------- real Prometheus
# Tests import the helper module ``promfixture`` by name; with --import-mode=importlib
# the tests folder is not on sys.path by itself.
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))

import promfixture  # noqa: E402


@pytest.fixture(scope="session")
def prometheus_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., str]]:
    """``start(name, series, lookback="5m") -> url``: a real Prometheus over ``series``.

    One server per ``name`` for the whole session (started on first use, stopped at the
    end), so test modules share their data set cheaply. Skips when the Debian binaries
    are absent."""
    reason = promfixture.missing_binaries()
    if reason is not None:
        pytest.skip(reason)
    servers: dict[str, str] = {}
    stack = contextlib.ExitStack()

    def start(name: str, series: list[promfixture.SeriesData], *, lookback: str = "5m") -> str:
        if name not in servers:
            workdir = tmp_path_factory.mktemp(f"prom-{name}")
            servers[name] = stack.enter_context(
                promfixture.running_prometheus(workdir, series, lookback=lookback)
            )
        return servers[name]

    with stack:
        yield start


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
