"""sente.js in Chromium against the recorded real Sente server, scenario by scenario.

The transcripts of Sente's ClojureScript client (edn) are translated to json, the packer
sente.js speaks (the same structure, json payloads), and a
:class:`~tests.client.replay.server.ReplayServer` answers with them. sente.js must send what
the real client sent: the same URLs, frames and form bodies, the CSRF and ``X-Requested-With``
headers, the pong, its keepalive ping, the reconnect after a server close (F9, F11) and the
close or abort of a disconnect. The browser's own headers (``Origin``, ``User-Agent``,
``Sec-Fetch-*``...) are the platform's and left out of the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_sente.packers import get_packer
from tests import transcripts
from tests.client.replay.scenarios import WAIT, assert_wire, play
from tests.client.replay.script import Script, translate
from tests.client.replay.server import ReplayServer
from tests.support import ROOT

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

SENTE_JS = (ROOT / "flask_sente" / "static" / "sente.js").read_text(encoding="utf-8")
#: What Chromium adds to every request on its own: not Sente's, not compared.
BROWSER_PLATFORM = {
    "user-agent",
    "origin",
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "pragma",
    "referer",
    "sec-websocket-extensions",
    "sec-fetch-*",
    "sec-ch-ua*",
}
RECORD = """(opts) => {
  window.rec = { events: [], states: [], backoffs: [] };
  const backoffMsFn = (n) => { rec.backoffs.push(n); return 60000; };
  window.c = Sente.connect("/chsk", { ...opts, backoffMsFn });
  const plain = (x) => JSON.parse(JSON.stringify(x, (k, v) => (v instanceof Event ? k : v)));
  c.onAny((m) => rec.events.push(plain(m.event)));
  c.onState((s) => rec.states.push(plain(s)));
}"""


class BrowserDriver:
    """The scenarios' :class:`~tests.client.replay.scenarios.Driver` for sente.js."""

    def __init__(self, page: Any, options: dict[str, Any]) -> None:
        self.page = page
        self.options = options

    def connect(self) -> None:
        self.page.evaluate(RECORD, self.options)

    def events(self, event_id: str, n: int) -> list[Any]:
        self.page.wait_for_function(
            "([id, n]) => rec.events.filter((e) => e[0] === id).length >= n",
            arg=[event_id, n],
            timeout=WAIT * 1000,
        )
        return self.page.evaluate(  # type: ignore[no-any-return]
            "([id, n]) => rec.events.filter((e) => e[0] === id).slice(0, n)"
            ".map((e) => (e.length > 1 ? e[1] : null))",
            [event_id, n],
        )

    def states(self) -> list[dict[str, Any]]:
        return self.page.evaluate("rec.states")  # type: ignore[no-any-return]

    def request(self, event: Any, timeout_ms: int) -> Any:
        return self.page.evaluate(
            "([ev, ms]) => new Promise((resolve) => c.send(ev, ms, resolve))", [event, timeout_ms]
        )

    def send(self, event: Any) -> bool:
        return self.page.evaluate("(ev) => c.send(ev)", event)  # type: ignore[no-any-return]

    def disconnect(self) -> None:
        self.page.evaluate("c.disconnect()")


#: The page and script the browser loads from the replaying server (not Sente's traffic).
PAGES = {
    "/": ("text/html", b"<!doctype html><script src='/sente.js'></script>"),
    "/sente.js": ("text/javascript", SENTE_JS.encode()),
    "/favicon.ico": ("image/x-icon", b""),
}


@pytest.fixture
def sente_page(new_page: Callable[[], Any]) -> Iterator[Callable[[ReplayServer], Any]]:
    """``sente_page(server)``: the server's page, with sente.js loaded."""

    def open_(server: ReplayServer) -> Any:
        page = new_page()
        page.goto(server.base + "/")
        page.wait_for_function("typeof Sente === 'object'")
        return page

    yield open_


@pytest.mark.parametrize(("name", "transport"), [("cljs-ws", "ws"), ("cljs-ajax", "ajax")])
def test_sente_js_sends_what_sentes_client_sent(
    sente_page: Callable[[ReplayServer], Any], name: str, transport: str
) -> None:
    json_packer = get_packer("json")
    recorded = translate(transcripts.load(name), get_packer("edn"), json_packer)
    script = Script(recorded, json_packer)
    # F11's bytes alone leave a browser's poll waiting (Chromium) while the connection stays
    # open: the server ends the connection after them, the other form F11 allows.
    replay = ReplayServer(
        script, platform_headers=BROWSER_PLATFORM, pages=PAGES, close_after_raw=True
    )
    with replay as server:
        page = sente_page(server)
        options = {
            "type": transport,
            "params": {"uid": "u-1", "foo": "bar baz"},
            "csrfToken": "test-csrf-token",
            "wsKaliveMs": 4000,
            "clientId": script.client_id,
            "recover": False,
        }
        play(script, server, BrowserDriver(page, options), transport)
        assert page.evaluate("rec.backoffs") == [], "every reconnect is immediate (F9, F11)"
    assert_wire(script, server, transport)
