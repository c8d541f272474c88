"""The client against a server that answers exactly as the captured real Sente 1.22 did.

Each test drives the client with the edn packer through one part of
``captured-sente-1.22.txt`` and checks both what the client made of the server's bytes and
the bytes the client itself put on the wire (compared with what the real JVM and CLJS
clients sent in the capture).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import pytest
import requests

from flask_sente.client import Client
from flask_sente.errors import ReplyTimeout
from flask_sente.protocol import NIL_UID, Keyword
from tests.client.helpers import next_id, next_matching, wait_until
from tests.client.sente_server import CSRF, ScriptedSente

TRANSPORTS = ["ws", "ajax"]
HD = {Keyword("hello"): "world", Keyword("n"): 1}
CB = r'"[0-9a-f]{6}"'


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handshake_opens_and_emits_state_then_handshake(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport, client_id="cid-1").connect()
    state_msg = next_id(client, "chsk/state")
    old, new, open_changed = state_msg.data
    assert open_changed is True
    assert old == {"type": transport, "open?": False, "ever-opened?": False}
    assert new["first-open?"] is True and new["opened?"] is True and new["open-changed?"] is True
    hs = next_id(client, "chsk/handshake")
    assert hs.data == ["cid-1", None, HD, True]
    state = client.state
    assert state["open?"] and state["ever-opened?"] and state["first-open?"]
    assert state["type"] == transport
    assert state["uid"] == "cid-1" and state["handshake-data"] == HD


def test_ws_url_query_matches_the_real_clients(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(
        sente.url, type="ws", client_id="jvm-client-1", params={"uid": "jvm-user"}, recover=False
    )
    client.connect()
    assert client.wait_open(5)
    get = next(entry for entry in sente.http_log if entry[0] == "GET")
    # As the JVM client: GET /chsk?uid=jvm-user&client-id=jvm-client-1&csrf-token=test-csrf-token
    assert get[1] == "/chsk?uid=jvm-user&client-id=jvm-client-1&csrf-token=test-csrf-token"
    assert client.state["uid"] == "jvm-user"


def test_ws_url_omits_a_missing_csrf_token(make_client: Callable[..., Client]) -> None:
    from flask_sente.client.urls import ws_url

    url = ws_url("http://h:1/chsk", {"client-id": "c", "csrf-token": None})
    assert url == "ws://h:1/chsk?client-id=c"
    assert ws_url("https://h/chsk", {"a": "x y*"}) == "wss://h/chsk?a=x%20y%2A"


def test_ajax_requests_match_the_real_cljs_client(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    sente = scripted(lp_timeout_ms=300)
    client = make_client(sente.url, type="ajax", client_id="cljs-ajax-client", recover=False)
    client.connect()
    assert client.wait_open(5)
    assert client.request(["test/echo", {"a": 1}], 5) == {Keyword("echo"): {Keyword("a"): 1}}
    assert sente.wait_for(lambda: len([e for e in sente.http_log if e[0] == "GET"]) >= 2)
    gets = [e for e in sente.http_log if e[0] == "GET"]
    assert re.fullmatch(r"/chsk\?udt=\d+&client-id=cljs-ajax-client&handshake%3F=1", gets[0][1])
    assert re.fullmatch(r"/chsk\?udt=\d+&client-id=cljs-ajax-client", gets[1][1])
    assert gets[0][2]["X-CSRF-Token"] == CSRF
    post = next(e for e in sente.http_log if e[0] == "POST")
    assert post[2]["X-CSRF-Token"] == CSRF
    assert post[2]["Content-Type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert re.fullmatch(
        rb"udt=\d+&client-id=cljs-ajax-client&ppstr="
        rb"%5B%5B%3Atest%2Fecho%20%7B%3Aa%201%7D%5D%20%3Aajax%5D",
        post[3],
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_callbacks_get_replies(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    reply = client.request(["test/echo", {"a": 1, "b": "two"}], 5)
    assert reply == {Keyword("echo"): {Keyword("a"): 1, Keyword("b"): "two"}}
    assert client.request(["test/reply-str"], 5) == "a-string-reply"
    wires = [r.wire for r in sente.received]
    if transport == "ws":
        assert re.fullmatch(r'\[\[:test/echo \{:a 1, :b "two"\}\] ' + CB + r"\]", wires[0])
        assert re.fullmatch(r"\[\[:test/reply-str\] " + CB + r"\]", wires[1])
        cb = sente.received[0].cb
        assert f'[{{:echo {{:a 1, :b "two"}}}} "{cb}"]' in sente.sent
    else:
        assert wires == ['[[:test/echo {:a 1, :b "two"}] :ajax]', "[[:test/reply-str] :ajax]"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_send_callback_runs_on_the_client_thread(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    import threading

    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    got: list[object] = []
    done = threading.Event()

    def cb(reply: object) -> None:
        got.append((reply, threading.current_thread().name))
        done.set()

    assert client.send(["test/echo", 7], 5000, cb) is True
    assert done.wait(5)
    reply, thread_name = got[0]  # type: ignore[misc]
    assert reply == {Keyword("echo"): 7}
    assert thread_name.endswith("-callbacks")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_pushes_arrive_as_events_in_order(
    sente: ScriptedSente, make_client: Callable[..., Client], transport: str
) -> None:
    client = make_client(sente.url, type=transport).connect()
    assert client.wait_open(5)
    assert client.send(["test/push-me", "x"]) is True
    assert next_id(client, "test/pushed").data == {Keyword("got"): "x"}
    client.send(["test/push-3"])
    got = [next_id(client, "test/pushed").data for _ in range(3)]
    assert got == [0, 1, 2]
    client.send(["test/push-flush", 42])
    assert next_id(client, "test/pushed-flushed").data == 42
    requests.get(
        f"http://127.0.0.1:{sente.port}/push", params={"uid": client.client_id, "data": "hello"}
    )
    assert next_id(client, "test/oob-push").data == "hello"
    without_cb = [r.wire for r in sente.received if r.event and r.event[0] == "test/push-me"]
    assert without_cb == ['[[:test/push-me "x"] nil]']
    if transport == "ws":
        assert "[[[:test/pushed 0] [:test/pushed 1] [:test/pushed 2]] nil]" in sente.sent


def test_wrap_recv_evs_wraps_pushes(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", wrap_recv_evs=True).connect()
    assert client.wait_open(5)
    client.send(["test/push-me", 1])
    msg = next_id(client, "chsk/recv")
    assert msg.data == [Keyword("test/pushed"), {Keyword("got"): 1}]


def test_ws_callback_timeout_is_client_side(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    with pytest.raises(ReplyTimeout) as info:
        client.request(["test/no-reply", 1], timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert client.state["open?"]


def test_ajax_no_reply_gets_the_servers_chsk_timeout(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    sente = scripted(lp_timeout_ms=300)
    client = make_client(sente.url, type="ajax").connect()
    assert client.wait_open(5)
    with pytest.raises(ReplyTimeout):
        client.request(["test/no-reply", 1], timeout=5)
    assert "[:chsk/timeout nil]" in sente.sent


def test_server_ping_is_answered_with_pong(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    sente = scripted(ws_kalive_ms=400, ws_ping_timeout_ms=1000)
    client = make_client(sente.url, type="ws", ws_kalive_ms=None).connect()
    assert client.wait_open(5)
    next_id(client, "chsk/ws-ping")
    assert "[:chsk/ws-ping nil]" in sente.sent
    assert sente.wait_for(lambda: any(r.wire == "[[:chsk/ws-pong] nil]" for r in sente.received))
    # Answering keeps the connection: still the first connection after several ping rounds.
    assert sente.wait_for(lambda: len(sente.events("chsk/ws-pong")) >= 3)
    assert sente.ws_upgrades == 1 and client.state["open?"]


def test_server_close_then_immediate_reconnect(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", client_id="jvm-client-1").connect()
    assert client.wait_open(5)
    client.send(["test/close-me"])
    closed = next_matching(client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"))
    new = closed.data[1]
    assert new["last-close"]["reason"] == "clean"
    assert new["last-ws-close"]["code"] == 1000 and new["last-ws-close"]["clean?"] is True
    hs = next_id(client, "chsk/handshake")
    assert hs.data[3] is False  # not the first handshake
    assert client.request(["test/echo", "after-reconnect"], 5) == {
        Keyword("echo"): "after-reconnect"
    }
    assert sente.ws_upgrades == 2


def test_disconnect_sends_close_normal(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws").connect()
    assert client.wait_open(5)
    client.disconnect()
    assert sente.wait_for(lambda: [r for r in sente.received if r.transport == "ws-close"])
    closes = [r for r in sente.received if r.transport == "ws-close"]
    assert (closes[0].event, closes[0].cb) == (1000, "CLOSE_NORMAL")
    assert client.state["last-close"]["reason"] == "requested-disconnect"
    assert not client.state["open?"]


def test_nil_uid_is_a_keyword(make_client: Callable[..., Client]) -> None:
    from flask_sente.packers import EdnPacker
    from flask_sente.protocol import ServerMessage, classify_server_message, unpack

    value, cb = unpack(EdnPacker(), "[[:chsk/handshake [:sente/nil-uid nil nil]] nil]")
    msg: ServerMessage = classify_server_message(value, cb)
    assert msg.handshake == (NIL_UID, None)


def test_bad_csrf_token_never_opens(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", csrf_token="wrong", backoff_ms_fn=lambda n: 50)
    client.connect()
    wait_until(lambda: client.state.get("last-ws-error"))
    assert "403" in client.state["last-ws-error"]["ev"]
    assert not client.state["open?"]


def test_auto_downgrades_to_ajax_when_upgrades_are_refused(
    scripted: Callable[..., ScriptedSente], make_client: Callable[..., Client]
) -> None:
    sente = scripted(refuse_upgrades=True, lp_timeout_ms=500)
    client = make_client(sente.url, type="auto").connect()
    assert client.wait_open(5)
    state = client.state
    assert state["type"] == "ajax"
    assert state["last-close"]["reason"] == "downgrading-ws-to-ajax"
    assert "403" in state["last-ws-error"]["ev"]
    assert client.request(["test/echo", 1], 5) == {Keyword("echo"): 1}
    handshakes = [e for e in sente.http_log if "handshake%3F=1" in e[1]]
    assert handshakes, "the Ajax side asks for a handshake"
    assert unquote(handshakes[0][1]).count("handshake?=1") == 1
