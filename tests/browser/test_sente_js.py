"""sente.js against the conformance app, in a real browser: wire format and behaviour."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import flask_sente
from tests.browser.support import Server
from tests.support import require_module

sync_api = require_module("playwright.sync_api", "pip install -e '.[dev]'")
expect = sync_api.expect

CONFORMANCE = "examples/conformance.py"
CB_UUID = "[0-9a-f]{6}"
UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

# Installed in each page: connect with a recorder of events and states.
RECORDER = """() => {
  window.record = (opts) => {
    const rec = { events: [], states: [], handshakes: 0 };
    const c = Sente.connect("/chsk", opts);
    c.onAny((m) => {
      if (m.id === "chsk/handshake") rec.handshakes++;
      if (m.id !== "chsk/state") rec.events.push(m.event);
    });
    c.onState((s) => rec.states.push({
      open: s["open?"], type: s.type, firstOpen: !!s["first-open?"],
      lastClose: s["last-close"] ? s["last-close"].reason : null,
      nextReconnect: s["udt-next-reconnect"] || null,
    }));
    window.c = c;
    window.rec = rec;
  };
}"""


@pytest.fixture(scope="module")
def conformance() -> Iterator[Server]:
    server = Server(CONFORMANCE)
    yield server
    server.stop()


@pytest.fixture
def open_page(new_page: Callable[[], Any]) -> Callable[[Server], Any]:
    """``open_page(server)``: a page of the server's origin with sente.js loaded."""

    def open_(server: Server) -> Any:
        page = new_page()
        page.goto(server.url + "/no-such-page")  # any same-origin document will do
        page.add_script_tag(url="/_sente/static/sente.js")
        page.evaluate(RECORDER)
        return page

    return open_


def connect(page: Any, **opts: Any) -> None:
    page.evaluate("(opts) => record(opts)", opts)


def wait_open(page: Any, handshakes: int = 1) -> None:
    page.wait_for_function(f"c.state['open?'] && rec.handshakes >= {handshakes}")


