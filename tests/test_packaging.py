"""The wheel installs every package under ``vigil.*`` and nothing at the top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("core", "agent", "detectors", "actions", "playbooks", "nlq", "sim")


def source_packages() -> set[str]:
    """Every directory with Python files under a top-level package, as ``vigil.x.y``."""
    found = set()
    for top in PACKAGES:
        for init in (REPO / top).rglob("*.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(REPO)
            found.add("vigil." + ".".join(rel.parts))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("vigil_aiops-*.whl")
    return path


@pytest.mark.timeout(300)
def test_wheel_holds_every_package_under_vigil(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"vigil"}, f"only vigil/ may be installed at the top level, got {tops}"
    assert "vigil/__init__.py" not in names, "vigil must stay a namespace package"
    in_wheel = {"vigil." + ".".join(Path(n).parent.parts[1:]) for n in names if n.endswith(".py")}
    in_wheel = {p.rstrip(".") for p in in_wheel}
    missing = source_packages() - in_wheel
    assert not missing, f"packages missing from the wheel: {sorted(missing)}"
    for pkg in PACKAGES:
        assert f"vigil/{pkg}/py.typed" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vigil = vigil.agent.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.timeout(300)
def test_wheel_ships_data_files_with_licences(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = [n for n in names if n.endswith((".yaml", ".csv", ".csv.gz", ".json"))]
    dirs = {str(Path(n).parent) for n in data}
    for folder in dirs:
        notices = [n for n in names if n.startswith(folder + "/") and "LICENSE" in n.upper()]
        readme = [n for n in names if n.startswith(folder + "/") and n.endswith("README.md")]
        if any(n.endswith((".csv", ".csv.gz")) for n in data if n.startswith(folder + "/")):
            assert notices or readme, f"{folder} ships data without a licence notice"


def test_bare_package_names_are_not_importable_outside_the_repo(tmp_path: Path) -> None:
    code = "import importlib.util as u; print(u.find_spec('agent') is None, u.find_spec('vigil.agent') is not None)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True"]
