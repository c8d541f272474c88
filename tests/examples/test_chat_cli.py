"""The command-line client against the chat demo, whose CSRF token lives in the session."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.client.test_cli import cli, parse_lines
from tests.support import ROOT, ServerProcess


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[str]:
    server = ServerProcess(
        [sys.executable, "examples/chat/app.py", "--port", "0", "--instance", str(tmp_path)],
        ready=r"listening on (http://\S+)",
    )
    yield server.url
    server.stop()


def test_a_visitor_with_the_pages_token_and_cookie(chat: str) -> None:
    done = cli(
        chat + "/chsk",
        "--csrf-from", chat + "/",
        stdin='["chat/who"]\n["chat/send", {"text": "hi"}]\n',
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = parse_lines(done.stdout, done.stderr)
    assert lines[0] == ("state", {"open?": True, "type": "ws", "uid": "sente/nil-uid"})
    replies = [value for kind, value in lines if kind == "reply"]
    assert replies == [
        {"users": [], "ws": [], "ajax": []},
        {"ok": False, "error": "log in first"},  # the demo's answer to a visitor
    ]


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_a_logged_in_user_by_cookie_talks_to_the_room(chat: str, transport: str) -> None:
    web = requests.Session()
    page = web.get(chat + "/", timeout=10).text
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    token = match.group(1)
    login = web.post(chat + "/login", data={"user": "robot", "csrf_token": token}, timeout=10)
    assert login.ok

    run = subprocess.Popen(
        [
            sys.executable, "-m", "flask_sente.client", chat + "/chsk",
            "--type", transport,
            f"--csrf-token={token}",  # a token may start with "-"
            "--cookie", f"session={web.cookies['session']}",
        ],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert run.stdin is not None and run.stdout is not None
    try:
        run.stdin.write('["chat/send", {"text": "beep from a script"}]\n')
        run.stdin.flush()
        lines: list[tuple[str, Any]] = []
        for _ in range(20):  # the state, the reply and the room's push, in some order
            lines += parse_lines(run.stdout.readline())
            if any(kind == "recv" and value[0] == "chat/msg" for kind, value in lines):
                break
        out, err = run.communicate('["chat/history"]\n', timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
    assert run.returncode == 0, err
    lines += parse_lines(out, err)
    assert ("state", {"open?": True, "type": transport, "uid": "robot"}) in lines
    replies = [value for kind, value in lines if kind == "reply"]
    assert replies[0] == {"ok": True, "id": 1}
    assert [(m["from"], m["text"]) for m in replies[1]] == [("robot", "beep from a script")]
    pushed = [value[1] for kind, value in lines if kind == "recv" and value[0] == "chat/msg"]
    assert [(m["from"], m["text"]) for m in pushed] == [("robot", "beep from a script")]


def test_without_the_session_cookie_it_is_refused(chat: str) -> None:
    with urllib.request.urlopen(chat + "/", timeout=10) as page:
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode())
    assert token
    # the = form: a token may start with "-", which argparse would take for an option
    done = cli(chat + "/chsk", f"--csrf-token={token.group(1)}", "--timeout", "2")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"python -m flask_sente.client: could not connect to {chat}/chsk within 2.0 s: "
        "refused: HTTP 403 Bad CSRF token (does it want --csrf-from PAGE_URL, or --cookie?)"
    ]
