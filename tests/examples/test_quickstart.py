"""The quickstart (``examples/quickstart.py``), as docs/quickstart.md tells people to use it."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from flask_sente.client import Client
from tests.support import ServerProcess

WERKZEUG_READY = r"Running on (http://\S+)"


@pytest.fixture
def quickstart() -> Iterator[ServerProcess]:
    server = ServerProcess(
        [sys.executable, "examples/quickstart.py", "--port", "0"], ready=WERKZEUG_READY
    )
    yield server
    server.stop()


def test_python_client_as_in_the_quickstart(quickstart: ServerProcess) -> None:
    web = requests.Session()
    page = web.get(quickstart.url + "/", timeout=5).text
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match is not None
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    with Client(
        quickstart.url + "/chsk", csrf_token=match.group(1), headers={"Cookie": cookie}
    ) as chsk:
        reply = chsk.request(["demo/hello", {"name": "python"}], timeout=5)
        assert re.fullmatch(r"hello python, you are user-[0-9a-f]{6}", reply["greeting"])
        ticks = []
        while len(ticks) < 3:
            msg = chsk.next_event(timeout=5)
            assert msg is not None, f"pushes missing after {ticks}"
            if msg.id == "demo/tick":
                ticks.append(msg.data)
        assert ticks == [1, 2, 3]


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
