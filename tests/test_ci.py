"""CI tells the truth: no reruns, a missing test dependency fails the run under CI, and
``pip install -e '.[dev]'`` brings every test dependency."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, missing, under_ci

#: Run by the tests as ``python -m ...`` rather than imported.
RUN_AS_PROGRAMS = {"sphinx", "gunicorn", "gevent"}
FIRST_PARTY = {"flask_sente", "tests", "examples"}


@pytest.mark.parametrize(
    ("value", "ci"),
    [("true", True), ("1", True), ("yes", True), ("", False), ("false", False), ("0", False)],
)
def test_what_counts_as_ci(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert under_ci() is ci


def test_a_missing_dependency_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="the program x is missing"):
        missing("the program x", "apt-get install x")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI every test must run"):
        missing("the program x", "apt-get install x")


SAMPLE = """
import pytest
from tests.support import missing

def test_needs_something():
    missing("the program nothing-such", "apt-get install nothing-such")

def test_skips_for_its_own_reason():
    pytest.skip("some other reason")

def test_runs():
    assert True
"""


@pytest.mark.parametrize("ci", [False, True])
def test_under_ci_any_skip_fails_the_run(tmp_path: Path, ci: bool) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401\n"
    )
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if ci:
        env["CI"] = "true"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    if ci:
        assert result.returncode == pytest.ExitCode.TESTS_FAILED, out
        assert "1 failed, 1 passed, 1 skipped" in out, out
        assert "under CI every test must run" in out, out
    else:
        assert result.returncode == pytest.ExitCode.OK, out
        assert "1 passed, 2 skipped" in out, out


def _requirement_names(lines: str) -> set[str]:
    names = set()
    for line in lines.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_normal(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]))
    return names


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


def test_the_dev_extra_brings_every_test_dependency() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = _requirement_names(setup["options"]["install_requires"])
    declared |= _requirement_names(setup["options.extras_require"]["dev"])
    distributions = importlib.metadata.packages_distributions()
    needed = {_normal(d) for m in _third_party_imports(ROOT / "tests") for d in distributions[m]}
    needed |= RUN_AS_PROGRAMS
    assert needed - declared == set(), "add them to setup.cfg's dev extra"


def test_no_reruns_anywhere() -> None:
    assert "pytest-rerunfailures" not in _requirement_names(
        (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    )
    ci_run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "--reruns" not in ci_run and "rerunfailures" not in ci_run
