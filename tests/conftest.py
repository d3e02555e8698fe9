"""Shared fixtures: where ``../shared`` is, and skips with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
