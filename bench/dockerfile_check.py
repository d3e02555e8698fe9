"""Check the Dockerfile without a container engine: run its steps on this machine.

No Docker or Podman runs here (and hadolint is not installed), so this script does what
the image build would do, as far as a plain machine can:

1. reads the Dockerfile and checks its shape (python:3.11-slim bases, a numeric
   non-root USER, CMD ``vigil run``);
2. copies the build context the way ``COPY . /src`` would, honouring .dockerignore;
3. runs the build stage's RUN line with ``/opt/vigil`` and ``/src`` mapped to temporary
   directories (a venv made by this Python 3.11, then ``pip install`` of the copy —
   from PyPI, exactly as in the image);
4. runs the installed ``vigil --help``, ``vigil config validate`` on deploy/config.yaml's
   file, and ``vigil demo`` when the command exists, with the image's environment.

Usage: python bench/dockerfile_check.py [--keep]   (prints what it did and the figures)
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def ignored(patterns: list[str], rel: str) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        p = pattern.removeprefix("**/")
        if fnmatch.fnmatch(rel, pattern) or any(fnmatch.fnmatch(part, p) for part in parts):
            return True
    return False


def copy_context(dest: Path) -> int:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    count = 0
    for root, dirs, files in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO).as_posix()
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not ignored(patterns, rel_root + d)]
        for name in files:
            rel = rel_root + name
            if ignored(patterns, rel):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(root) / name, target)
            count += 1
    return count


def main() -> int:
    keep = "--keep" in sys.argv
    text = (REPO / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    cmd = re.findall(r"^CMD\s+(.+)$", text, flags=re.M)
    runs = re.findall(r"^RUN\s+((?:.*\\\n)*.*)$", text, flags=re.M)
    problems = []
    if not froms or any(not f.startswith("python:3.11-slim") for f in froms):
        problems.append(f"bases must be python:3.11-slim, got {froms}")
    if not user or user[-1].split(":")[0] in ("0", "root") or not user[-1].split(":")[0].isdigit():
        problems.append(f"final USER must be a numeric non-root uid, got {user}")
    if not cmd or cmd[-1].strip() != '["vigil", "run"]':
        problems.append(f'CMD must be ["vigil", "run"], got {cmd}')
    install = [r for r in runs if "pip install" in r]
    if len(install) != 1:
        problems.append(f"expected one RUN with pip install, got {len(install)}")
    print(f"bases: {froms}; user: {user[-1] if user else None}; cmd: {cmd[-1] if cmd else None}")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="vigil-image-"))
    try:
        src, opt = tmp / "src", tmp / "opt" / "vigil"
        files = copy_context(src)
        print(f"build context: {files} files (after .dockerignore)")
        step = install[0].replace("\\\n", " ").replace("/opt/vigil", str(opt))
        step = step.replace("/src", str(src)).replace("python -m venv", f"{sys.executable} -m venv")
        print(f"RUN {step}")
        began = time.monotonic()
        for command in step.split("&&"):
            subprocess.run(shlex.split(command), check=True, cwd=src,
                           env={**os.environ, "PIP_NO_CACHE_DIR": "1",
                                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})  # fmt: skip
        took = time.monotonic() - began
        size = sum(f.stat().st_size for f in opt.rglob("*") if f.is_file())
        print(f"install: {took:.0f} s, venv {size / 2**20:.0f} MiB")
        env = {"PATH": f"{opt / 'bin'}:/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": str(tmp / "mpl"),
               "VIGIL_STORE__PATH": str(tmp / "data" / "vigil.db"), "HOME": str(tmp)}  # fmt: skip
        [cm] = [d for d in yaml.safe_load_all((REPO / "deploy" / "config.yaml").read_text()) if d]
        (tmp / "vigil.yaml").write_text(cm["data"]["vigil.yaml"])
        checks = [["vigil", "--help"], ["vigil", "config", "validate", str(tmp / "vigil.yaml")]]
        help_text = subprocess.run(["vigil", "--help"], env=env, capture_output=True, text=True,
                                   cwd=tmp, check=False).stdout  # fmt: skip
        if re.search(r"\bdemo\b", help_text):
            checks.append(["vigil", "demo"])
        else:
            print("note: this build has no `vigil demo` command yet (it lands with the twin)")
        failed = 0
        for argv in checks:
            began = time.monotonic()
            out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tmp,
                                 timeout=600, check=False)  # fmt: skip
            print(
                f"$ {' '.join(argv)} -> exit {out.returncode} in {time.monotonic() - began:.1f} s"
            )
            if out.returncode != 0:
                failed += 1
                print(out.stdout[-2000:], out.stderr[-2000:])
        return 1 if failed else 0
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