def events(page: Any, event_id: str) -> list[Any]:
    return page.evaluate("(id) => rec.events.filter((e) => e[0] === id)", event_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_handshake_sets_the_state_and_emits_events(
    conformance: Server, open_page: Any, kind: str
) -> None:
    page = open_page(conformance)
    connect(page, type=kind, params={"uid": "u1"})
    wait_open(page)
    state = page.evaluate("({...c.state})")
    assert state["type"] == kind
    assert state["uid"] == "u1"
    assert state["ever-opened?"] is True
    assert state["handshake-data"] == {"hello": "world", "n": 1}
    assert events(page, "chsk/handshake") == [
        ["chsk/handshake", ["u1", None, {"hello": "world", "n": 1}, True]]
    ]
    opened = [s for s in page.evaluate("rec.states") if s["open"]]
    assert opened[0]["firstOpen"] is True


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_request_reply_and_ordered_pushes(conformance: Server, open_page: Any, kind: str) -> None:
    page = open_page(conformance)
    connect(page, type=kind)
    wait_open(page)
    assert page.evaluate("c.request(['test/echo', {a: [1, 'two']}])") == {"echo": {"a": [1, "two"]}}
    assert page.evaluate("c.request(['test/reply-str'])") == "a-string-reply"
    assert page.evaluate("c.send(['test/push-3'])") is True
    page.wait_for_function("rec.events.filter((e) => e[0] === 'test/pushed').length === 3")
    assert [e[1] for e in events(page, "test/pushed")] == [0, 1, 2]


def test_wrap_recv_evs_wraps_pushes(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    connect(page, wrapRecvEvs=True)
    wait_open(page)
    page.evaluate("c.send(['test/push-me', 7])")
    page.wait_for_function("rec.events.some((e) => e[0] === 'chsk/recv')")
    assert events(page, "chsk/recv") == [["chsk/recv", ["test/pushed", {"got": 7}]]]


@pytest.fixture
def csrf_server(start_server: Callable[..., Server]) -> Server:
    return start_server(CONFORMANCE, "--csrf-token", "tok*en")


def test_websocket_wire_format(csrf_server: Server, open_page: Any) -> None:
    page = open_page(csrf_server)
    sockets: list[Any] = []
    sent: list[str] = []
    received: list[str] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", on_socket)
    connect(page, type="ws", csrfToken="tok*en", params={"uid": "w1", "x": "a b"})
    wait_open(page)
    client_id = page.evaluate("c.clientId")
    assert re.fullmatch(UUID4, client_id)
    assert sockets[0].url == (
        f"{csrf_server.url.replace('http', 'ws')}/chsk?uid=w1&x=a%20b"
        f"&client-id={client_id}&csrf-token=tok%2Aen&fs-last-seq=-"
    )
    assert received[0] == '[["chsk/handshake",["w1",null,{"hello":"world","n":1}]],null]'

    page.evaluate("c.request(['test/echo', 5])")
    page.evaluate("c.send(['test/push-me', 'x'])")
    page.wait_for_function("rec.events.some((e) => e[0] === 'test/pushed')")
    assert re.fullmatch(rf'\[\["test/echo",5\],"({CB_UUID})"\]', sent[0])
    cb = json.loads(sent[0])[1]
    assert f'[{{"echo":5}},"{cb}"]' in received
    assert sent[1] == '[["test/push-me","x"],null]'
    numbered = r'\[\[\["test/pushed",\{"got":"x"\}\]\],null,"[0-9a-f]+:1"\]'
    assert [f for f in received if re.fullmatch(numbered, f)]


def test_ajax_wire_format(csrf_server: Server, open_page: Any) -> None:
    page = open_page(csrf_server)
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "/chsk" in r.url else None)
    connect(page, type="ajax", csrfToken="tok*en", params={"uid": "a1"})
    wait_open(page)
    page.evaluate("c.request(['test/echo', {k: 'v w'}])")
    client_id = page.evaluate("c.clientId")

    polls = [r for r in requests if r.method == "GET"]
    assert re.fullmatch(
        rf".*/chsk\?uid=a1&udt=\d+&client-id={client_id}&handshake%3F=1&fs-last-seq=-",
        polls[0].url,
    )
    assert re.fullmatch(
        rf".*/chsk\?uid=a1&udt=\d+&client-id={client_id}&fs-last-seq=-", polls[1].url
    )
    assert polls[0].headers["x-csrf-token"] == "tok*en"

    post = next(r for r in requests if r.method == "POST")
    assert post.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert post.headers["x-csrf-token"] == "tok*en"
    assert re.fullmatch(
        rf"udt=\d+&client-id={client_id}&ppstr=%5B%5B%22test%2Fecho%22%2C%7B%22k%22%3A%22v%20w"
        r"%22%7D%5D%2C%22ajax%22%5D",
        post.post_data,
    )


def test_csrf_token_comes_from_the_meta_tag(csrf_server: Server, open_page: Any) -> None:
    page = open_page(csrf_server)
    page.evaluate(
        """() => {
          const m = document.createElement("meta");
          m.name = "csrf-token";
          m.content = "tok*en";
          document.head.append(m);
        }"""
    )
    connect(page)
    wait_open(page)
    assert page.evaluate("c.state.type") == "ws"


def test_a_wrong_csrf_token_never_opens(csrf_server: Server, open_page: Any) -> None:
    page = open_page(csrf_server)
    connect(page, type="ws", csrfToken="wrong")
    page.wait_for_function("c.state['last-ws-close'] !== undefined")
    assert page.evaluate("c.state['open?']") is False
    assert page.evaluate("c.state['ever-opened?']") is False


def test_server_pings_are_answered(start_server: Callable[..., Server], open_page: Any) -> None:
    # after a ping the server waits ws_ping_timeout_ms before the next (as Sente's): keep it short
    server = start_server(CONFORMANCE, "--ws-kalive-ms", "400", "--ws-ping-timeout-ms", "300")
    page = open_page(server)
    sockets: list[Any] = []
    sent: list[str] = []
    received: list[str] = []

    def on_socket(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", on_socket)
    connect(page, type="ws", wsKaliveMs=0)
    wait_open(page)
    page.wait_for_function("rec.events.filter((e) => e[0] === 'chsk/ws-ping').length >= 3")
    assert received.count('["chsk/ws-ping",null]') >= 3
    assert sent.count('[["chsk/ws-pong"],null]') >= 3
    assert len(sockets) == 1
    assert page.evaluate("c.state['open?']") is True


def test_client_keepalive_ping_gets_pong(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    sent: list[str] = []
    received: list[str] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", on_socket)
    connect(page, type="ws", wsKaliveMs=400, wsPingTimeoutMs=1000)
    wait_open(page)

    def pings() -> list[str]:
        return [f for f in sent if f.startswith('[["chsk/ws-ping"]')]

    until(lambda: len(pings()) >= 2, page)
    for frame in pings()[:2]:
        match = re.fullmatch(rf'\[\["chsk/ws-ping"\],"({CB_UUID})"\]', frame)
        assert match, frame
        pong = f'["pong","{match.group(1)}"]'
        until(lambda pong=pong: pong in received, page)
    assert page.evaluate("rec.handshakes") == 1
    assert page.evaluate("c.state['open?']") is True


def until(get: Callable[[], Any], page: Any, timeout_ms: int = 10_000) -> Any:
    """Poll a Python-side condition, letting the page run between tries."""
    waited = 0
    while not (value := get()):
        assert waited < timeout_ms, f"condition not met within {timeout_ms} ms: {get}"
        page.wait_for_timeout(50)
        waited += 50
    return value


DEAF_TO_PONG = """(opts) => {
  class DeafToPong extends WebSocket {
    set onmessage(fn) {
      super.onmessage = (e) => { if (!String(e.data).startsWith('["pong"')) fn(e); };
    }
    get onmessage() { return super.onmessage; }
  }
  record({ ...opts, wsConstructor: (url) => new DeafToPong(url) });
}"""


def test_a_ping_without_pong_reconnects(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    page.evaluate(DEAF_TO_PONG, {"type": "ws", "wsKaliveMs": 400, "wsPingTimeoutMs": 300})
    wait_open(page, handshakes=2)
    assert page.evaluate("c.state['last-close'].reason") == "ws-ping-timeout"


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_callback_timeout(conformance: Server, open_page: Any, kind: str) -> None:
    page = open_page(conformance)
    connect(page, type=kind)
    wait_open(page)
    error = page.evaluate(
        "c.request(['test/no-reply'], {timeoutMs: 300}).then(() => null,"
        " (e) => [e.name, e.reason, e.message])"
    )
    assert error == ["SenteError", "chsk/timeout", "sente: test/no-reply failed: chsk/timeout"]


def test_send_cb_is_called_once_with_the_reply(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    connect(page)
    wait_open(page)
    page.evaluate(
        "() => { window.replies = [];"
        " c.send(['test/echo', 1], 1000, (r) => window.replies.push(r)); }"
    )
    page.wait_for_function("window.replies.length === 1")
    assert page.evaluate("window.replies") == [{"echo": 1}]


def test_disconnect_closes_for_good(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    connect(page)
    wait_open(page)
    page.evaluate(
        "() => { window.pending = c.request(['test/no-reply'], {timeoutMs: 10000})"
        ".catch((e) => e.reason); }"
    )
    page.evaluate("c.disconnect()")
    assert page.evaluate("window.pending") == "chsk/closed"  # not left to time out
    assert page.evaluate("c.state['last-close'].reason") == "requested-disconnect"
    assert page.evaluate("c.send(['test/echo', 1])") is False
    closed = page.evaluate("c.request(['test/echo', 1]).catch((e) => e.reason)")
    assert closed == "chsk/closed"
    assert page.evaluate("c._impl.conn === null && c._impl.retryTimer === null")

    page.evaluate("c.connect()")
    wait_open(page, handshakes=2)


def test_a_silently_broken_socket_is_found_by_the_next_send(
    conformance: Server, open_page: Any
) -> None:
    page = open_page(conformance)
    connect(page, type="ws")
    wait_open(page)
    page.evaluate("c.breakConnection({closeWs: false})")
    assert page.evaluate("c.state['open?']") is True  # it does not know yet
    reason = page.evaluate("c.request(['test/echo', 1]).catch((e) => e.reason)")
    assert reason == "chsk/error"
    wait_open(page, handshakes=2)
    assert page.evaluate("c.state['last-close'].reason") == "ws-error"


@pytest.mark.parametrize("kind", ["ws", "ajax"])
def test_break_connection_reconnects(conformance: Server, open_page: Any, kind: str) -> None:
    page = open_page(conformance)
    connect(page, type=kind)
    wait_open(page)
    page.evaluate("c.breakConnection()")
    wait_open(page, handshakes=2)
    assert page.evaluate("c.request(['test/echo', 2])") == {"echo": 2}


def test_server_close_makes_the_client_reconnect(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    connect(page, type="ws")
    wait_open(page)
    page.evaluate("c.send(['test/close-me'])")
    wait_open(page, handshakes=2)


COUNTING_WS = """(opts) => {
  window.attempts = 0;
  window.backoffs = [];
  record({
    ...opts,
    wsConstructor: (url) => { window.attempts++; return new WebSocket(url); },
    backoffMsFn: (n) => { window.backoffs.push(n); return opts.waitMs; },
  });
}"""


def test_reconnect_schedule_first_at_once_then_backoff(open_page: Any, conformance: Server) -> None:
    page = open_page(conformance)
    page.evaluate(COUNTING_WS, {"type": "ws", "port": free_port(), "waitMs": 50})
    page.wait_for_function("window.backoffs.length >= 3")
    assert page.evaluate("window.backoffs.slice(0, 3)") == [2, 3, 4]
    assert page.evaluate("window.attempts") >= 4  # the first retry did not wait
    assert any(s["nextReconnect"] for s in page.evaluate("rec.states"))
    assert page.evaluate("c.state['ever-opened?']") is False


def test_online_and_visible_again_skip_the_wait(open_page: Any, conformance: Server) -> None:
    page = open_page(conformance)
    page.evaluate(COUNTING_WS, {"type": "ws", "port": free_port(), "waitMs": 60_000})
    for kick in [
        "window.dispatchEvent(new Event('online'))",
        "document.dispatchEvent(new Event('visibilitychange'))",
    ]:
        page.wait_for_function("c.state['udt-next-reconnect'] > 0")  # a minute to wait
        before = page.evaluate("window.attempts")
        # read in the kick's own task: the retry it starts fails at once (nothing listens)
        # and schedules the next wait, so a later read may see that one
        waiting = page.evaluate(f"() => {{ {kick}; return c.state['udt-next-reconnect']; }}")
        assert waiting is None
        page.wait_for_function(f"window.attempts > {before}")


def test_backoff_has_a_ceiling(open_page: Any, conformance: Server) -> None:
    page = open_page(conformance)
    ranges = page.evaluate(
        "[2, 3, 10].map((n) => { const xs = Array.from({length: 200},"
        " () => Sente.expBackoff(n)); return [Math.min(...xs), Math.max(...xs)]; })"
    )
    assert ranges[0][0] >= 2000 and ranges[0][1] < 4000
    assert ranges[1][0] >= 4000 and ranges[1][1] < 8000
    assert ranges[2][0] >= 512_000  # Sente's own function is unbounded
    connect(page, type="ws", port=free_port())
    assert page.evaluate("Math.max(...[5, 10, 36, 99].map((n) => c._backoffMs(n)))") <= 30_000


def test_invalid_sends_throw(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    connect(page)
    wait_open(page)
    for call in ["c.send(['no-namespace'])", "c.send('x/y')", "c.send(['a/b', 1, 2])"]:
        message = page.evaluate(f"() => {{ try {{ {call}; }} catch (e) {{ return e.message; }} }}")
        assert message and message.startswith("sente: invalid event"), call
    message = page.evaluate(
        "() => { try { c.send(['a/b'], {cb: () => 0}); } catch (e) { return e.message; } }"
    )
    assert "timeoutMs" in message


def test_es_module_import(conformance: Server, open_page: Any) -> None:
    page = open_page(conformance)
    got = page.evaluate(
        "import('/_sente/static/sente.mjs').then((m) =>"
        " [typeof m.connect, m.default === window.Sente, m.VERSION, typeof m.SenteError])"
    )
    assert got == ["function", True, flask_sente.__version__, "function"]
