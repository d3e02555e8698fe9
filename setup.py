"""Build hook: install every top-level directory of the repository as ``vigil.<dir>``.

The package list is computed at build time (see ../shared/notes/packaging.md): a
hand-written list silently drops new subpackages from the wheel, which
``tests/test_packaging.py`` guards against.
"""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("core", "agent", "detectors", "actions", "playbooks", "nlq", "sim")

packages = [
    f"vigil.{name}"
    for name in find_namespace_packages(
        include=[*TOP_LEVEL, *(f"{top}.*" for top in TOP_LEVEL)],
        exclude=["*.__pycache__", "*.__pycache__.*"],
    )
]

setup(packages=packages, package_dir={"vigil": "."})
