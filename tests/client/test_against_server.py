"""The client against the project's own server (``examples/conformance.py`` subprocesses)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from flask_sente.client import Client
from flask_sente.client.ws import default_ws_constructor
from flask_sente.errors import ChannelClosed, ReplyTimeout
from flask_sente.protocol import CLOSED
from tests.client.helpers import Conformance, assert_no_client_threads, next_id, next_matching

TRANSPORTS = ["ws", "ajax"]
HD = {"hello": "world", "n": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[Conformance]:
    proc = Conformance("--lp-timeout-ms", "1000").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def edn_server() -> Iterator[Conformance]:
    proc = Conformance("--packer", "edn", "--csrf-token", "tok").start()
    yield proc
    proc.stop()


@pytest.fixture
def json_client(make_client: Callable[..., Client]) -> Callable[..., Client]:
    def make(url: str, **kwargs: Any) -> Client:
        kwargs.setdefault("packer", "json")
        kwargs.setdefault("csrf_token", None)
        return make_client(url, **kwargs)

    return make


def _closed(client: Client, timeout: float = 5.0) -> dict[str, Any]:
    msg = next_matching(
        client, lambda m: m.id == "chsk/state" and m.data[1].get("closed?"), timeout
    )
    return dict(msg.data[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handshake_requests_and_pushes(
    server: Conformance, json_client: Callable[..., Client], transport: str
) -> None:
    client = json_client(server.url, type=transport, client_id="c-1").connect()
    assert next_id(client, "chsk/handshake").data == ["c-1", None, HD, True]
    assert client.state["type"] == transport and client.state["uid"] == "c-1"
    assert client.request(["test/echo", {"a": [1, 2]}], 5) == {"echo": {"a": [1, 2]}}
    assert client.request(["test/reply-str"], 5) == "a-string-reply"
    client.send(["test/push-me", "x"])
    assert next_id(client, "test/pushed").data == {"got": "x"}
    client.send(["test/push-3"])
    assert [next_id(client, "test/pushed").data for _ in range(3)] == [0, 1, 2]
    client.send(["test/push-flush", 9])
    assert next_id(client, "test/pushed-flushed").data == 9
    requests.get(server.base + "/push", params={"uid": "c-1", "data": "oob"}, timeout=5)
    assert next_id(client, "test/oob-push").data == "oob"
    uids = requests.get(server.base + "/uids", timeout=5).json()
    assert "c-1" in uids["any"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_edn_packer_and_csrf_token(
    edn_server: Conformance, make_client: Callable[..., Client], transport: str
) -> None:
    # Like Sente 1.21+, params ride on the WebSocket URL and Ajax GETs but not on POSTs, so
    # a uid taken from a param would not match the POST that asks for a push: none here.
    client = make_client(edn_server.url, type=transport, csrf_token="tok", client_id="e-1")
    client.connect()
    assert client.wait_open(5)
    assert client.state["uid"] == "e-1"
    assert client.request(["test/echo", {"k": "v"}], 5) == {"echo": {"k": "v"}}
    client.send(["test/push-me", 1])
    assert next_id(client, "test/pushed").data == {"got": 1}


def test_wrong_csrf_token_never_opens(
    edn_server: Conformance, make_client: Callable[..., Client]
) -> None:
    client = make_client(edn_server.url, type="ws", csrf_token="bad", backoff_ms_fn=lambda n: 100)
    client.connect()
    assert client.state.wait_for(lambda s: "last-ws-error" in s, 5)
    assert "403" in client.state["last-ws-error"]["ev"]
    assert not client.wait_open(0.3)


def test_auto_falls_back_to_ajax_on_a_refused_upgrade(
    server: Conformance, json_client: Callable[..., Client]
) -> None:
    def refused_upgrade(url: str, **kwargs: Any) -> Any:
        # The server's 404 for an upgrade on a route that is not the channel socket.
        return default_ws_constructor(url.replace("/chsk?", "/not-a-chsk?"), **kwargs)

    client = json_client(server.url, type="auto", ws_constructor=refused_upgrade).connect()
    assert client.wait_open(5)
    assert client.state["type"] == "ajax"
    assert client.state["last-close"]["reason"] == "downgrading-ws-to-ajax"
    assert "404" in client.state["last-ws-error"]["ev"]
    assert client.request(["test/echo", 3], 5) == {"echo": 3}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_callback_timeouts_and_closed_sockets(
    server: Conformance, json_client: Callable[..., Client], transport: str
) -> None:
    client = json_client(server.url, type=transport).connect()
    assert client.wait_open(5)
    with pytest.raises(ReplyTimeout):
        client.request(["test/no-reply"], 0.5 if transport == "ws" else 5)
    got: list[Any] = []
    done = threading.Event()
    client.send(["test/no-reply"], 30_000, lambda r: (got.append(r), done.set()))
    client.send(["test/close-me"])
    if transport == "ws":
        assert done.wait(5) and got == [CLOSED]  # its reply can no longer arrive
        assert _closed(client)["last-close"]["reason"] == "clean"
        assert client.wait_open(5)
    client.disconnect()
    assert done.wait(5)
    with pytest.raises(ChannelClosed):
        client.request(["test/echo", 1], 1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnect_after_server_restart(json_client: Callable[..., Client], transport: str) -> None:
    proc = Conformance("--lp-timeout-ms", "1000").start()
    try:
        client = json_client(proc.url, type=transport, backoff_ms_fn=lambda n: 400).connect()
        assert client.wait_open(5)
        proc.stop()
        assert _closed(client)["last-close"]["reason"] == "unexpected"
        assert client.state.wait_for(lambda s: "udt-next-reconnect" in s, 5)
        proc.start()
        assert client.wait_open(15)
        assert next_id(client, "chsk/handshake", 5).data[3] is False
        assert "udt-next-reconnect" not in client.state
        assert client.request(["test/echo", "again"], 5) == {"echo": "again"}
    finally:
        proc.stop()


def test_keepalive_pings_and_server_pings(json_client: Callable[..., Client]) -> None:
    proc = Conformance("--ws-kalive-ms", "600", "--ws-ping-timeout-ms", "500").start()
    try:
        client = json_client(proc.url, type="ws", ws_kalive_ms=None).connect()
        assert client.wait_open(5)
        next_id(client, "chsk/ws-ping", 5)  # the server's ping, answered with a pong
        next_id(client, "chsk/ws-ping", 5)
        assert client.state["open?"] and "last-close" not in client.state
        pinging = json_client(proc.url, type="ws", ws_kalive_ms=300, ws_ping_timeout_ms=500)
        pinging.connect()
        assert pinging.wait_open(5)
        assert not pinging.state.wait_for(lambda s: "last-close" in s, 1.5)
    finally:
        proc.stop()


def test_silent_break_detected_by_keepalive(
    server: Conformance, json_client: Callable[..., Client]
) -> None:
    client = json_client(server.url, type="ws", ws_kalive_ms=300, ws_ping_timeout_ms=300)
    client.connect()
    assert client.wait_open(5)
    next_id(client, "chsk/handshake")
    client.break_connection(close_ws=False)
    assert _closed(client, 10)["last-close"]["reason"] == "ws-ping-timeout"
    assert client.wait_open(5)
    assert client.request(["test/echo", 5], 5) == {"echo": 5}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fifty_clients_in_threads(server: Conformance, transport: str) -> None:
    before = set(threading.enumerate())
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with Client(server.url, type=transport) as client:
                assert client.request(["test/echo", i], 10) == {"echo": i}
                client.send(["test/push-me", i])
                assert next_id(client, "test/pushed", 10).data == {"got": i}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert_no_client_threads()
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not [t for t in leaked if not t.name.startswith("conformance-output")]
