"""``python -m flask_sente.client``: connect, print events, send JSON lines from stdin."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.client.helpers import ROOT, Conformance
from tests.client.sente_server import CSRF, ScriptedSente

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (recv|reply|error) (.*)$")


def run_cli(*args: str, stdin: str) -> list[tuple[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "flask_sente.client", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    out = []
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected output line {line!r}; stderr: {done.stderr}"
        out.append((match.group(1), json.loads(match.group(2))))
    return out


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_cli_against_scripted_sente(sente: ScriptedSente, transport: str) -> None:
    lines = run_cli(
        sente.url,
        "--type", transport,
        "--packer", "edn",
        "--csrf-token", CSRF,
        "--client-id", "cli-1",
        stdin='["test/echo", {"a": 1}]\nnot json\n["test/reply-str"]\n',
    )  # fmt: skip
    assert ("recv", ["chsk/handshake", ["cli-1", None, {"hello": "world", "n": 1}, True]]) in lines
    replies = [value for kind, value in lines if kind == "reply"]
    assert replies == [{"echo": {"a": 1}}, "a-string-reply"]
    assert [kind for kind, _ in lines].count("error") == 1


def test_cli_against_the_conformance_app() -> None:
    proc = Conformance("--lp-timeout-ms", "500").start()
    try:
        lines = run_cli(
            proc.url, "--type", "ajax", "--timeout", "3",
            stdin='["test/echo", [1, 2]]\n["test/no-reply"]\n',
        )  # fmt: skip
    finally:
        proc.stop()
    assert ("reply", {"echo": [1, 2]}) in lines
    errors = [value for kind, value in lines if kind == "error"]
    assert len(errors) == 1 and str(errors[0]).startswith("ReplyTimeout")
