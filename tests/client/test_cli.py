"""``python -m flask_sente.client``: connect, print events, send JSON lines from stdin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.client.helpers import ROOT, Conformance
from tests.client.sente_server import CSRF, ScriptedSente
from tests.support import free_port

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (state|recv|reply|error) (.*)$")


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "flask_sente.client", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def parse_lines(stdout: str, stderr: str = "") -> list[tuple[str, object]]:
    out = []
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"unexpected output line {line!r}; stderr: {stderr}"
        out.append((match.group(1), json.loads(match.group(2))))
    return out


def run_cli(*args: str, stdin: str) -> list[tuple[str, object]]:
    """Run the CLI, which must succeed; its output lines as ``(kind, value)``."""
    done = cli(*args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return parse_lines(done.stdout, done.stderr)


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


@pytest.mark.parametrize("packer", ["transit", "msgpack"])
def test_cli_speaks_every_packer_of_sente(packer: str) -> None:
    proc = Conformance("--packer", packer).start()
    try:
        lines = run_cli(
            proc.url, "--type", "ws", "--packer", packer, "--timeout", "5",
            stdin='["test/echo", {"a": [1, "b"]}]\n',
        )  # fmt: skip
    finally:
        proc.stop()
    assert ("reply", {"echo": {"a": [1, "b"]}}) in lines


def test_one_short_line_per_state_change(sente: ScriptedSente) -> None:
    args = ["--type", "ws", "--packer", "edn", "--csrf-token", CSRF, "--client-id", "cli-2"]
    lines = run_cli(sente.url, *args, stdin='["test/echo", 1]\n')
    assert [value for kind, value in lines if kind == "state"] == [
        {"open?": True, "type": "ws", "uid": "cli-2"},
        {"open?": False, "type": "ws", "last-close": "requested-disconnect"},
    ]
    assert all(len(json.dumps(value)) < 120 for _, value in lines)


@pytest.mark.parametrize("transport", ["auto", "ajax"])
def test_a_server_that_is_down_exits_1_with_one_line(transport: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/chsk"  # nothing listens there
    done = cli(url, "--type", transport, "--timeout", "1", stdin='["test/echo", 1]\n')
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"python -m flask_sente.client: could not connect to {url} within 1.0 s: "
        "Connection refused (is the server running?)"
    ]
    states = [value for kind, value in parse_lines(done.stdout) if kind == "state"]
    assert states and not any(state["open?"] for state in states)  # type: ignore[index]


@pytest.mark.parametrize("transport", ["auto", "ws", "ajax"])
def test_a_refused_connection_exits_1_and_says_so(transport: str) -> None:
    proc = Conformance("--csrf-token", "the-right-one").start()
    try:
        done = cli(proc.url, "--type", transport, "--csrf-token", "wrong", "--timeout", "1")
    finally:
        proc.stop()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"python -m flask_sente.client: could not connect to {proc.url} within 1.0 s: "
        "refused: HTTP 403 Bad CSRF token (does it want --csrf-from PAGE_URL, or --cookie?)"
    ]


def test_lines_left_unsent_when_the_server_goes_exit_1() -> None:
    proc = Conformance().start()
    cmd = [sys.executable, "-m", "flask_sente.client", proc.url, "--type", "ws", "--timeout", "1"]
    run = subprocess.Popen(
        cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert run.stdin is not None and run.stdout is not None
    try:
        run.stdin.write('["test/echo", 1]\n')
        run.stdin.flush()
        replies = lines_until(run.stdout, "reply")
        assert replies[-1] == ("reply", {"echo": 1})
        proc.stop()
        out, err = run.communicate('["test/echo", 2]\n', timeout=30)
    finally:
        proc.stop()
        if run.poll() is None:
            run.kill()
            run.wait(10)
    assert run.returncode == 1
    assert ("error", 'not sent, not open after 1.0 s: ["test/echo", 2]') in parse_lines(out)
    assert err.splitlines() == [
        f"python -m flask_sente.client: 1 event(s) not sent: the channel socket to {proc.url} "
        "closed"
    ]


def lines_until(out: Any, kind: str, limit: int = 20) -> list[tuple[str, object]]:
    """Output lines up to the first of ``kind`` (a bounded number of lines)."""
    seen: list[tuple[str, object]] = []
    for _ in range(limit):
        seen += parse_lines(out.readline())
        if seen and seen[-1][0] == kind:
            return seen
    raise AssertionError(f"no {kind} line in {seen}")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--param", "foo"], "argument --param: expected KEY=VALUE, got 'foo'"),
        (["--param", "=x"], "argument --param: expected KEY=VALUE, got '=x'"),
        (["--cookie", "session"], "argument --cookie: expected NAME=VALUE, got 'session'"),
        (
            ["--csrf-token", "t", "--csrf-from", "http://127.0.0.1:1/"],
            "argument --csrf-from: not allowed with argument --csrf-token",
        ),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: list[str], complaint: str) -> None:
    done = cli("http://127.0.0.1:1/chsk", *args)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"python -m flask_sente.client: error: {complaint}"
    assert "Traceback" not in done.stderr


def test_a_url_that_cannot_work_is_a_usage_error() -> None:
    done = cli("ftp://127.0.0.1/chsk")
    assert done.returncode == 2
    assert "cannot use 'ftp://127.0.0.1/chsk' as a channel socket URL" in done.stderr
    assert "Traceback" not in done.stderr
