"""``packer="transit"`` on the wire: our server answers the real Sente transit client's
recorded requests with the bytes the real Sente server answered, over both transports, and
the Python client speaks transit to it end to end.

The requests are sent as recorded (the callback ids in them come back in the answers); the
answers must equal the recorded ``S>`` payloads byte for byte. Per-run values (client-id,
udt) are our own.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs

import pytest
import websocket

from flask_sente.client import Client
from flask_sente.values import Char, Keyword, Symbol
from tests import transcripts
from tests.server.harness import AjaxPeer, Server, WsPeer, running

K = Keyword
WS = transcripts.load("cljs-ws-transit")
AJAX = transcripts.load("cljs-ajax-transit")


def frames(scenario: str, direction: str) -> list[str]:
    return [
        r.text
        for r in WS.scenario(scenario).records
        if r.kind == "ws" and r.opcode == "text" and r.direction == direction
    ]


def ppstr(record: transcripts.Record) -> str:
    return parse_qs(record.text)["ppstr"][0]


def http(scenario: str, direction: str) -> list[transcripts.Record]:
    return [
        r
        for r in AJAX.scenario(scenario).records
        if r.kind == "http" and r.direction == direction and not r.head.startswith("GET /push")
    ]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(packer="transit", ws_kalive_ms=1000) as s:
        yield s


# ---------------------------------------------------------------------------- WebSocket


def test_ws_answers_are_the_recorded_bytes(server: Server) -> None:
    peer = WsPeer(server, uid="u-1", foo="bar%20baz")
    try:
        assert peer.recv_raw() == frames("a", "S")[0]  # the handshake, 73 bytes

        (echo,) = frames("b", "C")
        peer.send_raw(echo)  # the rich payload: tags, caches, escapes
        assert peer.recv_raw() == frames("b", "S")[0]

        (noop,) = frames("c", "C")
        peer.send_raw(noop)
        server.recorder.wait_for(lambda m: m.id == "test/noop" and m.data == 1)

        (push_3,) = frames("d", "C")
        peer.send_raw(push_3)
        assert peer.recv_raw() == frames("d", "S")[0]  # one batch, the keyword cached
        server.sente.send("u-1", ["test/oob-push", "oob data"])
        assert peer.recv_raw() == frames("d", "S")[1]

        no_reply, pong = frames("e", "C")
        peer.send_raw(no_reply)
        assert peer.recv_raw() == frames("e", "S")[0]  # the server's ping, when idle
        peer.send_raw(pong)

        for ping, answer in zip(frames("f", "C"), frames("f", "S"), strict=True):
            peer.send_raw(ping)
            assert peer.recv_raw() == answer
    finally:
        peer.close()


def test_ws_reconnect_after_close_me_gets_the_same_handshake(server: Server) -> None:
    peer = WsPeer(server, uid="u-2")
    try:
        peer.recv_raw()
        close_me, echo = frames("g", "C")
        peer.send_raw(close_me)
        peer.ws.settimeout(5)
        opcode, _ = peer.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
    finally:
        peer.close()
    again = WsPeer(server, uid="u-1")
    try:
        assert again.recv_raw() == frames("g", "S")[0]
        again.send_raw(echo)
        assert again.recv_raw() == frames("g", "S")[1]
    finally:
        again.close()


def test_a_bad_transit_frame_is_a_bad_package(server: Server) -> None:
    peer = WsPeer(server, uid="u-bad")
    try:
        peer.recv_raw()
        peer.send_raw('[["~:test/echo",["^ ","^9",1]],"abcdef"]')  # a code never given
        msg = server.recorder.wait_for(lambda m: m.id == "chsk/bad-package" and m.uid == "u-bad")
        assert "^9" in msg.data
        peer.send_raw(frames("g", "C")[1])  # the socket still works
        assert peer.recv_raw() == frames("g", "S")[1]
    finally:
        peer.close()


# ---------------------------------------------------------------------------- Ajax


def test_ajax_answers_are_the_recorded_bytes(server: Server) -> None:
    peer = AjaxPeer(server, uid="u-1")

    def post(request: transcripts.Record) -> str:
        form = {"udt": str(int(time.time() * 1000)), "client-id": peer.client_id}
        form["ppstr"] = ppstr(request)
        response = peer.http.post(server.chsk, data=form, params={"uid": "u-1"}, timeout=10)
        assert response.status_code == 200, response.text
        return response.text

    handshake = peer.get(handshake=True)
    assert (handshake.status_code, handshake.text) == (200, http("a", "S")[0].text)
    assert post(http("b", "C")[0]) == http("b", "S")[0].text  # the rich echo: [reply, null]
    assert post(http("c", "C")[0]) == http("c", "S")[0].text  # ["~:chsk/dummy-cb-200",null]
    assert peer.get().text == http("d", "S")[1].text  # ["~:chsk/timeout",null]
    assert post(http("d2", "C")[0]) == http("d2", "S")[0].text  # push-3
    assert peer.get().text == http("d2", "S")[1].text  # the three pushes in one batch
    assert post(http("g2", "C")[-1]) == http("g2", "S")[-1].text  # echo {:b 2}


# ---------------------------------------------------------------------------- Python client


def rich() -> dict[str, Any]:
    return {
        "text": "x y ~x ^y `z",
        "keyword": K("foo/bar"),
        "symbol": Symbol("my/sym"),
        "char": Char("€"),
        "ints": [1, -7, 2**53, 2**63 - 1, 2**64],
        "floats": [1.5, 1e21, -0.0],
        "decimal": Decimal("1.25"),
        "ratio": Fraction(-2, 3),
        "set": frozenset({1, 2, K("k")}),
        "uuid": uuid.UUID(int=1),
        "when": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        "bytes": b"\x00\xff",
        "list": (1, 2),
        "m": {"str-key": 1, 7: "int-key", None: [], (1, 2): "cmap"},
        "rows": [{"kk": K("foo/bar"), "sym": Symbol("my/sym")}] * 3,
    }


@pytest.mark.parametrize("transport", ["ws", "ajax"])
def test_the_python_client_speaks_transit(server: Server, transport: str) -> None:
    data = rich()
    with Client(server.chsk, packer="transit", type=transport) as client:
        assert client.request(["test/echo", data], timeout=10) == {"echo": data}
        client.send(["test/push-me", data])
        while (msg := client.next_event(timeout=10)) is not None:
            if msg.id == "test/pushed":
                assert msg.data == {"got": data}
                return
    raise AssertionError("the push never arrived")
