"""The client's behaviour against a stand-in for the real Sente 1.22 server.

What the client sends, and what it makes of the real server's answers, is proven against
the recorded real clients and server in ``test_replay.py``. These tests cover what the
recordings do not: the state and events of a handshake for another uid, where callbacks
run, ``wrap_recv_evs``, a server's ``chsk/timeout`` answer to an Ajax send, ``request``'s
exceptions, a refused CSRF token and the fall back to Ajax when upgrades are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

import pytest

from flask_sente.client import Client
from flask_sente.errors import ReplyTimeout
from flask_sente.protocol import NIL_UID, Keyword
from tests.client.helpers import next_id, wait_until
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
    assert old == {"type": transport, "open?": False, "ever-opened?": False, "csrf-token": CSRF}
    assert new["first-open?"] is True and new["opened?"] is True and new["open-changed?"] is True
    hs = next_id(client, "chsk/handshake")
    assert hs.data == ["cid-1", None, HD, True]
    state = client.state
    assert state["open?"] and state["ever-opened?"] and state["first-open?"]
    assert state["type"] == transport
    assert state["uid"] == "cid-1" and state["handshake-data"] == HD


def test_ws_url_omits_a_missing_csrf_token(make_client: Callable[..., Client]) -> None:
    from flask_sente.client.wire import ws_url

    url = ws_url("http://h:1/chsk", {"client-id": "c", "csrf-token": None})
    assert url == "ws://h:1/chsk?client-id=c"
    assert ws_url("https://h/chsk", {"a": "x y*"}) == "wss://h/chsk?a=x%20y%2A"


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


def test_wrap_recv_evs_wraps_pushes(
    sente: ScriptedSente, make_client: Callable[..., Client]
) -> None:
    client = make_client(sente.url, type="ws", wrap_recv_evs=True).connect()
    assert client.wait_open(5)
    client.send(["test/push-me", 1])
    msg = next_id(client, "chsk/recv")
    assert msg.data == [Keyword("test/pushed"), {Keyword("got"): 1}]


def test_a_request_timing_out_raises_a_timeout_error(
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
