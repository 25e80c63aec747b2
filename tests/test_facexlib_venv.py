"""Run tests/test_facexlib.py where the facexlib extra can be installed: its own venv.

The project pins the CPU build of torch 2.13.0, beside which no torchvision imports; the
torchvision that works on this machine comes with torch 2.14.1 (a 5.5 GB CUDA build, from
the machine's local wheels), so the extra gets a venv of its own, cached between runs and
rebuilt when vidgpen's dependencies change. The checkout under test is put on PYTHONPATH,
so the venv holds only third-party packages. If the venv cannot be built (no such wheels
on this machine), the test is skipped with pip's last words as the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # a first run builds a 6 GB venv

EXTRA = ["torch==2.14.1", "torchvision==0.29.1"]  # the pair that imports together here
FACEXLIB = ["facexlib"]  # --no-deps: its requirements would swap torch again
FACEXLIB_DEPS = ["filterpy", "numba", "tqdm", "pillow", "pytest"]


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [r for r in project["dependencies"] if not r.replace(" ", "").startswith("torch")]


def _venv() -> Path:
    requirements = _requirements()
    key = hashlib.sha256("\n".join(EXTRA + FACEXLIB + FACEXLIB_DEPS + requirements).encode()).hexdigest()[:12]
    root = Path(os.environ.get("VIDGPEN_EXTRA_VENVS", Path.home() / ".cache" / "vidgpen-test-venvs"))
    venv = root / f"facexlib-{key}"
    python = venv / "bin" / "python"
    if (venv / "ready").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *EXTRA],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *FACEXLIB],
        [str(python), "-m", "pip", "install", "-q", *EXTRA, *FACEXLIB_DEPS, *requirements],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1500)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"cannot build the facexlib venv ({' '.join(step[2:5])}): {last}")
    (venv / "ready").touch()
    return python


def test_facexlib_extra_in_its_own_venv():
    try:
        import facexlib  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("facexlib is installed here: tests/test_facexlib.py runs directly")
    python = _venv()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
                           "tests/test_facexlib.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary, summary
