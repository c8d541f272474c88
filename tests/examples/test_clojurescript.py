"""``examples/clojurescript/app.py`` spoken to as Sente 1.22's ClojureScript client speaks.

The requests have the form of the captured traffic of a real Sente 1.22 CLJS client: the
WebSocket query (``client-id``, ``csrf-token``), the Ajax handshake and poll (``udt``,
``client-id``, ``handshake%3F=1``, ``X-CSRF-Token``), and the POST form (``udt``,
``client-id``, ``ppstr`` with the ``:ajax`` callback marker), all in edn.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
import websocket

from tests.support import ServerProcess

WERKZEUG_READY = r"Running on (http://\S+)"
UID = r'"(user-[0-9a-f]{6})"'


@pytest.fixture
def app_url() -> Iterator[str]:
    server = ServerProcess(
        [sys.executable, "examples/clojurescript/app.py", "--port", "0"], ready=WERKZEUG_READY
    )
    yield server.url
    server.stop()


def page_session(url: str) -> tuple[requests.Session, str]:
    """What the page gives the client: the session cookie and the CSRF token in the page."""
    web = requests.Session()
    page = web.get(url + "/", timeout=5).text
    match = re.search(r'id="sente-csrf-token" data-csrf-token="([^"]+)"', page)
    assert match is not None
    return web, match.group(1)


def test_websocket_as_the_cljs_client(app_url: str) -> None:
    web, token = page_session(app_url)
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    ws = websocket.create_connection(
        "ws" + app_url[4:] + f"/chsk?client-id=cljs-ws-client&csrf-token={quote(token, safe='')}",
        header=[f"Cookie: {cookie}"],
        timeout=5,
    )
    try:
        handshake = re.fullmatch(r"\[\[:chsk/handshake \[" + UID + r" nil nil\]\] nil\]", ws.recv())
        assert handshake is not None
        uid = handshake.group(1)
        ws.send('[[:example/echo {:text "hi", :n 1}] "a5bbd4"]')
        assert ws.recv() == '[{:echo {:text "hi", :n 1}} "a5bbd4"]'
        assert ws.recv() == f'[[[:example/pushed {{:to "{uid}"}}]] nil]'
    finally:
        ws.close()


def test_ajax_as_the_cljs_client(app_url: str) -> None:
    web, token = page_session(app_url)
    headers = {"X-CSRF-Token": token, "X-Requested-With": "XMLHTTPRequest"}
    chsk = app_url + "/chsk"

    def udt() -> str:
        return str(int(time.time() * 1000))

    hs = web.get(
        chsk + f"?udt={udt()}&client-id=cljs-ajax-client&handshake%3F=1",
        headers=headers,
        timeout=5,
    )
    handshake = re.fullmatch(r"\[\[:chsk/handshake \[" + UID + r" nil nil\]\] nil\]", hs.text)
    assert handshake is not None
    uid = handshake.group(1)

    reply = web.post(
        chsk,
        data={
            "udt": udt(),
            "client-id": "cljs-ajax-client",
            "ppstr": '[[:example/echo {:text "hi"}] :ajax]',
        },
        headers=headers,
        timeout=5,
    )
    assert reply.text == '[{:echo {:text "hi"}} nil]'

    poll = web.get(chsk + f"?udt={udt()}&client-id=cljs-ajax-client", headers=headers, timeout=30)
    assert poll.text == f'[[[:example/pushed {{:to "{uid}"}}]] nil]'


def test_a_request_without_the_page_token_is_refused(app_url: str) -> None:
    web, _ = page_session(app_url)
    hs = web.get(app_url + "/chsk?client-id=x&handshake%3F=1", timeout=5)
    assert (hs.status_code, hs.text) == (403, "Bad CSRF token")
