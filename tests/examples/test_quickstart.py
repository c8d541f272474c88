"""The quickstart (``examples/quickstart.py``), as docs/quickstart.md tells people to use it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support import ROOT, ServerProcess

WERKZEUG_READY = r"Running on (http://\S+)"


@pytest.fixture
def quickstart() -> Iterator[ServerProcess]:
    server = ServerProcess(
        [sys.executable, "examples/quickstart.py", "--port", "0"], ready=WERKZEUG_READY
    )
    yield server
    server.stop()


def test_python_client_as_in_the_quickstart(quickstart: ServerProcess) -> None:
    done = subprocess.run(
        [sys.executable, "examples/quickstart_client.py", quickstart.url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's flask_sente
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    greeting, ticks = done.stdout.splitlines()
    assert re.fullmatch(r"\{'greeting': 'hello python, you are user-[0-9a-f]{6}'\}", greeting)
    assert ticks == "[1, 2, 3]"


def test_the_command_line_client_as_in_the_quickstart(quickstart: ServerProcess) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "flask_sente.client", quickstart.url + "/chsk",
            "--csrf-from", quickstart.url + "/",
        ],
        input='["demo/hello", {"name": "shell"}]\n',
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(
        r" reply \{\"greeting\": \"hello shell, you are user-[0-9a-f]{6}\"\}", done.stdout
    )


def test_channel_socket_without_the_page_token_is_refused(quickstart: ServerProcess) -> None:
    response = requests.post(quickstart.url + "/chsk", data={"client-id": "x"}, timeout=5)
    assert response.status_code == 403


def test_page_and_server_talk_in_a_browser(
    quickstart: ServerProcess, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    page.goto(quickstart.url + "/")
    expect(page.locator("#greeting")).to_have_text(re.compile(r"hello browser, you are user-"))
    expect(page.locator("#pushed")).to_have_text(" 1 2 3")
