"""sente.js tells the page when the server refuses it (flask_sente's ``refused`` state).

A refused WebSocket upgrade looks, to a page, like any failed connection: browsers hide the
status. sente.js then asks over Ajax and puts the answer (status and reason) in its state
and on a ``chsk/refused`` event; an Ajax poll sees the status itself. Retries go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.support import Server
from tests.support import free_port

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

CONFORMANCE = "examples/conformance.py"
TOKEN = "right-token"

# Connects with a csrfToken read from window.token, recording chsk/refused events.
CONNECT = """(opts) => {
  window.token = opts.token;
  window.refusals = [];
  const c = Sente.connect("/chsk", Object.assign({ csrfToken: () => window.token }, opts));
  c.on("chsk/refused", (msg) => window.refusals.push(msg.data));
  window.c = c;
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    started = Server(CONFORMANCE, "--csrf-token", TOKEN)
    yield started
    started.stop()


@pytest.fixture
def page(server: Server, new_page: Callable[[], Any]) -> Any:
    page = new_page()
    page.goto(server.url + "/no-such-page")  # any page of the server's origin
    page.add_script_tag(url="/_sente/static/sente.js")
    return page


def connect(page: Any, **opts: Any) -> None:
    page.evaluate(CONNECT, opts)


@pytest.mark.parametrize(("kind", "seen_on"), [("ws", "ws"), ("ajax", "ajax"), ("auto", "ajax")])
def test_a_refused_connection_is_in_the_state_and_on_an_event(
    page: Any, kind: str, seen_on: str
) -> None:
    connect(page, type=kind, token="stale-token")
    page.wait_for_function("window.refusals.length >= 2")  # and it keeps trying
    refused = page.evaluate("c.state.refused")
    assert refused["type"] == seen_on
    assert refused["status"] == 403
    assert refused["reason"] == "Bad CSRF token"
    assert page.evaluate("c.state['open?']") is False
    first = page.evaluate("window.refusals[0]")
    assert {k: first[k] for k in ("type", "status", "reason")} == {
        "type": seen_on,
        "status": 403,
        "reason": "Bad CSRF token",
    }


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_a_handshake_clears_the_refusal(page: Any, kind: str) -> None:
    connect(page, type=kind, token=TOKEN)
    page.wait_for_function("c.state['open?']")
    page.evaluate("() => { window.token = 'stale-token'; c.reconnect(); }")
    page.wait_for_function("c.state.refused !== undefined")
    assert page.evaluate("c.state.refused.type") == kind
    page.evaluate("() => { window.token = 'right-token'; c.reconnect(); }")
    page.wait_for_function("c.state['open?']")
    assert page.evaluate("'refused' in c.state") is False


def test_a_server_that_is_down_is_no_refusal(page: Any) -> None:
    probe_failed = page.expect_event("requestfailed", predicate=lambda r: r.method == "POST")
    with probe_failed:  # the probe fails too: connection refused, not a 403
        connect(page, type="ws", token=TOKEN, port=free_port())  # nothing listens there
    assert page.evaluate("c.state['last-ws-close'].code") == 1006
    assert page.evaluate("'refused' in c.state") is False
    assert page.evaluate("window.refusals") == []


# A constructor failing every WebSocket at once, as a proxy that refuses upgrades would.
FAILING_WS = """(token) => {
  window.refusals = [];
  const failing = () => {
    const s = { send() {}, close() {} };
    setTimeout(() => s.onclose({ code: 1006, reason: "", wasClean: false }));
    return s;
  };
  window.c = Sente.connect("/chsk", { type: "ws", csrfToken: token, wsConstructor: failing });
  c.on("chsk/refused", (msg) => window.refusals.push(msg.data));
}"""


def test_the_probe_of_an_accepted_client_is_answered_400_and_records_nothing(page: Any) -> None:
    """The probe passes the checks and carries no event, so no handler runs."""
    with page.expect_response(lambda r: r.request.method == "POST") as probe:
        page.evaluate(FAILING_WS, TOKEN)
    assert probe.value.status == 400
    assert "missing ppstr" in probe.value.text()
    assert page.evaluate("'refused' in c.state") is False
    assert page.evaluate("window.refusals") == []
