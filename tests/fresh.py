"""A newcomer's machine, as far as tests can make one: a fresh copy of the repository and a
fresh virtual environment, with nothing of the test environment on its path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

#: What a fresh clone does not have: caches, builds, virtual environments, instance folders.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis",
    "_build", "build", "dist", "instance",
)  # fmt: skip


def copy_of_the_repository(dest: Path) -> Path:
    """The repository's files as a clone has them, in ``dest``."""
    shutil.copytree(ROOT, dest, ignore=NOT_IN_A_CLONE)
    return dest


def clean_env() -> dict[str, str]:
    """This process's environment without what points into the test environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(  # python3 is the interpreter running the tests
        [bindir, *(p for p in env.get("PATH", "").split(os.pathsep) if p != bindir)]
    )
    return env


def install(checkout: Path, target: str, *, timeout: float) -> Path:
    """A virtual environment in ``checkout/.venv`` with ``target`` pip-installed; its python."""
    python = checkout / ".venv" / "bin" / "python"
    for argv in (
        [sys.executable, "-m", "venv", str(checkout / ".venv")],
        [str(python), "-m", "pip", "install", "-q", target],
    ):
        done = subprocess.run(
            argv, cwd=checkout, env=clean_env(), capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return python
