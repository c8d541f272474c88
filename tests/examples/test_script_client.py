"""``examples/script_client.py`` against the conformance app, as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import ROOT, ServerProcess, conformance_process


@pytest.fixture(scope="module")
def conformance() -> Iterator[ServerProcess]:
    server = conformance_process("--csrf-token", "tok")
    yield server
    server.stop()


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "examples/script_client.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("transport", ["ws", "ajax", "auto"])
def test_prints_the_reply(conformance: ServerProcess, transport: str) -> None:
    result = run_script(
        conformance.url + "/chsk",
        "--type",
        transport,
        "--csrf-token",
        "tok",
        "--data",
        '{"a": [1, 2]}',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"echo": {"a": [1, 2]}}


def test_a_request_without_reply_fails_with_the_reason(conformance: ServerProcess) -> None:
    result = run_script(
        conformance.url + "/chsk",
        "--csrf-token",
        "tok",
        "--event",
        "test/no-reply",
        "--timeout",
        "0.5",
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("ReplyTimeout: no reply to 'test/no-reply'")
