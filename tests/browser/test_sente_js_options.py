"""sente.js options and calls the other browser tests leave out: ``reconnect()``, where the
server is (``protocol``, ``host``, ``port``) and the ``csrf-token`` of the state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.support import Server
from tests.support import free_port

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

CONFORMANCE = "examples/conformance.py"
RECORD = """(opts) => {
  window.rec = { handshakes: [], urls: [] };
  window.c = Sente.connect("/chsk", {
    ...opts,
    wsConstructor: (url) => { rec.urls.push(url); return new WebSocket(url); },
  });
  c.on("chsk/handshake", (m) => rec.handshakes.push(m.data));
}"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Server, Server]]:
    """Two conformance apps: the page's origin, and another server to point sente.js at."""
    first, second = Server(CONFORMANCE), Server(CONFORMANCE)
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def page(new_page: Callable[[], Any], servers: tuple[Server, Server]) -> Any:
    """A page of the first server's origin with sente.js loaded."""
    page = new_page()
    page.goto(servers[0].url + "/no-such-page")
    page.add_script_tag(url="/_sente/static/sente.js")
    return page


def connect(page: Any, **opts: Any) -> None:
    page.evaluate(RECORD, opts)


def test_ws_reconnect_closes_and_handshakes_again_at_once(page: Any) -> None:
    connect(page, type="ws")
    page.wait_for_function("rec.handshakes.length === 1")
    page.evaluate("c.reconnect()")
    page.wait_for_function("rec.handshakes.length === 2 && c.state['open?']")
    assert page.evaluate("c.state['last-close'].reason") == "requested-reconnect"
    assert page.evaluate("rec.handshakes.map((h) => h[3])") == [True, False]
    urls = page.evaluate("rec.urls")
    assert len(urls) == 2 and urls[0] == urls[1]  # same client-id, params and token
    assert f"client-id={page.evaluate('c.clientId')}&" in urls[0]
    assert page.evaluate("c.request(['test/echo', 'again'])") == {"echo": "again"}


def test_ajax_reconnect_aborts_the_poll_and_handshakes_again(page: Any) -> None:
    connect(page, type="ajax")
    page.wait_for_function("rec.handshakes.length === 1")
    with page.expect_request(lambda r: "handshake%3F=1" in r.url) as handshake:
        page.evaluate("c.reconnect()")
    page.wait_for_function("rec.handshakes.length === 2 && c.state['open?']")
    assert page.evaluate("c.state['last-close'].reason") == "requested-reconnect"
    assert f"client-id={page.evaluate('c.clientId')}&" in handshake.value.url
    assert page.evaluate("c.request(['test/echo', 'again'])") == {"echo": "again"}


def test_host_and_port_point_at_another_server(page: Any, servers: tuple[Server, Server]) -> None:
    other = int(servers[1].port)
    connect(page, type="ws", host="localhost", port=other)
    page.wait_for_function("c.state['open?']")
    assert page.evaluate("rec.urls[0]").startswith(f"ws://localhost:{other}/chsk?")
    assert page.evaluate("c.request(['test/echo', 1])") == {"echo": 1}


def test_port_alone_keeps_the_pages_host(page: Any, servers: tuple[Server, Server]) -> None:
    other = servers[1].port
    connect(page, type="ws", port=other)
    page.wait_for_function("c.state['open?']")
    assert page.evaluate("rec.urls[0]").startswith(f"ws://127.0.0.1:{other}/chsk?")


def test_protocol_picks_the_schemes(page: Any, servers: tuple[Server, Server]) -> None:
    """``https`` gives ``wss://`` and ``https://`` URLs (nothing listens there: only the URLs
    are checked); ``http:``, the page's host and port give the page's own server."""
    port = free_port()
    connect(page, type="ws", protocol="https", port=port)
    page.wait_for_function("rec.urls.length >= 1")
    assert page.evaluate("rec.urls[0]").startswith(f"wss://127.0.0.1:{port}/chsk?")
    page.evaluate("c.disconnect()")

    with page.expect_request(lambda r: "/chsk?" in r.url) as poll:
        connect(page, type="ajax", protocol="https:", port=port)
    assert poll.value.url.startswith(f"https://127.0.0.1:{port}/chsk?")
    page.evaluate("c.disconnect()")

    own = servers[0].port
    connect(page, type="ajax", protocol="http:", host="127.0.0.1", port=own)
    page.wait_for_function("c.state['open?']")
    assert page.evaluate("c.request(['test/echo', 2])") == {"echo": 2}


def test_the_state_holds_the_csrf_token(page: Any) -> None:
    """As given (a string, null or a function); by default the <meta> tag's token."""
    nowhere = free_port()
    for option, expected in [("tok", "tok"), (None, None)]:
        connect(page, type="ws", csrfToken=option, port=nowhere)
        assert page.evaluate("c.state['csrf-token']") == expected
        page.evaluate("c.disconnect()")
    page.evaluate(
        """() => {
          const m = document.createElement("meta");
          m.name = "csrf-token";
          m.content = "from-meta";
          document.head.append(m);
        }"""
    )
    connect(page, type="ws", port=nowhere)
    assert page.evaluate("c.state['csrf-token']") == "from-meta"
    page.evaluate("c.disconnect()")
    same = page.evaluate(
        """(port) => {
          const token = () => "from-fn";
          window.c = Sente.connect("/chsk", { type: "ws", csrfToken: token, port: port });
          return c.state["csrf-token"] === token;
        }""",
        nowhere,
    )
    assert same is True
    page.evaluate("c.disconnect()")
